"""Activation: when a group wakes from zero and when it may go back to zero.

A group wakes as soon as its activation metric shows pending work, and goes to zero only when
nothing has been pending AND nothing in flight, continuously, for `idle_for`. Any failed read of
any of the group's sources breaks that continuity: not knowing is not idle.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from autozero.engine.readings import Failure, Observation, Reading
from autozero.engine.spec import Activation


@dataclass(frozen=True, slots=True)
class Activity:
    pending: float | None  # None: unknown (no activation metric, or its read failed)
    in_flight: float | None
    failed: Failure | None  # the activation metric's failure, if any

    @property
    def work_pending(self) -> bool:
        return self.pending is not None and self.pending > 0


def read_activity(
    activation: Activation | None, observations: Mapping[str, Observation]
) -> Activity:
    if activation is None:
        return Activity(None, None, None)
    seen = observations.get(activation.metric)
    if isinstance(seen, Reading):
        return Activity(seen.pending_or_value, seen.in_flight, None)
    failure = seen if isinstance(seen, Failure) else Failure("no reading", kind="Missing")
    return Activity(None, None, failure)


def next_idle_since(
    activity: Activity, *, any_source_failing: bool, previous: float | None, now: float
) -> float | None:
    """When the current idle stretch began, or None if the group is not idle now."""
    if any_source_failing or activity.pending is None:
        return None
    if activity.pending > 0 or (activity.in_flight or 0) > 0:
        return None
    return previous if previous is not None else now


def describe_activity(metric: str, activity: Activity) -> str:
    if activity.failed is not None:
        return f"{metric} unreadable ({activity.failed.message})"
    in_flight = "unknown" if activity.in_flight is None else f"{activity.in_flight:g}"
    return f"{metric} pending={activity.pending:g}, in-flight={in_flight}"
