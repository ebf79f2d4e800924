"""What every scale target offers: observe the group, and carry out a change. One module per kind
(`targets.kind` says what else it declares).

A target never decides: the engine does. A target reports what it sees (`Observed`) and applies a
`Change` safely: with a handoff, the native autoscaler exists exactly while the group is awake, and
the order of steps is such that a crash between two of them is repaired by the next cycle
(`converge`), never leaving an autoscaler fighting a group at zero.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol


class TargetError(Exception):
    """A scale target could not be read or changed. Carries which group, and why."""

    retryable = False

    def __init__(self, group: str, message: str) -> None:
        self.group, self.detail = group, message
        super().__init__(f"{group}: {message}")


class TargetNotFound(TargetError):
    """The group (MIG, Deployment...) does not exist."""


class TargetForbidden(TargetError):
    """The operator may not read or change it (IAM, RBAC, allowlist)."""


class TargetConflict(TargetError):
    """Something else owns the count (a foreign autoscaler, say)."""


class TargetConfigError(TargetError):
    """The target's settings cannot work: a credentials Secret missing or not a key."""


@dataclass(frozen=True, slots=True)
class Observed:
    replicas: int  # the group's target size / spec.replicas
    ready: int | None = None  # instances or pods actually up, when known
    stable: bool = True  # no instance creating or deleting
    autoscaler: str | None = None  # the native autoscaler targeting the group, if any
    owned_autoscaler: bool = False  # ... and autozero created it


@dataclass(frozen=True, slots=True)
class Change:
    """Bring the group to `replicas`; with `handoff`, the native autoscaler exists iff awake."""

    replicas: int
    handoff: Any = None  # the group's handoff settings (of its target's kind), if it hands off
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Applied:
    steps: tuple[str, ...]  # what was done, in order ("resize 0 -> 2", "create autoscaler ...")

    @property
    def wrote(self) -> bool:
        return bool(self.steps)


class ScaleTarget(Protocol):
    """One group's target."""

    name: str

    def observe(self) -> Observed:
        """Read the group's current state."""
        ...

    def plan(self, change: Change, observed: Observed) -> tuple[Step, ...]:
        """The writes `apply` would make (none when the group already matches). Pure."""
        ...

    def apply(self, change: Change, observed: Observed) -> Applied:
        """Carry out `change` given what was just observed; write nothing if nothing differs."""
        ...


class StepKind(StrEnum):
    DELETE_AUTOSCALER = "delete-autoscaler"
    RESIZE = "resize"
    CREATE_AUTOSCALER = "create-autoscaler"
    CONFLICT = "conflict"  # a foreign autoscaler: nothing may be written


@dataclass(frozen=True, slots=True)
class Step:
    kind: StepKind
    autoscaler: str = ""  # the autoscaler deleted, or the foreign one
    was: int = 0
    to: int = 0


def plan(change: Change, observed: Observed, *, handoff: bool) -> tuple[Step, ...]:
    """The writes that bring `observed` to `change`, in their crash-safe order. Pure, so the
    runtime knows without any I/O whether a change needs a write at all (most do not).

    Without a handoff, or to sleep: the autoscaler goes first (a group it targets cannot be
    resized), then the resize. Awake with a handoff: the size first, then the autoscaler, which
    owns the count from then on. Planned on every evaluation, this also repairs a half-done
    change: an awake group without its autoscaler gets one, a group at zero loses it. An
    autoscaler autozero did not create is never touched.
    """
    if observed.autoscaler and not observed.owned_autoscaler:
        if observed.replicas != change.replicas or handoff:
            return (Step(StepKind.CONFLICT, autoscaler=observed.autoscaler),)
        return ()
    steps: list[Step] = []
    if not handoff or change.replicas == 0:
        if observed.autoscaler:
            steps.append(Step(StepKind.DELETE_AUTOSCALER, autoscaler=observed.autoscaler))
        if observed.replicas != change.replicas:
            steps.append(Step(StepKind.RESIZE, was=observed.replicas, to=change.replicas))
        return tuple(steps)
    if observed.autoscaler is None:
        if observed.replicas < change.replicas:
            steps.append(Step(StepKind.RESIZE, was=observed.replicas, to=change.replicas))
        steps.append(Step(StepKind.CREATE_AUTOSCALER))
    return tuple(steps)


def converge(
    group: str,
    change: Change,
    observed: Observed,
    *,
    handoff: bool,
    resize: Callable[[int, int], str],
    create_autoscaler: Callable[[], str],
    delete_autoscaler: Callable[[str], str],
    foreign: Callable[[str], str],
) -> Applied:
    """Carry out `plan(change, observed)`; each callback does one write and says what it did."""
    done: list[str] = []
    for step in plan(change, observed, handoff=handoff):
        match step.kind:
            case StepKind.CONFLICT:
                raise TargetConflict(group, foreign(step.autoscaler))
            case StepKind.DELETE_AUTOSCALER:
                done.append(delete_autoscaler(step.autoscaler))
            case StepKind.RESIZE:
                done.append(resize(step.was, step.to))
            case StepKind.CREATE_AUTOSCALER:
                done.append(create_autoscaler())
    return Applied(tuple(done))
