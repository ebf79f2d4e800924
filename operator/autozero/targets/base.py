"""What every scale target offers: observe the group, and carry out a change. One module per kind
(`targets.kind` says what else it declares).

A target never decides: the engine does. A target reports what it sees (`Observed`) and applies a
`Change` safely: with a handoff, the native autoscaler exists exactly while the group is awake, and
the order of steps is such that a crash between two of them is repaired by the next cycle
(`converge`), never leaving an autoscaler fighting a group at zero.

A standby pool (GCE suspended or stopped VMs, `Standby`) is planned the same way: Sleep moves
up to its size of the running VMs into the pool and deletes the rest; a scale-out resumes or
starts pool VMs and creates only the rest. Each of those is two writes, and each is planned from
what is observed, so a crash between them is finished by the next cycle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar, Protocol


class TargetError(Exception):
    """A scale target could not be read or changed. Carries which group, and why."""

    retryable = False
    #: The Event's reason, and whether it is a failure (a Warning, Ready=False, an alert's
    #: `result="error"`) or a write autozero stopped itself, on purpose.
    event_reason: ClassVar[str] = "TargetError"
    failure: ClassVar[bool] = True

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


class SleepWithdrawn(TargetError):
    """A sleep stopped before its last step: asked again on fresh reads after its first steps
    (an autoscaler deleted), the group was no longer idle. It stays as those steps left it, and
    the next pass decides again. Not a failure: work came (or a read failed, which the source's
    own condition reports), and the group keeps its machines."""

    event_reason = "SleepWithdrawn"
    failure = False


#: Asked before a sleep's step that takes the group's machines down, when earlier steps of the
#: same change came first: None if the sleep still holds, else why not ("work came: ...").
Recheck = Callable[[], str | None]


@dataclass(frozen=True, slots=True)
class Observed:
    replicas: int  # the group's target size / spec.replicas
    ready: int | None = None  # instances or pods actually up, when known
    stable: bool = True  # no instance creating or deleting
    autoscaler: str | None = None  # the native autoscaler targeting the group, if any
    owned_autoscaler: bool = False  # ... and autozero created it
    suspended: int = 0  # the standby pool beside `replicas`: suspended VMs (target)...
    stopped: int = 0  # ... and stopped ones
    # How long a new VM runs before it may join the pool (s); None: the kind has no pools.
    standby_delay: int | None = None


@dataclass(frozen=True, slots=True)
class Standby:
    """A group's standby pool: up to `size` of its VMs kept suspended (or `stopped`) at Sleep,
    and resumed (started) first at the next scale-out."""

    size: int
    stopped: bool = False  # stopped VMs (disk kept) instead of suspended ones (memory kept)
    initial_delay: int = 0  # seconds a new VM runs before it may be suspended or stopped

    def held(self, observed: Observed) -> int:
        return observed.stopped if self.stopped else observed.suspended

    def other(self, observed: Observed) -> int:
        """The pool of the other kind (left by an earlier mode): emptied."""
        return observed.suspended if self.stopped else observed.stopped


@dataclass(frozen=True, slots=True)
class Change:
    """Bring the group to `replicas`; with `handoff`, the native autoscaler exists iff awake."""

    replicas: int
    handoff: Any = None  # the group's handoff settings (of its target's kind), if it hands off
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Applied:
    steps: tuple[str, ...]  # what was done, in order ("resize 0 -> 2", "create autoscaler ...")
    # What a change through a standby pool did, in a user's words, for the Events: "resumed 3
    # from the suspended pool (0 left), created 2". Empty without a pool move.
    pool: str = ""

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

    def apply(self, change: Change, observed: Observed, recheck: Recheck | None = None) -> Applied:
        """Carry out `change` given what was just observed; write nothing if nothing differs.
        A sleep of several steps asks `recheck` before the one that takes machines down; a
        kind whose calls are retried may also ask it before a sleep's write is sent again."""
        ...


class StepKind(StrEnum):
    DELETE_AUTOSCALER = "delete-autoscaler"
    RESIZE = "resize"
    CREATE_AUTOSCALER = "create-autoscaler"
    CONFLICT = "conflict"  # a foreign autoscaler: nothing may be written
    SET_POOL = "set-pool"  # the pool's settings (initial delay) and a shrunk size
    TO_POOL = "to-pool"  # suspend or stop `was - to` running VMs
    FROM_POOL = "from-pool"  # resume or start `to - was` pool VMs


@dataclass(frozen=True, slots=True)
class Step:
    kind: StepKind
    autoscaler: str = ""  # the autoscaler deleted, or the foreign one
    was: int = 0
    to: int = 0


def plan(
    change: Change,
    observed: Observed,
    *,
    handoff: bool,
    standby: Standby | None = None,
    wakes_from_zero: bool = True,
) -> tuple[Step, ...]:
    """The writes that bring `observed` to `change`, in their crash-safe order. Pure, so the
    runtime knows without any I/O whether a change needs a write at all (most do not).

    Without a handoff, or to sleep: the autoscaler goes first (a group it targets cannot be
    resized), then the resize. Awake with a handoff: the size first, then the autoscaler, which
    owns the count from then on. Planned on every evaluation, this also repairs a half-done
    change: an awake group without its autoscaler gets one, a group at zero loses it. An
    autoscaler autozero did not create is never touched.

    An awake group found at 0 under its own autoscaler (someone scaled it down by hand) is
    resized to the wake count when that autoscaler does not bring it up itself
    (`wakes_from_zero`: the GCE autoscaler holds its minimum, an HPA is disabled at 0 replicas).

    With a standby pool, a resize to 0 is preceded by moving running VMs into the pool (up to
    its size), and a resize up by taking VMs out of it; the pool's settings come first.
    """
    if observed.autoscaler and not observed.owned_autoscaler:
        if observed.replicas != change.replicas or handoff:
            return (Step(StepKind.CONFLICT, autoscaler=observed.autoscaler),)
        return ()
    steps: list[Step] = []
    if standby is not None:
        held = standby.held(observed)
        if (
            held > standby.size
            or standby.other(observed)
            or observed.standby_delay != standby.initial_delay
        ):
            steps.append(Step(StepKind.SET_POOL, was=held, to=min(held, standby.size)))
    if not handoff or change.replicas == 0:
        if observed.autoscaler:
            steps.append(Step(StepKind.DELETE_AUTOSCALER, autoscaler=observed.autoscaler))
        steps += _sizes(observed, change.replicas, standby)
        return tuple(steps)
    if observed.autoscaler is None:
        if observed.replicas < change.replicas:
            steps += _sizes(observed, change.replicas, standby)
        steps.append(Step(StepKind.CREATE_AUTOSCALER))
    elif observed.replicas == 0 < change.replicas and not wakes_from_zero:
        steps += _sizes(observed, change.replicas, standby)
    return tuple(steps)


def _sizes(observed: Observed, to: int, standby: Standby | None) -> list[Step]:
    """Resize from `observed.replicas` to `to`, through the pool when there is one."""
    was = observed.replicas
    steps: list[Step] = []
    if standby is not None:
        held = min(standby.held(observed), standby.size)
        if to == 0 and (room := min(was, standby.size - held)) > 0:
            steps.append(Step(StepKind.TO_POOL, was=was, to=was - room))
            was -= room
        elif to > was and (taken := min(held, to - was)) > 0:
            steps.append(Step(StepKind.FROM_POOL, was=was, to=was + taken))
            was += taken
    if was != to:
        steps.append(Step(StepKind.RESIZE, was=was, to=to))
    return steps


@dataclass(frozen=True, slots=True)
class PoolWrites:
    """A standby pool's writes. Moving VMs says what it did and how many it moved: fewer than
    planned when the pool has fewer ready (one lost, or still being suspended). Into the pool,
    also how many new VMs it asked the group to make for the pool in place of VMs still booting
    (which cannot be suspended or stopped; the resize after deletes them)."""

    configure: Callable[[Step], str]  # SET_POOL
    to_pool: Callable[[int, int], tuple[str, int, int]]  # (running was, running to)
    from_pool: Callable[[int, int], tuple[str, int]]


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
    standby: Standby | None = None,
    pool: PoolWrites | None = None,
    recheck: Recheck | None = None,
    wakes_from_zero: bool = True,
) -> Applied:
    """Carry out `plan(change, observed)`; each callback does one write and says what it did.

    A pool that gave fewer VMs than planned is made up by the resize that follows (added when
    the plan had none: a wake the pool was to cover alone). A sleep whose first steps were
    made (an autoscaler deleted: an operation of seconds, longer when the API is slow) asks
    `recheck` before it takes machines down: jobs may have started on them meanwhile."""
    done: list[str] = []
    steps = plan(
        change, observed, handoff=handoff, standby=standby, wakes_from_zero=wakes_from_zero
    )
    running = observed.replicas
    pooled = taken = made = 0  # VMs moved into the pool, out of it, made for it
    for n, step in enumerate(steps):
        takes_down = step.kind is StepKind.TO_POOL or (
            step.kind is StepKind.RESIZE and step.to < running
        )
        if change.replicas == 0 and done and takes_down and recheck is not None:
            reason = recheck()
            if reason is not None:
                raise SleepWithdrawn(
                    group,
                    f"the sleep stopped before its last step: {reason}; made: "
                    f"{'; '.join(done)}; left at {running}, decided again at the next pass",
                )
        match step.kind:
            case StepKind.CONFLICT:
                raise TargetConflict(group, foreign(step.autoscaler))
            case StepKind.DELETE_AUTOSCALER:
                done.append(delete_autoscaler(step.autoscaler))
            case StepKind.RESIZE:
                done.append(resize(running, step.to))
                running = step.to
            case StepKind.CREATE_AUTOSCALER:
                done.append(create_autoscaler())
            case StepKind.SET_POOL | StepKind.TO_POOL | StepKind.FROM_POOL if pool is None:
                raise TargetError(group, f"a {step.kind} step with no pool writes")
            case StepKind.SET_POOL:
                done.append(pool.configure(step))
            case StepKind.TO_POOL | StepKind.FROM_POOL:
                if step.kind is StepKind.TO_POOL:
                    said, moved, fresh = pool.to_pool(step.was, step.to)
                    pooled, made, running = pooled + moved, made + fresh, running - moved
                else:
                    said, moved = pool.from_pool(step.was, step.to)
                    taken, running = taken + moved, running + moved
                done.append(said)
                later = steps[n + 1 :]
                if running != step.to and not any(s.kind is StepKind.RESIZE for s in later):
                    done.append(resize(running, step.to))
                    running = step.to
    said = pool_summary(standby, observed, running, pooled=pooled, taken=taken, made=made)
    return Applied(tuple(done), said)


def pool_summary(
    standby: Standby | None,
    observed: Observed,
    running: int,
    *,
    pooled: int,
    taken: int,
    made: int = 0,
) -> str:
    """A change through the pool in a user's words: how many VMs it moved, how many it created
    or deleted besides, and what the pool holds after. Empty when nothing moved."""
    if standby is None or not (pooled or taken or made):
        return ""
    kind = "stopped" if standby.stopped else "suspended"
    left = standby.held(observed) + pooled + made - taken
    if taken:
        verb = "started" if standby.stopped else "resumed"
        said = f"{verb} {taken} from the {kind} pool ({left} left)"
        created = running - observed.replicas - taken
        return said + (f", created {created}" if created > 0 else "")
    verb = "stopped" if standby.stopped else "suspended"
    said = f"{verb} {pooled} into the pool"
    if made:
        said += f", {made} new for it in place of VMs still booting"
    said += f" ({left} {kind})"
    deleted = observed.replicas - pooled - running
    return said + (f", deleted {deleted}" if deleted > 0 else "")
