"""A decision as JSON: the one shape `simulate --output jsonl`, `autozero run --output json` and
the policy's `status.groups[].lastDecision` all use, so a tool that reads one reads them all."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from autozero.engine.decision import Decision


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
        "rules": [
            {
                "rule": v.index,
                "metric": v.metric,
                "direction": v.direction.value,
                "operator": v.operator.value,
                "observed": finite(v.observed),
                "threshold": finite(v.threshold),
                "status": v.status.value,
                "fired": v.fired,
            }
            for v in decision.rules
        ],
        "nextEvaluation": None if deadline is None else timestamp(deadline),
    }
