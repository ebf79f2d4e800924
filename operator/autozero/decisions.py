"""A decision as JSON: the one shape `simulate --output jsonl`, `autozero run --output json` and
the policy's `status.groups[].lastDecision` all use, so a tool that reads one reads them all."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from autozero.engine.decision import Decision, RuleVerdict


def finite(value: float | None) -> float | None:
    """JSON has no NaN or Infinity (`json.dumps` would write them bare): such a value is null."""
    return value if value is None or math.isfinite(value) else None


def timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with a Z, to the second as Kubernetes writes times."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def decision_json(decision: Decision) -> dict[str, object]:
    deadline = getattr(decision, "deadline", None)
    return {
        "time": timestamp(decision.at),
        "group": decision.group,
        "profile": decision.profile,
        "action": decision.action.value,
        "replicas": {"before": decision.current, "after": decision.target},
        "reason": decision.reason.value,
        "message": decision.message,
        "pending": finite(decision.pending),
        "inFlight": finite(decision.in_flight),
        "failing": list(decision.failing),
        "recommended": decision.recommended,
        "rules": [rule_json(v) for v in decision.rules],
        "nextEvaluation": None if deadline is None else timestamp(deadline),
    }


def rule_json(verdict: RuleVerdict) -> dict[str, object]:
    """One rule's verdict: a threshold rule's direction, operator and threshold, or a target
    rule's target (`{"averageValue": 50, "tolerance": 0.1}`) and the count it wants."""
    out: dict[str, object] = {"rule": verdict.index, "metric": verdict.metric}
    if verdict.target is not None:
        out["target"] = {
            verdict.target.kind.value: finite(verdict.target.value),
            "tolerance": verdict.target.tolerance,
        }
        out["wants"] = verdict.proposed
    else:
        out["direction"] = verdict.direction.value if verdict.direction else None
        out["operator"] = verdict.operator.value if verdict.operator else None
        out["threshold"] = finite(verdict.threshold)
    out.update(
        {
            "observed": finite(verdict.observed),
            "status": verdict.status.value,
            "fired": verdict.fired,
        }
    )
    return out
