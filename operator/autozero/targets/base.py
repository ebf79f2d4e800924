"""What every scale target offers: observe the group, and carry out a change. One file per kind.

A target never decides: the engine does. A target reports what it sees (`Observed`) and applies a
`Change` safely: with a handoff, the native autoscaler exists exactly while the group is awake, and
the order of steps is such that a crash between two of them is repaired by the next cycle
(`converge`), never leaving an autoscaler fighting a group at zero.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from autozero.policy.model import Handoff


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
    handoff: Handoff | None = None
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

    def apply(self, change: Change, observed: Observed) -> Applied:
        """Carry out `change` given what was just observed; write nothing if nothing differs."""
        ...


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
    """The crash-safe order of steps every target follows; each callback does one write and
    says what it did.

    Without a handoff, or to sleep: the autoscaler goes first (a group it targets cannot be
    resized), then the resize. Awake with a handoff: the size first, then the autoscaler, which
    owns the count from then on. Run every cycle, this also repairs a half-done change: an awake
    group without its autoscaler gets one, a group at zero loses it. An autoscaler autozero did
    not create is never touched.
    """
    if observed.autoscaler and not observed.owned_autoscaler:
        if observed.replicas != change.replicas or handoff:
            raise TargetConflict(group, foreign(observed.autoscaler))
        return Applied(())
    steps: list[str] = []
    if not handoff or change.replicas == 0:
        if observed.autoscaler:
            steps.append(delete_autoscaler(observed.autoscaler))
        if observed.replicas != change.replicas:
            steps.append(resize(observed.replicas, change.replicas))
        return Applied(tuple(steps))
    if observed.autoscaler is None:
        if observed.replicas < change.replicas:
            steps.append(resize(observed.replicas, change.replicas))
        steps.append(create_autoscaler())
    return Applied(tuple(steps))
