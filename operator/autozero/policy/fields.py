"""The building blocks of the CRD's schema: typed fields with descriptions, CEL rules, and the
shapes several parts share (a URL without credentials, a Secret's key, a server connection).

The spec's own fields (`schema.py`) and each source's and target kind's fragment (in its own
module) are written with these, so every kind's fragment reads like the rest of the schema.
"""

from __future__ import annotations

from typing import Any

from autozero.engine.durations import DURATION_PATTERN
from autozero.policy.model import NAME_PATTERN

Schema = dict[str, Any]


def string(description: str, **extra: Any) -> Schema:
    return {"type": "string", "description": description, **extra}


#: The CEL rule of a duration that must be positive (the pattern already refuses negatives).
POSITIVE_DURATION = "duration(self) > duration('0s')"


def duration(
    description: str, default: str | None = None, *, positive_because: str | None = None
) -> Schema:
    """A duration field; `positive_because` refuses 0s, saying why it cannot work."""
    schema = string(
        description + " A duration such as 30s, 5m or 1h30m.",
        pattern=DURATION_PATTERN,
        maxLength=32,
    )
    if default is not None:
        schema["default"] = default
    if positive_because is not None:
        schema["x-kubernetes-validations"] = [
            {"rule": POSITIVE_DURATION, "message": f"must be longer than 0s: {positive_because}"}
        ]
    return schema


def integer(description: str, **extra: Any) -> Schema:
    return {"type": "integer", "description": description, **extra}


def number(description: str, **extra: Any) -> Schema:
    return {"type": "number", "description": description, **extra}


def boolean(description: str, default: bool = False) -> Schema:
    return {"type": "boolean", "description": description, "default": default}


def enum(description: str, values: list[str], default: str | None = None) -> Schema:
    schema = string(description, enum=values)
    if default is not None:
        schema["default"] = default
    return schema


def obj(
    description: str,
    properties: dict[str, Schema],
    *,
    required: list[str] | None = None,
    rules: list[tuple[str, str]] = (),  # type: ignore[assignment]
) -> Schema:
    schema: Schema = {"type": "object", "description": description, "properties": properties}
    if required:
        schema["required"] = required
    if rules:
        schema["x-kubernetes-validations"] = [{"rule": r, "message": m} for r, m in rules]
    return schema


def named_list(description: str, items: Schema, max_items: int) -> Schema:
    """A list whose items are unique by `name` (the apiserver enforces it as a list map)."""
    return {
        "type": "array",
        "description": description,
        "items": items,
        "maxItems": max_items,
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["name"],
    }


def name(what: str) -> Schema:
    return string(
        f"The {what}'s name: lower-case letters, digits and '-'.",
        pattern=NAME_PATTERN,
        maxLength=63,
    )


def exactly_one(keys: list[str]) -> str:
    return " + ".join(f"(has(self.{k}) ? 1 : 0)" for k in keys) + " == 1"


#: A URL whose authority carries no user or password: credentials belong in a Secret.
URL_WITHOUT_CREDENTIALS = r"^[a-zA-Z][a-zA-Z0-9+.-]*://[^/@]*(/.*)?$"


def url(description: str) -> Schema:
    return string(
        description + " No credentials: put a URL with a password in a Secret.",
        pattern=URL_WITHOUT_CREDENTIALS,
        maxLength=2048,
    )


def secret_ref(what: str) -> Schema:
    return obj(
        f"Where to read {what}: a key of a Secret in the policy's own namespace.",
        {
            "secretKeyRef": obj(
                "A key of a Secret in the policy's namespace.",
                {
                    "name": string("The Secret's name.", maxLength=253),
                    "key": string("The key within the Secret.", maxLength=253),
                },
                required=["name", "key"],
            )
        },
        required=["secretKeyRef"],
    )


def connection(what: str, example: str) -> dict[str, Schema]:
    return {
        "url": url(f"The {what} URL (e.g. {example})."),
        "urlFrom": secret_ref(f"the {what} URL (it may carry a password)"),
    }


def connection_rules(what: str) -> list[tuple[str, str]]:
    return [("has(self.url) != has(self.urlFrom)", f"set exactly one of url or urlFrom for {what}")]


def either(keys: list[str]) -> str:
    """`a, b or c`: the keys of which exactly one is wanted, for a message."""
    return ", ".join(keys[:-1]) + " or " + keys[-1] if len(keys) > 1 else "".join(keys)
