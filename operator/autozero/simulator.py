"""`autozero simulate`: replay a metric trace through the engine, the group following each decision.

The trace is a CSV of `time,metric,value[,instance][,in_flight]`. Between rows a metric keeps its
last value (sample and hold), as a real source would keep answering with the current depth.

While a group is handed off, the native autoscaler owns its count: with the signal it scales on
in the trace (`<group>.cpu` for a GCE autoscaler; one per HPA metric), the simulation follows a
model of it (`autozero.handoff_model`), so replica-hours and the peak include those periods;
without, the group holds its wake count and the summary says the handoff was not modelled.
"""

from __future__ import annotations

import csv
import io
import math
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from autozero.engine.decide import decide
from autozero.engine.decision import Action, Decision, Reason
from autozero.engine.durations import format_duration
from autozero.engine.readings import Failure, Observation, Reading
from autozero.engine.state import GroupState
from autozero.handoff_model import NativeModel, Unmodelled, native_model
from autozero.policy.model import GroupPolicy, Policy
from autozero.sources.registry import SOURCES

#: Bounds the memory and time of one simulation (a month at a 1s step is ~2.6 million).
MAX_EVALUATIONS = 2_000_000


class SimulateError(ValueError):
    """The simulation cannot run as asked (a zero step, far too many steps); says what to do."""


class TraceError(ValueError):
    """A trace row that cannot be used; says which file and line."""

    def __init__(self, source: str, line: int, message: str) -> None:
        self.source, self.line = source, line
        super().__init__(f"{source}:{line}: {message}")


@dataclass(frozen=True, slots=True)
class TraceRow:
    time: datetime
    metric: str
    value: float
    instance: str
    in_flight: float | None


class Trace:
    """Rows per metric, grouped by time, so `observe` finds the last poll at or before `at`."""

    def __init__(self, rows: Sequence[TraceRow]) -> None:
        if not rows:
            raise ValueError("the trace has no rows")
        self.start = min(r.time for r in rows)
        self.end = max(r.time for r in rows)
        grouped: dict[str, dict[datetime, list[TraceRow]]] = {}
        for row in sorted(rows, key=lambda r: r.time):
            grouped.setdefault(row.metric, {}).setdefault(row.time, []).append(row)
        self._times = {m: sorted(by_time) for m, by_time in grouped.items()}
        self._rows = grouped

    @property
    def metrics(self) -> set[str]:
        return set(self._rows)

    def observe(self, metric: str, at: datetime) -> Observation:
        times = self._times.get(metric, [])
        index = bisect_right(times, at) - 1
        if index < 0:
            return Failure("no data in the trace yet", kind="NoData")
        rows = self._rows[metric][times[index]]
        in_flight = [r.in_flight for r in rows if r.in_flight is not None]
        instanced = {r.instance: r.value for r in rows if r.instance}
        value = sum(r.value for r in rows) / len(rows) if instanced else rows[-1].value
        return Reading(
            value=value,
            pending=None if instanced else value,
            in_flight=sum(in_flight) if in_flight else None,
            per_instance=instanced or None,
        )

    def series(self, metric: str) -> list[tuple[datetime, Reading]]:
        """The metric over time as `observe` sees it (instances averaged), for plots."""
        out: list[tuple[datetime, Reading]] = []
        for moment in self._times.get(metric, []):
            reading = self.observe(metric, moment)
            if isinstance(reading, Reading):
                out.append((moment, reading))
        return out

    def first_positive(
        self, metric: str, after: datetime | None, upto: datetime
    ) -> datetime | None:
        """The first row time in (after, upto] with a value above zero."""
        for moment in self._times.get(metric, []):
            in_range = (after is None or moment > after) and moment <= upto
            if in_range and any(r.value > 0 for r in self._rows[metric][moment]):
                return moment
        return None


def read_trace(
    text: str,
    source: str,
    known_metrics: set[str],
    counts: set[str] | None = None,
    signals: set[str] | None = None,
) -> Trace:
    """The rows of a CSV trace; TraceError names the line of the first bad one. Metrics are the
    policy's (`known_metrics`) or `signals` of a native autoscaler. Values must be finite, and not
    negative for `counts` (queue lengths) nor for in_flight."""
    reader = csv.DictReader(io.StringIO(text))
    try:
        header = reader.fieldnames or []
        missing = [c for c in ("time", "metric", "value") if c not in header]
        if missing:
            raise TraceError(
                source, 1, f"the header must name time,metric,value; missing {missing}"
            )
        extra = [c for c in header if c not in ("time", "metric", "value", "instance", "in_flight")]
        if extra:
            raise TraceError(source, 1, f"unknown columns {extra} (optional: instance, in_flight)")
        counted = counts or set()
        known = (known_metrics, signals or set())
        rows = [_row(row, source, reader.line_num, known, counted) for row in reader]
    except csv.Error as exc:  # a NUL byte, an unterminated quote, a huge field
        raise TraceError(source, reader.line_num or 1, f"not a CSV file: {exc}") from None
    if not rows:
        raise TraceError(source, 2, "the trace has no rows")
    return Trace(rows)


def _row(
    row: dict[str, str],
    source: str,
    line: int,
    known: tuple[set[str], set[str]],
    counts: set[str],
) -> TraceRow:
    try:
        moment = datetime.fromisoformat(row["time"])
    except (TypeError, ValueError):
        raise TraceError(source, line, f"time {row['time']!r} is not RFC 3339") from None
    if moment.tzinfo is None:
        raise TraceError(source, line, f"time {row['time']!r} needs an offset (Z or +01:00)")
    moment = moment.astimezone(UTC)  # the simulation's clock, and every time it prints, in UTC
    metric = row["metric"] or ""
    declared, signals = known
    if metric not in declared and metric not in signals:
        names = ", ".join(sorted(declared)) or "none"
        also = f"; handoff signals: {', '.join(sorted(signals))}" if signals else ""
        raise TraceError(
            source, line, f"unknown metric {metric!r} (the policy declares {names}{also})"
        )
    try:
        value = float(row["value"])
        in_flight = float(row["in_flight"]) if row.get("in_flight") else None
    except (TypeError, ValueError):
        raise TraceError(source, line, "value and in_flight must be numbers") from None
    if not math.isfinite(value) or (in_flight is not None and not math.isfinite(in_flight)):
        raise TraceError(source, line, "value and in_flight must be finite numbers (no nan, inf)")
    if value < 0 and metric in counts:
        raise TraceError(
            source, line, f"value {row['value']} is negative: {metric} is a queue length"
        )
    if in_flight is not None and in_flight < 0:
        raise TraceError(source, line, f"in_flight {row['in_flight']} is negative")
    return TraceRow(moment, metric, value, row.get("instance") or "", in_flight)


def handoff_signals(policy: Policy) -> set[str]:
    """What a trace may carry beside the policy's metrics: the signals its native autoscalers
    scale on while a group is handed off (`<group>.cpu`, ...)."""
    names: set[str] = set()
    for group in policy.groups:
        try:
            model = native_model(group)
        except Unmodelled:
            continue
        if model is not None:
            names.update(model.signals)
    return names


def queue_metrics(policy: Policy) -> set[str]:
    """The policy's metrics that count jobs or messages (never negative); a query's value may
    be anything."""
    return {m.name for m in policy.metrics if SOURCES[m.source].counts_work}


@dataclass
class GroupSummary:
    group: str
    replica_seconds: float = 0.0
    scale_events: int = 0
    actions: Counter[str] = field(default_factory=Counter)
    wake_latencies: list[float] = field(default_factory=list)  # first pending job -> Wake, seconds
    peak_replicas: int = 0
    final_replicas: int = 0
    #: With a handoff: which autoscaler, whether it was modelled, and on what (or why not).
    handoff: dict[str, object] | None = None

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "group": self.group,
            "replicaSeconds": self.replica_seconds,
            "scaleEvents": self.scale_events,
            "actions": dict(self.actions),
            "wakeLatencySeconds": self.wake_latencies,
            "peakReplicas": self.peak_replicas,
            "finalReplicas": self.final_replicas,
        }
        if self.handoff is not None:
            out["handoff"] = self.handoff
        return out

    @property
    def text(self) -> str:
        """The summary line of `--output table`."""
        latencies = ", ".join(f"{s:g}s" for s in self.wake_latencies) or "none"
        line = (
            f"{self.group}: {self.scale_events} scale events, "
            f"{self.replica_seconds / 3600:.2f} replica-hours, peak {self.peak_replicas}, "
            f"final {self.final_replicas}, wake latency {latencies}"
        )
        if self.handoff is not None:
            line += f"; {self.handoff['summary']}"
        return line


@dataclass
class _Simulated:
    policy: GroupPolicy
    replicas: int
    state: GroupState = field(default_factory=GroupState)
    pending_since: datetime | None = None
    last_check: datetime | None = None
    model: NativeModel | None = None  # the native autoscaler, when the trace lets it be modelled


def _handoff(group: _Simulated, trace: Trace, summary: GroupSummary) -> None:
    """Model the group's native autoscaler if the trace carries what it scales on; say so."""
    if group.policy.handoff is None:
        return
    try:
        model = native_model(group.policy)
    except Unmodelled as exc:
        summary.handoff = {"modelled": False, "summary": f"handoff periods not modelled: {exc}"}
        return
    assert model is not None
    missing = [s for s in model.signals if s not in trace.metrics]
    if missing:
        summary.handoff = {
            "autoscaler": model.name,
            "modelled": False,
            "summary": f"handoff periods not modelled (the trace has no {', '.join(missing)} "
            f"rows for the {model.name})",
        }
        return
    group.model = model
    if group.replicas > 0:
        model.start(trace.start.timestamp(), group.replicas)
    summary.handoff = {
        "autoscaler": model.name,
        "modelled": True,
        "summary": f"handoff periods modelled ({model.name} on {', '.join(model.signals)})",
    }


def simulate(
    policy: Policy,
    trace: Trace,
    *,
    groups: Sequence[str] = (),
    initial_replicas: int = 0,
    step: timedelta | None = None,
) -> tuple[Iterator[Decision], dict[str, GroupSummary]]:
    """Decisions, one per group per step, and per-group summaries (filled as the iterator runs)."""
    chosen = (
        [policy.group(g) for g in groups] if groups else [g for g in policy.groups if not g.skip]
    )
    every = step if step is not None else policy.polling_interval
    if every <= timedelta(0):
        raise SimulateError(
            "--step must be positive"
            if step is not None
            else f"spec.pollingInterval is {format_duration(every)}: simulate evaluates every "
            "pollingInterval, so give the policy a positive one or pass --step"
        )
    evaluations = (int((trace.end - trace.start) / every) + 1) * len(chosen)
    if evaluations > MAX_EVALUATIONS:
        groups_text = "1 group" if len(chosen) == 1 else f"{len(chosen)} groups"
        raise SimulateError(
            f"{evaluations:,} evaluations ({groups_text} over "
            f"{format_duration(trace.end - trace.start)}, every {format_duration(every)}) is "
            f"more than {MAX_EVALUATIONS:,}: pass a larger --step or a shorter trace"
        )
    simulated = [_Simulated(g, initial_replicas) for g in chosen]
    summaries = {g.name: GroupSummary(g.name, final_replicas=initial_replicas) for g in chosen}
    for group in simulated:
        _handoff(group, trace, summaries[group.policy.name])

    def run() -> Iterator[Decision]:
        now = trace.start
        while now <= trace.end:
            for group in simulated:
                yield _step(group, trace, now, every, summaries[group.policy.name])
            if trace.end - now < every:  # also before `now + every` passes the year 9999
                break
            now += every

    return run(), summaries


def _step(
    group: _Simulated, trace: Trace, now: datetime, every: timedelta, summary: GroupSummary
) -> Decision:
    spec = group.policy.engine
    observations = {metric: trace.observe(metric, now) for metric in spec.metrics}
    activation = spec.activation
    if activation is not None and group.replicas == 0 and group.pending_since is None:
        group.pending_since = trace.first_positive(activation.metric, group.last_check, now)
    group.last_check = now
    evaluation = decide(spec, group.state, observations, now=now, current=group.replicas)
    decision = evaluation.decision
    group.state = evaluation.state
    native = False
    if group.model is not None and decision.reason is Reason.HANDOFF and group.replicas > 0:
        decision, native = _native(group.model, decision, trace, now), True
    summary.actions[decision.action.value] += 1
    if decision.target != group.replicas:
        summary.scale_events += 1
        if not native:  # the native autoscaler's changes start none of autozero's cooldowns
            group.state = group.state.after_scale(
                at=now, was=group.replicas, now_is=decision.target
            )
        if decision.action is Action.WAKE and group.pending_since is not None:
            summary.wake_latencies.append((now - group.pending_since).total_seconds())
        if decision.target == 0 or decision.action is Action.WAKE:
            group.pending_since = None
        if decision.action is Action.WAKE and group.model is not None:
            group.model.start(now.timestamp(), decision.target)
        group.replicas = decision.target
    summary.replica_seconds += group.replicas * every.total_seconds()
    summary.peak_replicas = max(summary.peak_replicas, group.replicas)
    summary.final_replicas = group.replicas
    return decision


def _native(model: NativeModel, decision: Decision, trace: Trace, now: datetime) -> Decision:
    """The decision once the native autoscaler has had its say (a hold until its signals have
    data)."""
    readings: dict[str, float] = {}
    for signal in model.signals:
        seen = trace.observe(signal, now)
        if not isinstance(seen, Reading):
            return replace(decision, message=f"{model.name}: no {signal} in the trace yet")
        readings[signal] = seen.value
    count, why = model.step(now.timestamp(), decision.current, readings)
    return replace(
        decision,
        target=count,
        action=Action.between(decision.current, count),
        message=f"{model.name}: {why}",
    )
