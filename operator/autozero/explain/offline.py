"""Evidence from a simulation: replay a trace through the policy (as `autozero simulate` does,
step by step, the group following each decision) up to an instant, and keep what the engine
knew then.

It reuses the simulator's own step so the state explained is exactly the one `simulate` reaches.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta

from autozero.decisions import decision_json
from autozero.engine.decision import Decision
from autozero.engine.durations import format_duration
from autozero.explain.evidence import Evidence, GroupEvidence, Recent, Recommendations
from autozero.explain.evidence import reading_json as _reading
from autozero.explain.running import recent_of
from autozero.policy.model import Policy
from autozero.simulator import (
    MAX_EVALUATIONS,
    GroupSummary,
    SimulateError,
    Trace,
    _handoff,
    _Simulated,
    _step,
)


def _moment(seconds: float | None, like: datetime) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, like.tzinfo)


def evidence_at(
    policy: Policy,
    trace: Trace,
    at: datetime,
    *,
    groups: tuple[str, ...] = (),
    initial_replicas: int = 0,
    step: timedelta | None = None,
    limit: int = 5,
) -> Evidence:
    """What the engine knew of each group at `at`, replaying `trace` from its start."""
    if at < trace.start:
        raise SimulateError(f"--at {at.isoformat()} is before the trace starts ({trace.start})")
    chosen = (
        [policy.group(g) for g in groups] if groups else [g for g in policy.groups if not g.skip]
    )
    every = step if step is not None else policy.polling_interval
    if every <= timedelta(0):
        raise SimulateError(f"the step {format_duration(every)} must be positive")
    until = min(at, trace.end)
    if (int((until - trace.start) / every) + 1) * len(chosen) > MAX_EVALUATIONS:
        raise SimulateError("too many evaluations up to --at: pass a larger --step")
    simulated = [_Simulated(g, initial_replicas) for g in chosen]
    for group in simulated:
        _handoff(group, trace, GroupSummary(group.policy.name))
    last: dict[str, Decision] = {}
    recent: dict[str, deque[Recent]] = {g.name: deque(maxlen=limit or None) for g in chosen}
    now = trace.start
    while now <= until:
        for group in simulated:
            decision = _step(group, trace, now, every, GroupSummary(group.policy.name))
            last[group.policy.name] = decision
            moved = recent_of(decision, acted=True)
            if moved is not None and limit:
                recent[group.policy.name].append(moved)
        now += every
    evidence = {}
    for group in simulated:
        name, state = group.policy.name, group.state
        found = last.get(name)
        evidence[name] = GroupEvidence(
            name=name,
            decision=decision_json(found) if found is not None else None,
            idle_since=_moment(state.idle_since, at),
            last_scale=_moment(state.last_scale_at, at),
            scale_events=state.scale_events,
            recommendations=Recommendations(state.highs, state.lows),
            failures=dict(state.failures),
            recent=tuple(recent[name]),
        )
    seen_at = now - every
    metrics = sorted({m for g in chosen for m in g.engine.metrics})
    return Evidence(
        namespace=policy.namespace,
        name=policy.name,
        now=at,
        origin="simulation",
        policy=policy,
        groups=evidence,
        readings={m: _reading(trace.observe(m, seen_at)) for m in metrics},
    )
