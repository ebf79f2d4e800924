"""Evidence from `autozero run`'s own memory: every group's latest report and engine state, as
its runtime keeps them (`PolicyLife.cells`), and the decisions it printed lately.

Nothing is lost here as it is in a status: the rules' recommendations and the failure counts
are known, so the stabilization windows say when they end.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime

from autozero.decisions import decision_json
from autozero.engine.decision import Action, Decision
from autozero.explain.build import explain
from autozero.explain.evidence import (
    Evidence,
    GroupEvidence,
    Recent,
    Recommendations,
    reading_json,
)
from autozero.explain.render import render_text
from autozero.runtime.life import PolicyLife


def _moment(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def recent_of(decision: Decision, *, acted: bool) -> Recent | None:
    """A decision worth listing among the recent ones: one that moved the count (or would)."""
    if decision.action is Action.HOLD:
        return None
    what = decision.action.value if acted else f"Would{decision.action.value}"
    return Recent(
        decision.at.astimezone(UTC),
        what,
        f"{decision.current} -> {decision.target}: {decision.message}",
    )


def evidence_of_life(
    life: PolicyLife, *, now: datetime, recent: Mapping[str, Sequence[Recent]]
) -> Evidence:
    groups = {}
    for name, cell in life.cells.items():
        report, state = cell.report, cell.state
        decision = report.decision if report is not None else None
        error = report.error if report is not None else None
        seen = report.observed if report is not None else None
        groups[name] = GroupEvidence(
            name=name,
            decision=decision_json(decision) if decision is not None else None,
            error=None if error is None or not error.failure else str(error),
            idle_since=_moment(state.idle_since),
            last_scale=_moment(state.last_scale_at),
            scale_events=state.scale_events,
            recommendations=Recommendations(state.highs, state.lows),
            failures=dict(state.failures),
            recent=tuple(recent.get(name, ())),
            applied=report is not None and report.acted and error is None,
            pool=None if seen is None else {"suspended": seen.suspended, "stopped": seen.stopped},
            finishing=state.finishing,
        )
    return Evidence(
        namespace=life.policy.namespace,
        name=life.policy.name,
        now=now,
        origin="run",
        policy=life.policy,
        groups=groups,
        readings={m: reading_json(r) for m, r in life.readings.items()},
    )


def explanation_lines(
    lives: Iterable[PolicyLife],
    *,
    now: datetime,
    recent: Mapping[str, Sequence[Recent]],
    output: str,
) -> str:
    """What `autozero run` prints on SIGUSR1: the explanation of every policy it serves, as text
    or (with `--output json`) as one JSON line per policy, `{"explanation": ...}`."""
    parts = []
    for life in lives:
        explanation = explain(evidence_of_life(life, now=now, recent=recent))
        if output == "json":
            parts.append(json.dumps({"explanation": explanation}) + "\n")
        else:
            parts.append(render_text(explanation))
    return "".join(parts)
