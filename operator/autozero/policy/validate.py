"""Offline validation that says what the apiserver would say, from the CRD's own schema.

The CRD schema (schema.py) is the one source of truth. Here it is applied as the apiserver
applies it: defaults first, then the structural checks (types, enums, patterns, ranges, required
and unknown fields, list-map keys), then every `x-kubernetes-validations` CEL rule, evaluated
with cel-python on the same node. `autozero validate` and the operator's parser both start here.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from functools import cache
from typing import Any

import celpy
import jsonschema
from celpy.adapter import json_to_cel
from celpy.evaluation import CELEvalError

from autozero.engine.durations import DURATION_PATTERN
from autozero.policy.errors import FieldError
from autozero.policy.schema import crd

Schema = dict[str, Any]


@cache
def openapi_schema() -> Schema:
    schema: Schema = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def _strict(schema: Schema) -> Schema:
    """JSON Schema for jsonschema: unknown fields rejected (as kubectl's strict field validation
    does), except where the CRD preserves them."""
    out = dict(schema)
    if "properties" in out:
        out["properties"] = {k: _strict(v) for k, v in out["properties"].items()}
        if not out.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
    if "items" in out:
        out["items"] = _strict(out["items"])
    return out


@cache
def _validator() -> jsonschema.Draft202012Validator:
    strict = _strict(openapi_schema())
    # metadata is the apiserver's business; only its name matters to us.
    strict["properties"]["metadata"] = {"type": "object"}
    return jsonschema.Draft202012Validator(strict)


def _path(parts: Iterator[Any] | list[Any]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def apply_defaults(value: Any, schema: Schema) -> Any:
    """Fill schema defaults into present objects, as the apiserver does before validating."""
    if isinstance(value, dict) and "properties" in schema:
        for key, sub in schema["properties"].items():
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
            if key in value:
                value[key] = apply_defaults(value[key], sub)
    elif isinstance(value, list) and "items" in schema:
        return [apply_defaults(item, schema["items"]) for item in value]
    return value


@cache
def _program(rule: str) -> celpy.Runner:
    environment = celpy.Environment()
    return environment.program(environment.compile(rule))


def _within(path: str, node: str) -> bool:
    return not node or path == node or path.startswith((f"{node}.", f"{node}["))


def _cel_errors(
    value: Any, schema: Schema, path: str, broken: frozenset[str]
) -> Iterator[FieldError]:
    """CEL rules of every node whose subtree is structurally sound (a rule assumes its types)."""
    if isinstance(value, dict) and "properties" in schema:
        for key, sub in schema["properties"].items():
            if key in value:
                yield from _cel_errors(value[key], sub, f"{path}.{key}" if path else key, broken)
    elif isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            yield from _cel_errors(item, schema["items"], f"{path}[{index}]", broken)
    if any(_within(b, path) for b in broken):
        return
    for validation in schema.get("x-kubernetes-validations", ()):
        try:
            ok = _program(validation["rule"]).evaluate({"self": json_to_cel(value)})
        except CELEvalError as exc:
            yield FieldError(path, f"{validation['message']} (rule could not be evaluated: {exc})")
            continue
        if not bool(ok):
            yield FieldError(path, validation["message"])


def _list_map_errors(value: Any, schema: Schema, path: str) -> Iterator[FieldError]:
    if isinstance(value, dict) and "properties" in schema:
        for key, sub in schema["properties"].items():
            if key in value:
                yield from _list_map_errors(value[key], sub, f"{path}.{key}" if path else key)
    elif isinstance(value, list) and "items" in schema:
        keys = (
            schema.get("x-kubernetes-list-map-keys")
            if schema.get("x-kubernetes-list-type") == "map"
            else None
        )
        seen: set[tuple[str, ...]] = set()
        for index, item in enumerate(value):
            item_path = f"{path}[{index}]"
            if keys and isinstance(item, dict):
                # As text: a malformed key may be a list or a map, which cannot be hashed.
                identity = tuple(json.dumps(item.get(k), sort_keys=True) for k in keys)
                if identity in seen:
                    name = item.get(keys[0])
                    yield FieldError(f"{item_path}.{keys[0]}", f"duplicate name {name!r}")
                seen.add(identity)
            yield from _list_map_errors(item, schema["items"], item_path)


def schema_errors(manifest: Any) -> tuple[list[FieldError], Any]:
    """Every error the CRD schema finds, and the manifest with defaults applied."""
    schema = openapi_schema()
    defaulted = apply_defaults(copy.deepcopy(manifest), schema)
    errors = [
        FieldError(_path(list(error.absolute_path)) or "(root)", _message(error))
        for error in sorted(
            _validator().iter_errors(defaulted), key=lambda e: list(map(str, e.absolute_path))
        )
    ]
    errors += list(_list_map_errors(defaulted, schema, ""))
    broken = frozenset(e.path if e.path != "(root)" else "" for e in errors)
    errors += list(_cel_errors(defaulted, schema, "", broken))
    return errors, defaulted


_TYPES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "object": "an object",
    "array": "a list",
}


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return f"the boolean {value!r}".lower()
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the string {value!r}"
    return "a list" if isinstance(value, list) else ("null" if value is None else "an object")


def _message(error: jsonschema.ValidationError) -> str:
    schema = error.schema if isinstance(error.schema, dict) else {}
    match error.validator:
        case "type" if schema.get("pattern") == DURATION_PATTERN:
            return (
                f"must be a duration string like 30s, 5m or 1h30m, not {_describe(error.instance)}"
            )
        case "type":
            wanted = _TYPES.get(str(error.validator_value), str(error.validator_value))
            return f"must be {wanted}, not {_describe(error.instance)}"
        case "pattern" if error.validator_value == DURATION_PATTERN:
            return f"invalid duration {error.instance!r} (write e.g. 30s, 5m, 1h30m)"
        case "pattern":
            return f"{error.instance!r} does not match {error.validator_value}"
        case "enum":
            allowed = ", ".join(str(v) for v in schema.get("enum", ()))
            return f"must be one of {allowed}, not {error.instance!r}"
        case "additionalProperties":
            return str(error.message).replace(
                "Additional properties are not allowed", "unknown field"
            )
        case "required":
            return str(error.message).replace("is a required property", "is required")
        case "minimum" | "maximum" | "minItems" | "maxItems" | "minLength" | "maxLength":
            return f"{error.validator} is {error.validator_value}: {error.message}"
    return str(error.message)
