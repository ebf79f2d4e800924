"""Policy errors: every one names the field it is about, so a user can find it in their YAML."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldError:
    path: str  # e.g. spec.groups[0].profiles[1].rules[0].threshold
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class PolicyInvalid(ValueError):
    """A manifest that is not a usable ScalingPolicy; carries every error found, not the first."""

    def __init__(self, errors: Sequence[FieldError]) -> None:
        self.errors = tuple(errors)
        lines = "\n".join(f"  {error}" for error in self.errors)
        super().__init__(f"invalid ScalingPolicy ({len(self.errors)} errors):\n{lines}")
