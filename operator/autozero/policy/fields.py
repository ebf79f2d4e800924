"""A cursor over a manifest that knows its field path and collects errors instead of stopping.

Parsing goes on after an error (with a placeholder value) so `autozero validate` reports every
problem of a manifest in one run, each with its path.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import timedelta
from enum import StrEnum
from typing import Any, TypeVar

from autozero.engine.durations import DurationError, parse_duration
from autozero.policy.errors import FieldError

E = TypeVar("E", bound=StrEnum)
N = TypeVar("N", int, float)

_TYPE_NAMES = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}


class Field:
    def __init__(self, value: Any, path: str, errors: list[FieldError]) -> None:
        self.value = value
        self.path = path
        self.errors = errors

    def error(self, message: str, key: str | None = None) -> None:
        self.errors.append(FieldError(self.child_path(key) if key else self.path, message))

    def child_path(self, key: str | int) -> str:
        if isinstance(key, int):
            return f"{self.path}[{key}]"
        return f"{self.path}.{key}" if self.path else key

    def has(self, key: str) -> bool:
        return isinstance(self.value, dict) and self.value.get(key) is not None

    def child(self, key: str) -> Field:
        raw = self.value.get(key) if isinstance(self.value, dict) else None
        return Field(raw, self.child_path(key), self.errors)

    # -- shapes ---------------------------------------------------------------------------
    def is_object(self) -> bool:
        if isinstance(self.value, dict):
            return True
        self.error(f"must be an object, not {_describe(self.value)}")
        return False

    def only(self, allowed: Iterable[str]) -> None:
        """Reject keys the schema does not know (a typo must not pass silently)."""
        if not isinstance(self.value, dict):
            return
        known = set(allowed)
        for key in self.value:
            if key not in known:
                self.error(
                    f"unknown field {key!r}; expected one of {', '.join(sorted(known))}",
                    key=str(key),
                )

    def items(self, key: str, *, required: bool = False, min_items: int = 0) -> list[Field]:
        node = self.child(key)
        if node.value is None:
            if required:
                node.error("is required")
            return []
        if not isinstance(node.value, list):
            node.error(f"must be a list, not {_describe(node.value)}")
            return []
        if len(node.value) < min_items:
            node.error(f"must have at least {min_items} item{'s' if min_items > 1 else ''}")
        return [Field(v, node.child_path(i), self.errors) for i, v in enumerate(node.value)]

    def object(self, key: str, *, required: bool = False) -> Field | None:
        node = self.child(key)
        if node.value is None:
            if required:
                node.error("is required")
            return None
        return node if node.is_object() else None

    def exactly_one(self, keys: Iterable[str], what: str) -> tuple[str, Field] | None:
        options = list(keys)
        present = [k for k in options if self.has(k)]
        if len(present) == 1:
            node = self.child(present[0])
            return (present[0], node) if node.is_object() else None
        if not present:
            self.error(f"must set exactly one {what}: {', '.join(options)}")
        else:
            self.error(f"must set exactly one {what}, not {len(present)}: {', '.join(present)}")
        return None

    # -- scalars --------------------------------------------------------------------------
    def string(self, key: str, default: str | None = None, *, required: bool = False) -> str:
        node = self.child(key)
        if node.value is None:
            if required:
                node.error("is required")
            return default or ""
        if not isinstance(node.value, str):
            node.error(f"must be a string, not {_describe(node.value)}")
            return default or ""
        if required and not node.value:
            node.error("must not be empty")
        return node.value

    def boolean(self, key: str, default: bool = False) -> bool:
        node = self.child(key)
        if node.value is None:
            return default
        if not isinstance(node.value, bool):
            node.error(f"must be true or false, not {_describe(node.value)}")
            return default
        return node.value

    def integer(
        self,
        key: str,
        default: int = 0,
        *,
        required: bool = False,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> int:
        node = self.child(key)
        if node.value is None:
            if required:
                node.error("is required")
            return default
        if isinstance(node.value, bool) or not isinstance(node.value, int):
            node.error(f"must be an integer, not {_describe(node.value)}")
            return default
        return node.in_range(node.value, minimum, maximum, default)

    def number(
        self,
        key: str,
        default: float = 0.0,
        *,
        required: bool = False,
        minimum: float | None = None,
        maximum: float | None = None,
    ) -> float:
        node = self.child(key)
        if node.value is None:
            if required:
                node.error("is required")
            return default
        value = node.value
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            node.error(f"must be a number, not {_describe(value)}")
            return default
        return node.in_range(float(value), minimum, maximum, default)

    def in_range(self, value: N, minimum: N | None, maximum: N | None, default: N) -> N:
        if minimum is not None and value < minimum:
            self.error(f"must be at least {minimum}, not {value}")
            return default
        if maximum is not None and value > maximum:
            self.error(f"must be at most {maximum}, not {value}")
            return default
        return value

    def duration(
        self,
        key: str,
        default: str | None = None,
        *,
        required: bool = False,
        minimum: timedelta | None = None,
    ) -> timedelta:
        node = self.child(key)
        text = node.value if node.value is not None else default
        if text is None:
            if required:
                node.error("is required")
            return timedelta(0)
        if not isinstance(text, str):
            node.error(f"must be a duration string like 30s, 5m or 1h30m, not {_describe(text)}")
            return timedelta(0)
        try:
            value = parse_duration(text)
        except DurationError as exc:
            node.error(str(exc))
            return timedelta(0)
        if minimum is not None and value < minimum:
            node.error(f"must be at least {minimum.total_seconds():g}s, not {text}")
        return value

    def enum(self, key: str, kind: type[E], default: E | None = None) -> E:
        node = self.child(key)
        if node.value is None:
            if default is None:
                node.error("is required")
                return next(iter(kind))
            return default
        try:
            return kind(node.value)
        except ValueError:
            allowed = ", ".join(member.value for member in kind)
            node.error(f"must be one of {allowed}, not {node.value!r}")
            return default if default is not None else next(iter(kind))


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    for kind, name in _TYPE_NAMES.items():
        if isinstance(value, kind):
            return f"{name} ({value!r})" if kind in (str, bool) else name
    if isinstance(value, int | float):
        return f"the number {value!r}"
    return type(value).__name__
