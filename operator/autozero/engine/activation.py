"""Activation: when a group wakes from zero and when it may go back to zero.

A group wakes as soon as its activation metric shows pending work above the activation
`threshold` (0 by default: any pending work), and goes to zero only when pending has stayed at or
below it AND nothing was in flight, continuously, for `idle_for` (KEDA's activationValue). Any
failed read of any of the group's sources breaks that continuity: not knowing is not idle.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from autozero.engine.readings import Failure, Observation, Reading
from autozero.engine.spec import Activation


@dataclass(frozen=True, slots=True)
class Activity:
    pending: float | None  # None: unknown (no activation metric, or its read failed)
    in_flight: float | None
    failed: Failure | None  # the activation metric's failure, if any
    threshold: float = 0.0  # pending above this is work that wakes the group

    @property
    def work_pending(self) -> bool:
        return self.pending is not None and self.pending > self.threshold


def read_activity(
    activation: Activation | None, observations: Mapping[str, Observation]
) -> Activity:
    if activation is None:
        return Activity(None, None, None)
    seen = observations.get(activation.metric)
    if isinstance(seen, Reading):
        return Activity(seen.pending_or_value, seen.in_flight, None, activation.threshold)
    failure = seen if isinstance(seen, Failure) else Failure("no reading", kind="Missing")
    return Activity(None, None, failure, activation.threshold)


def next_idle_since(
    activity: Activity, *, any_source_failing: bool, previous: float | None, now: float
) -> float | None:
    """When the current idle stretch began, or None if the group is not idle now."""
    if any_source_failing or activity.pending is None:
        return None
    if activity.work_pending or (activity.in_flight or 0) > 0:
        return None
    return previous if previous is not None else now


def why_not_idle(
    activation: Activation | None,
    metrics: Collection[str],
    observations: Mapping[str, Observation],
) -> str | None:
    """Why a group is not idle on these reads (one of its metrics unreadable, work pending or
    in flight), or None when it is. Asked again, on fresh reads, before a sleep's last step
    when earlier steps (an autoscaler deleted) took time: work may have come meanwhile."""
    for metric in sorted(metrics):
        seen = observations.get(metric)
        if isinstance(seen, Failure):
            return f"{metric} unreadable ({seen.message})"
    if activation is None:
        return None
    activity = read_activity(activation, observations)
    if activity.failed is not None:
        return describe_activity(activation, activity)
    if activity.work_pending or (activity.in_flight or 0) > 0:
        return "work came: " + describe_activity(activation, activity)
    return None


def _threshold(activation: Activation) -> str:
    return f" (activation threshold {activation.threshold:g})" if activation.threshold else ""


def describe_activity(activation: Activation, activity: Activity) -> str:
    """The activation metric's reading in a few words, with its threshold when it has one."""
    metric = activation.metric
    if activity.failed is not None:
        return f"{metric} unreadable ({activity.failed.message})"
    in_flight = "unknown" if activity.in_flight is None else f"{activity.in_flight:g}"
    return f"{metric} pending={activity.pending:g}, in-flight={in_flight}{_threshold(activation)}"


def pending_note(activation: Activation, activity: Activity) -> str:
    """Why an awake group is not idle, in the metric's own unit: "backlog: 20 jobs pending",
    "cpu is 0.2, above its activation threshold 0.05"; never "jobs" for what is not."""
    metric, unit = activation.metric, activation.unit
    if (activity.in_flight or 0) > 0:
        return f"{metric}: {activity.in_flight:g} {unit or 'units'} in flight"
    pending = activity.pending or 0.0
    if unit:
        return f"{metric}: {pending:g} {unit} pending{_threshold(activation)}"
    return f"{metric} is {pending:g}, above its activation threshold {activation.threshold:g}"
