"""A ScalingPolicy's status, built from a cycle's report: what autozero saw, decided and did.

Pure: the report and the previous status in, the new status out. The durable part of the engine
state (idle-since, last scale time, recent scale events) lives here too, so a restarted operator
resumes from it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from autozero.decisions import decision_json
from autozero.engine.decision import Action
from autozero.engine.readings import Failure, Reading
from autozero.engine.state import GroupState
from autozero.runtime.report import CycleReport, GroupReport


def iso(moment: datetime | float | None) -> str | None:
    if moment is None:
        return None
    if isinstance(moment, float | int):
        moment = datetime.fromtimestamp(moment, tz=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def condition(
    kind: str,
    ok: bool,
    reason: str,
    message: str,
    now: datetime,
    previous: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """A metav1.Condition; lastTransitionTime moves only when the status flips."""
    status = "True" if ok else "False"
    before = next((c for c in previous if c.get("type") == kind), None)
    since = before["lastTransitionTime"] if before and before.get("status") == status else iso(now)
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message[:1024],
        "lastTransitionTime": since,
    }


def _group(
    report: GroupReport, state: GroupState | None, previous: Mapping[str, Any]
) -> dict[str, Any]:
    out: dict[str, Any] = {"name": report.group}
    if report.error is not None:  # a sleep withdrawn is a note, not an error
        out["error" if report.error.failure else "note"] = str(report.error)
    if state is not None and state.finishing is not None:
        # Also written before a scale-out's first write (`Shell.begin`): a restart finishes it.
        out["finishing"] = state.finishing
    decision = report.decision
    if decision is None:
        return out | {k: previous[k] for k in ("replicas", "lastScale") if k in previous}
    out["replicas"] = {"current": decision.current, "desired": decision.target}
    seen = report.observed
    if seen is not None and (seen.suspended or seen.stopped):
        # The standby pool beside the running count (GCE suspended or stopped VMs).
        out["replicas"] |= {"suspended": seen.suspended, "stopped": seen.stopped}
    out["activeProfile"] = decision.profile
    out["idleSince"] = iso(state.idle_since) if state else None
    out["lastDecision"] = decision_json(decision)
    if state is not None and state.scale_events:
        # Durable: a restarted operator must not forget a rate policy's recent changes.
        out["scaleEvents"] = [
            {"time": _precise(at), "change": change} for at, change in state.scale_events
        ]
    if state is not None and (state.highs or state.lows):
        # For `autozero explain`: which recommendation holds a stabilization window, and until
        # when. Not restored on a restart (`restore_states` says why that is safe).
        out["recommendations"] = {
            side: [{"time": _precise(at), "replicas": count} for at, count in queue]
            for side, queue in (("highs", state.highs), ("lows", state.lows))
        }
    if decision.action is not Action.HOLD and report.acted and report.error is None:
        out["lastScale"] = {
            "time": iso(decision.at),
            "from": decision.current,
            "to": decision.target,
            "reason": decision.message,
        }
    elif "lastScale" in previous:
        out["lastScale"] = previous["lastScale"]
    return out


def _precise(moment: float) -> str:
    return datetime.fromtimestamp(moment, tz=UTC).isoformat().replace("+00:00", "Z")


def _parse(moment: str) -> float:
    return datetime.fromisoformat(moment.replace("Z", "+00:00")).timestamp()


def begun_status(previous: Mapping[str, Any], states: Mapping[str, GroupState]) -> dict[str, Any]:
    """The last status with each group's `finishing` set from `states`: written before a
    scale-out of several writes starts, so a crash between them does not lose its count."""
    status = dict(previous)
    groups = [dict(g) for g in previous.get("groups") or []]
    named = {g.get("name"): g for g in groups}
    for name, state in states.items():
        group = named.get(name)
        if group is None:
            if state.finishing is None:
                continue
            group = {"name": name}
            groups.append(group)
        if state.finishing is None:
            group.pop("finishing", None)
        else:
            group["finishing"] = state.finishing
    status["groups"] = groups
    return status


def build_status(
    report: CycleReport,
    states: Mapping[str, GroupState],
    *,
    generation: int | None,
    paused: bool,
    previous: Mapping[str, Any],
) -> dict[str, Any]:
    now = report.at
    before_groups = {g.get("name"): g for g in previous.get("groups") or []}
    groups = [_group(g, states.get(g.group), before_groups.get(g.group, {})) for g in report.groups]
    failing = sorted(m for m, r in report.readings.items() if isinstance(r, Failure))
    target_errors = [g for g in report.groups if g.error is not None and g.error.failure]
    awake = sum(1 for g in report.groups if g.decision and g.decision.target > 0)
    conditions = previous.get("conditions") or []
    moves = [
        g.decision for g in report.groups if g.decision and g.decision.action is not Action.HOLD
    ]
    last = moves[-1] if moves else None
    summary_last = (
        f"{last.action.value} {last.group} {last.current}->{last.target}"
        if last
        else (previous.get("summary") or {}).get("lastDecision", "-")
    )
    problems = [f"{m}: {report.readings[m].message}" for m in failing]  # type: ignore[union-attr]
    problems += [str(g.error) for g in target_errors]
    problems += list(report.problems)  # watches refused: observed with GETs, still served
    return {
        "observedGeneration": generation,
        "conditions": [
            condition(
                "Ready",
                not target_errors,
                "TargetError" if target_errors else "Evaluated",
                "; ".join(str(g.error) for g in target_errors)
                or f"evaluated {len(report.groups)} groups",
                now,
                conditions,
            ),
            condition(
                "Active",
                awake > 0,
                "Awake" if awake else "Asleep",
                f"{awake} of {len(report.groups)} groups awake",
                now,
                conditions,
            ),
            condition(
                "Degraded",
                bool(problems),
                "SourceFailed"
                if failing
                else "TargetError"
                if target_errors
                else "WatchRefused"
                if report.problems
                else "Healthy",
                "; ".join(problems) or "every source and target answered",
                now,
                conditions,
            ),
            condition(
                "Paused",
                paused,
                "Paused" if paused else "Acting",
                "decisions are reported, not applied" if paused else "decisions applied",
                now,
                conditions,
            ),
        ],
        "groups": groups,
        "metrics": {
            name: (
                {"value": r.value, "pending": r.pending, "inFlight": r.in_flight, "at": iso(now)}
                if isinstance(r, Reading)
                else {"error": r.message, "kind": r.kind, "at": iso(now)}
            )
            for name, r in sorted(report.readings.items())
        },
        "summary": {"groups": len(report.groups), "awake": awake, "lastDecision": summary_last},
    }


def invalid_status(
    errors: Sequence[str],
    *,
    generation: int | None,
    now: datetime,
    previous: Mapping[str, Any],
    reason: str,
) -> dict[str, Any]:
    """A policy autozero cannot use: Ready=False with the errors, nothing else touched."""
    conditions = previous.get("conditions") or []
    return {
        "observedGeneration": generation,
        "conditions": [condition("Ready", False, reason, "; ".join(errors), now, conditions)],
        "summary": {"groups": 0, "awake": 0, "lastDecision": reason},
    }


def restore_states(status: Mapping[str, Any]) -> dict[str, GroupState]:
    """Engine state a restarted operator resumes from: idle-since, the last scale's time, the
    recent scale events the rate policies count and a scale-out left half done (`finishing`).
    The sample windows and the rules' recent recommendations start empty: until the windows
    refill, the rules recommend the current count, so a restart can delay a scale, never
    hasten one (`autozero.engine.state`)."""
    states: dict[str, GroupState] = {}
    for group in status.get("groups") or []:
        idle = group.get("idleSince")
        scaled = (group.get("lastScale") or {}).get("time")
        events = tuple(
            (_parse(event["time"]), int(event["change"]))
            for event in group.get("scaleEvents") or ()
        )
        finishing = group.get("finishing")
        states[str(group.get("name"))] = GroupState(
            idle_since=_parse(idle) if idle else None,
            last_scale_at=_parse(scaled) if scaled else None,
            scale_events=events,
            finishing=None if finishing is None else int(finishing),
        )
    return states
