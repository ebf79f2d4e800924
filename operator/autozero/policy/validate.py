"""Offline validation that says what the apiserver would say, from the CRD's own schema.

The CRD schema (schema.py) is the one source of truth. Here it is applied as the apiserver
applies it: defaults first, then the structural checks (types, enums, patterns, ranges, required
and unknown fields, list-map keys), then every `x-kubernetes-validations` CEL rule, evaluated
with cel-python on the same node. `autozero validate` and the operator's parser both start here.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any, TypeGuard

import celpy
import jsonschema
from celpy.adapter import json_to_cel
from celpy.evaluation import CELEvalError

from autozero.engine.durations import DURATION_PATTERN
from autozero.policy.errors import FieldError
from autozero.policy.fields import URL_WITHOUT_CREDENTIALS
from autozero.policy.model import NAME_PATTERN
from autozero.policy.schema import (
    ACTIVATION_METRICS_DECLARED,
    PROFILES_WITHIN_GROUP,
    RULE_HAS_A_FORM,
    RULE_METRICS_DECLARED,
    TARGET_RULE_NOT_PER_INSTANCE,
    TARGET_RULE_ONLY,
    activation_threshold_rule,
    crd,
)
from autozero.policy.suggest import closest, did_you_mean
from autozero.sources.registry import SOURCES
from autozero.targets.registry import TARGETS

Schema = dict[str, Any]
#: What the schema is made of: the registered sources and target kinds.
Plugins = tuple[tuple[object, ...], tuple[object, ...]]
#: Says, element by element, why a rule failed.
Explain = Callable[[Any, str], Iterator[FieldError]]


def _plugins() -> Plugins:
    return tuple(SOURCES.values()), tuple(TARGETS.values())


def openapi_schema() -> Schema:
    """The CRD's schema, made once for the kinds registered (a kind registered later, as a test
    does, makes it again)."""
    return _openapi_schema(_plugins())


@cache  # keyed by the plugins
def _openapi_schema(plugins: Plugins) -> Schema:  # noqa: ARG001
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


def _validator() -> jsonschema.Draft202012Validator:
    return _validator_for(_plugins())


@cache  # keyed by the plugins
def _validator_for(plugins: Plugins) -> jsonschema.Draft202012Validator:  # noqa: ARG001
    strict = _strict(openapi_schema())
    # metadata is the apiserver's business; only its name matters to us.
    strict["properties"]["metadata"] = {"type": "object"}
    return jsonschema.Draft202012Validator(strict)


def _path(parts: Iterator[Any] | list[Any]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def as_sent(value: Any) -> Any:
    """The manifest as kubectl sends it: it reads YAML into Go values and writes JSON, where a
    whole float64 (`12.0`) is written `12`; the apiserver, its schema and its CEL rules see an
    integer there (and an integer field given `12.0` passes)."""
    if isinstance(value, dict):
        return {k: as_sent(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_sent(v) for v in value]
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return int(value)
    return value


def apply_defaults(value: Any, schema: Schema) -> Any:
    """Fill schema defaults into present objects, as the apiserver does before validating; a
    field set to null that the schema does not call nullable is dropped first, as the apiserver
    drops it (so `value: null` is a missing field, defaulted or required, not a wrong type)."""
    if isinstance(value, dict) and "properties" in schema:
        for key, sub in schema["properties"].items():
            if key in value and value[key] is None and not sub.get("nullable"):
                del value[key]
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
            if key in value:
                value[key] = apply_defaults(value[key], sub)
    elif isinstance(value, list) and "items" in schema:
        return [apply_defaults(item, schema["items"]) for item in value]
    return value


@cache
def _program(rule: str) -> celpy.Runner:
    """One rule's compiled program. Under a lock: cel-python builds its Lark parser (LALR tables,
    0.1 s of CPU) on first use without one, so the operator's threads, parsing their first
    policies at once, each built it (the chaos campaign caught two doing so in a restart)."""
    with _COMPILING:
        environment = celpy.Environment()
        return environment.program(environment.compile(rule))


_COMPILING = threading.Lock()


def prepare() -> None:
    """Build what validating a first policy builds (the CEL parser, the schema's validator),
    for a process that would rather pay for it before it serves than inside its first pass."""
    _program("self == self")
    _validator()


def _holds(rule: str, value: Any) -> bool | None:
    """Whether `rule` holds on `value`; None when CEL cannot evaluate it (an overflow, say).
    Remembered by the value's JSON text: most nodes of the manifests of one repository (or of
    one policy read again) are alike, and cel-python takes a millisecond a rule."""
    try:
        key = json.dumps(value, sort_keys=True, allow_nan=True)
    except (TypeError, ValueError):  # keys of mixed types, a YAML date: evaluate, uncached
        return _evaluate(rule, value)
    if len(key) > _HELD_TEXT_MAX:  # a huge node: remembering it costs more than it saves
        return _evaluate(rule, value)
    if (rule, key) not in _HELD:
        if len(_HELD) >= _HELD_MAX:
            _HELD.clear()  # bounded: a long-running operator reads policies for weeks
        _HELD[rule, key] = _evaluate(rule, value)
    return _HELD[rule, key]


_HELD: dict[tuple[str, str], bool | None] = {}
_HELD_MAX = 8192
_HELD_TEXT_MAX = 4096  # so the memo holds at most some 32 MiB of text


def _evaluate(rule: str, value: Any) -> bool | None:
    compared = _DURATION_RULE.fullmatch(rule)
    if compared is not None and isinstance(value, str):
        return _compare_durations(value, compared.group(1), compared.group(2))
    try:
        return bool(_program(rule).evaluate({"self": json_to_cel(value)}))
    except CELEvalError:
        return None


#: `duration(self) <op> duration('<limit>')`: compared in Go's nanoseconds, not cel-python's
#: microseconds (`0.0001ms` is 100 ns to the apiserver, more than 0s; a timedelta rounds it to 0).
_DURATION_RULE = re.compile(r"duration\(self\) (<=|<|>=|>) duration\('([^']*)'\)")
_GO_UNITS_NS = {"ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
_GO_PART = re.compile(r"([0-9]*)(?:\.([0-9]*))?(ms|s|m|h)")
_GO_MAX_NS = (1 << 63) - 1


def go_duration_ns(text: str) -> int | None:
    """Nanoseconds, as Go's time.ParseDuration reads `text` (the apiserver's CEL `duration()`):
    each part's fraction through a float64 and truncated; None if it overflows an int64."""
    total, position = 0, 0
    for part in _GO_PART.finditer(text):
        if part.start() != position:
            return None
        position = part.end()
        unit = _GO_UNITS_NS[part.group(3)]
        whole = int(part.group(1) or "0") * unit
        digits = (part.group(2) or "")[:18]  # Go drops the digits that would overflow
        fraction = int(float(int(digits)) * (unit / 10 ** len(digits))) if digits else 0
        total += whole + fraction
        if total > _GO_MAX_NS:
            return None
    return total if position == len(text) and position else None


def _compare_durations(value: str, op: str, limit: str) -> bool | None:
    mine, theirs = go_duration_ns(value), go_duration_ns(limit)
    if mine is None or theirs is None:
        return None  # the apiserver cannot evaluate the rule either
    return {"<=": mine <= theirs, "<": mine < theirs, ">=": mine >= theirs, ">": mine > theirs}[op]


def _within(path: str, node: str) -> bool:
    return not node or path == node or path.startswith((f"{node}.", f"{node}["))


def _cel_errors(
    value: Any, schema: Schema, path: str, broken: frozenset[str], explainers: dict[str, Explain]
) -> Iterator[FieldError]:
    """CEL rules of every node whose subtree is structurally sound (a rule assumes its types);
    a rule that has an explanation gives that instead, even in a broken subtree (it checks its
    own types), so a typo in a metric name is reported beside any other mistake."""
    if isinstance(value, dict) and "properties" in schema:
        for key, sub in schema["properties"].items():
            if key in value:
                where = f"{path}.{key}" if path else key
                yield from _cel_errors(value[key], sub, where, broken, explainers)
    elif isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            yield from _cel_errors(item, schema["items"], f"{path}[{index}]", broken, explainers)
    sound = not any(_within(b, path) for b in broken)
    for validation in schema.get("x-kubernetes-validations", ()):
        explain = explainers.get(validation["rule"])
        if not sound:
            # Metric names are only known for sure when spec.metrics itself is sound.
            if explain is not None and not any(_within(b, f"{path}.metrics") for b in broken):
                yield from explain(value, path)
            continue
        ok = _holds(validation["rule"], value)
        if ok is None:
            message = validation["message"]
            yield FieldError(path, f"out of range: cannot be checked against '{message}'")
            continue
        if not bool(ok):
            explained = list(explain(value, path)) if explain is not None else []
            yield from explained or [FieldError(path, validation["message"])]


def _declared_metrics(spec: dict[str, Any]) -> list[str]:
    metrics = spec.get("metrics")
    return [
        m["name"]
        for m in (metrics if isinstance(metrics, list) else [])
        if isinstance(m, dict) and isinstance(m.get("name"), str)
    ]


def _undeclared(metric: Any, declared: list[str], path: str) -> Iterator[FieldError]:
    if not isinstance(metric, str) or metric in declared:
        return
    if not declared:
        yield FieldError(path, f"{metric!r} is not a declared metric (spec.metrics is empty)")
        return
    known = ", ".join(declared)
    guess = closest(metric, declared)
    hint = f"; did you mean {guess}?" if guess else ""
    yield FieldError(path, f"{metric!r} is not a declared metric (declared: {known}{hint})")


def _dicts(value: Any, key: str) -> Iterator[tuple[int, dict[str, Any]]]:
    items = value.get(key) if isinstance(value, dict) else None
    for index, item in enumerate(items if isinstance(items, list) else []):
        if isinstance(item, dict):
            yield index, item


def _activation_metrics(spec: Any, path: str) -> Iterator[FieldError]:
    declared = _declared_metrics(spec) if isinstance(spec, dict) else []
    for g, group in _dicts(spec, "groups"):
        activation = group.get("activation")
        if isinstance(activation, dict):
            where = f"{path}.groups[{g}].activation.metric"
            yield from _undeclared(activation.get("metric"), declared, where)


def _rule_metrics(spec: Any, path: str) -> Iterator[FieldError]:
    declared = _declared_metrics(spec) if isinstance(spec, dict) else []
    for g, group in _dicts(spec, "groups"):
        for p, profile in _dicts(group, "profiles"):
            for r, rule in _dicts(profile, "rules"):
                where = f"{path}.groups[{g}].profiles[{p}].rules[{r}].metric"
                yield from _undeclared(rule.get("metric"), declared, where)


def _activation_thresholds(spec: Any, path: str) -> Iterator[FieldError]:
    metrics = spec.get("metrics") if isinstance(spec, dict) else None
    values = {  # metric name -> its source, for sources whose value counts no work
        m.get("name"): source
        for m in (metrics if isinstance(metrics, list) else [])
        if isinstance(m, dict)
        for key, source in SOURCES.items()
        if key in m and not source.counts_work
    }
    for g, group in _dicts(spec, "groups"):
        activation = group.get("activation")
        if not isinstance(activation, dict) or "threshold" in activation:
            continue
        metric = activation.get("metric")
        if isinstance(metric, str) and metric in values:
            yield FieldError(
                f"{path}.groups[{g}].activation.threshold",
                f"is required: activation metric {metric!r} is {values[metric].what}, which may "
                "never fall to 0 (a CPU ratio, a rate), and then the group could never sleep; "
                "set the value at or below which the group counts as idle (0 for a count of "
                "pending work)",
            )


def _profiles_within_group(group: Any, path: str) -> Iterator[FieldError]:
    capacity = group.get("capacity") if isinstance(group, dict) else None
    if not isinstance(capacity, dict):
        return
    low, high = capacity.get("minimum", 0), capacity.get("maximum")
    if not (_is_int(low) and _is_int(high)):
        return
    for p, profile in _dicts(group, "profiles"):
        own = profile.get("capacity")
        if not isinstance(own, dict):
            continue
        minimum, maximum = own.get("minimum", 0), own.get("maximum")
        where = f"{path}.profiles[{p}].capacity"
        if _is_int(minimum) and minimum < low:
            yield FieldError(
                f"{where}.minimum",
                f"{minimum} is below the group's capacity.minimum {low}: {_CAPS}",
            )
        if _is_int(maximum) and maximum > high:
            yield FieldError(
                f"{where}.maximum",
                f"{maximum} is above the group's capacity.maximum {high}: {_CAPS}",
            )


_CAPS = "the group's capacity bounds every profile (widen the group's, or narrow the profile's)"


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


_THRESHOLD_RULE_FIELDS = ("operator", "threshold", "action")


def _rule_form(rule: Any, path: str) -> Iterator[FieldError]:
    if not isinstance(rule, dict) or "target" in rule:
        return
    for key in _THRESHOLD_RULE_FIELDS:
        if key not in rule:
            yield FieldError(
                f"{path}.{key}",
                "is required in a threshold rule (or write target: {averageValue: N} for a "
                "target rule)",
            )


def _target_rule_only(rule: Any, path: str) -> Iterator[FieldError]:
    if not isinstance(rule, dict) or "target" not in rule:
        return
    for key in _THRESHOLD_RULE_FIELDS:
        if key in rule:
            yield FieldError(
                f"{path}.{key}",
                f"has no place in a target rule, whose target sets the count (remove {key}, "
                "or target for a threshold rule)",
            )


def _target_not_per_instance(rule: Any, path: str) -> Iterator[FieldError]:
    if isinstance(rule, dict) and "target" in rule and rule.get("perInstance") is True:
        yield FieldError(
            f"{path}.perInstance",
            "does not apply to a target rule: averageValue divides the value by the replica "
            "count itself, and value is measured at the current count",
        )


@cache  # keyed by the plugins
def _explained(plugins: Plugins) -> dict[str, Explain]:  # noqa: ARG001
    """Rules the apiserver can only report on the node that holds them, explained element by
    element: each explanation yields an error exactly when its rule fails."""
    return {
        ACTIVATION_METRICS_DECLARED: _activation_metrics,
        RULE_METRICS_DECLARED: _rule_metrics,
        activation_threshold_rule(): _activation_thresholds,
        PROFILES_WITHIN_GROUP: _profiles_within_group,
        RULE_HAS_A_FORM: _rule_form,
        TARGET_RULE_ONLY: _target_rule_only,
        TARGET_RULE_NOT_PER_INSTANCE: _target_not_per_instance,
    }


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
        seen: dict[tuple[str, ...], int] = {}
        for index, item in enumerate(value):
            item_path = f"{path}[{index}]"
            if keys and isinstance(item, dict):
                # As text: a malformed key may be a list or a map, which cannot be hashed.
                identity = tuple(json.dumps(item.get(k), sort_keys=True) for k in keys)
                if identity in seen:
                    name = item.get(keys[0])
                    first = f"{path}[{seen[identity]}]"
                    yield FieldError(
                        f"{item_path}.{keys[0]}", f"duplicate name {name!r} (also {first})"
                    )
                else:
                    seen[identity] = index
            yield from _list_map_errors(item, schema["items"], item_path)


def schema_errors(manifest: Any) -> tuple[list[FieldError], Any]:
    """Every error the CRD schema finds, and the manifest with defaults applied."""
    schema = openapi_schema()
    defaulted = apply_defaults(as_sent(copy.deepcopy(manifest)), schema)
    errors: list[FieldError] = []
    broken: set[str] = set()
    ordered = sorted(
        _validator().iter_errors(defaulted), key=lambda e: list(map(str, e.absolute_path))
    )
    for error in ordered:
        path = _path(list(error.absolute_path))
        for field_error in _field_errors(error, path):
            errors.append(field_error)
            # An unknown field changes no type a rule relies on; anything else might.
            if error.validator != "additionalProperties":
                broken.add(field_error.path if field_error.path != "(root)" else "")
    errors += list(_list_map_errors(defaulted, schema, ""))
    explained = _explained(_plugins())
    errors += list(_cel_errors(defaulted, schema, "", frozenset(broken), explained))
    return list(dict.fromkeys(errors)), defaulted


def _field_errors(error: jsonschema.ValidationError, path: str) -> Iterator[FieldError]:
    """One error per field: unknown and missing fields are named by their own path (as the
    apiserver names them), an unknown one with the field it is a typo of."""
    schema = error.schema if isinstance(error.schema, dict) else {}
    instance = error.instance if isinstance(error.instance, dict) else {}
    known = list(schema.get("properties", {}))
    unknown = [k for k in instance if k not in known]
    if error.validator == "additionalProperties":
        for key in unknown:
            hint = did_you_mean(key, known) or f" (expected one of: {', '.join(known)})"
            yield FieldError(_join(path, key), f"unknown field{hint}")
    elif error.validator == "required":
        # A missing field that an unknown one is a typo of is said once, by the unknown one.
        meant = {closest(k, known) for k in unknown if isinstance(k, str)}
        required: Any = error.validator_value
        for key in required:
            if key not in instance and key not in meant:
                yield FieldError(_join(path, key), "is required")
    else:
        yield FieldError(path or "(root)", _message(error))


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


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


def _plural(count: int, what: str) -> str:
    return f"{count} {what}" + ("" if count == 1 else "s")


def _message(error: jsonschema.ValidationError) -> str:
    schema = error.schema if isinstance(error.schema, dict) else {}
    value: Any = error.instance
    limit: Any = error.validator_value
    match error.validator:
        case "type" if schema.get("pattern") == DURATION_PATTERN:
            return f"must be a duration string like 30s, 5m or 1h30m, not {_describe(value)}"
        case "type":
            wanted = _TYPES.get(str(limit), str(limit))
            return f"must be {wanted}, not {_describe(value)}"
        case "pattern" if limit == DURATION_PATTERN:
            return f"invalid duration {value!r} (write e.g. 30s, 5m, 1h30m)"
        case "pattern" if limit == NAME_PATTERN:
            return (
                f"invalid name {value!r}: lower-case letters, digits and '-', starting and "
                "ending with a letter or digit"
            )
        case "pattern" if limit == URL_WITHOUT_CREDENTIALS:
            # The value is not repeated: it may hold a password.
            return (
                "must be a URL like scheme://host:port/path with no user or password in it "
                "(put a URL with credentials in a Secret, and use urlFrom)"
            )
        case "pattern":
            return f"{value!r} does not match {limit}"
        case "enum":
            allowed = [str(v) for v in schema.get("enum", ())]
            return (
                f"must be one of {', '.join(allowed)}, not {_describe(value)}"
                f"{did_you_mean(value, allowed)}"
            )
        case "minimum":
            return f"must be at least {limit}, not {value}"
        case "maximum":
            return f"must be at most {limit}, not {value}"
        case "minItems":
            return f"must have at least {_plural(limit, 'item')}, not {len(value)}"
        case "maxItems":
            return f"must have at most {_plural(limit, 'item')}, not {len(value)}"
        case "minLength" if limit == 1:
            return "must not be empty"
        case "minLength":
            return f"must be at least {_plural(limit, 'character')} long, not {len(value)}"
        case "maxLength":
            return f"must be at most {_plural(limit, 'character')} long, not {len(value)}"
    return str(error.message)
