"""From `Evidence` to an explanation: the policy's notes, and per group its headline and its
sections (`autozero.explain.sections`), or one line saying why it cannot be explained.

Pure: the evidence (with its `now`) in, a JSON-ready dict out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from autozero.engine.schedule import active_profile
from autozero.explain.evidence import Evidence
from autozero.explain.sections import (
    MEANINGS,
    GroupView,
    activation,
    cooldowns,
    handoff,
    next_evaluation,
    profile,
    rate_limits,
    replicas,
    rules,
    sources,
    stabilization,
    standby,
    summary,
    z,
)


def explain(evidence: Evidence, groups: Sequence[str] = ()) -> dict[str, Any]:
    """The explanation of a policy's groups (all, or those named)."""
    policy = evidence.policy
    names = list(groups) or (
        [g.name for g in policy.groups] if policy is not None else list(evidence.groups)
    )
    blocked = _blocked(evidence)
    return {
        "policy": f"{evidence.namespace}/{evidence.name}",
        "at": z(evidence.now),
        "from": evidence.origin,
        "paused": bool(policy and policy.paused),
        "dryRun": bool(policy and policy.dry_run),
        "conditions": [
            {k: c.get(k) for k in ("type", "status", "reason", "message")}
            for c in evidence.conditions
        ],
        "notes": _policy_notes(evidence, blocked),
        "groups": [_explain_group(evidence, name, blocked) for name in names],
        "events": [e.to_json() for e in evidence.events],
    }


def _condition(evidence: Evidence, kind: str) -> Mapping[str, Any] | None:
    return next((c for c in evidence.conditions if c.get("type") == kind), None)


def _blocked(evidence: Evidence) -> str | None:
    """Why no group of the policy is served at all (refused, invalid), from Ready."""
    ready = _condition(evidence, "Ready")
    if ready is None or ready.get("status") != "False" or ready.get("reason") == "TargetError":
        return None
    return f"{ready.get('reason')}: {ready.get('message')}"


def _policy_notes(evidence: Evidence, blocked: str | None) -> list[str]:
    notes: list[str] = []
    policy = evidence.policy
    if blocked is not None:
        notes.append(f"the policy is not served: {blocked}")
    if policy is not None and policy.paused:
        notes.append(
            "paused (annotation autozero.dev/paused): decisions are made and reported, not applied"
        )
    if policy is not None and policy.dry_run:
        notes.append("dry run (spec.dryRun): decisions are made and reported, not applied")
    degraded = _condition(evidence, "Degraded")
    if degraded is not None and degraded.get("status") == "True":
        notes.append(f"Degraded ({degraded.get('reason')}): {degraded.get('message')}")
    crd = _condition(evidence, "CRDCurrent")
    if crd is not None and crd.get("status") == "False":
        notes.append(f"the served CRD is outdated: {crd.get('message')}")
    if evidence.origin == "status" and not evidence.conditions and blocked is None:
        notes.append(
            "no status yet: the operator has not served this policy (is it running, and does "
            "it watch this namespace?)"
        )
    notes.extend(evidence.problems)
    return notes


def _one_line(name: str, state: str, summary: str) -> dict[str, Any]:
    return {"group": name, "state": state, "summary": summary, "lines": []}


def _explain_group(evidence: Evidence, name: str, blocked: str | None) -> dict[str, Any]:
    policy = evidence.policy
    seen = evidence.groups.get(name)
    if policy is None:
        why = blocked or "the policy cannot be parsed"
        return _one_line(name, "unknown", f"cannot be explained: {why}")
    try:
        group = policy.group(name)
    except KeyError:
        known = ", ".join(g.name for g in policy.groups)
        return _one_line(name, "unknown", f"the policy has no group {name!r} (it has {known})")
    if group.skip:
        return _one_line(name, "skipped", "skip: true: autozero never reads nor scales it")
    if blocked is not None:
        return _one_line(name, "unserved", f"not decided: the policy is not served ({blocked})")
    if seen is None or seen.decision is None:
        if seen is not None and seen.error:
            return _one_line(name, "error", f"cannot be decided: {seen.error}")
        return _one_line(name, "undecided", "not decided yet: no decision has been recorded for it")
    decision = seen.decision
    counts = decision.get("replicas") or {}
    count = int(counts.get("after" if seen.applied else "before") or 0)
    spec = group.engine
    active = active_profile(spec, evidence.now)
    g = GroupView(
        seen,
        group,
        spec,
        decision,
        evidence.now,
        active,
        spec.capacity_of(active.profile),
        count,
        evidence.readings,
    )
    sections: list[tuple[str, str]] = []
    out: dict[str, Any] = {"group": name}
    out["state"] = "error" if seen.error else ("asleep" if count == 0 else "awake")
    out["summary"] = summary(g, out["state"])
    out["decision"] = dict(decision)
    out["reason"] = {"code": decision.get("reason"), "meaning": MEANINGS.get(decision["reason"])}
    for key, section in (
        ("profile", profile(g)),
        ("replicas", replicas(g)),
        ("activation", activation(g)),
        ("rules", rules(g)),
        ("cooldowns", cooldowns(g)),
        ("stabilization", stabilization(g)),
        ("rateLimits", rate_limits(g)),
        ("sources", sources(g)),
        ("handoff", handoff(g)),
        ("standby", standby(g)),
        ("next", next_evaluation(g)),
    ):
        out[key] = section
        items = section if isinstance(section, list) else [section]
        sections.extend((key, item["sentence"]) for item in items if item and "sentence" in item)
    out["recent"] = [r.to_json() for r in seen.recent]
    out["lines"] = [{"topic": k, "text": t} for k, t in sections]
    return out


def unexplained(namespace: str, name: str, now: datetime, why: str) -> dict[str, Any]:
    """A policy that cannot be explained at all (not found, access refused): one line."""
    return {
        "policy": f"{namespace}/{name}",
        "at": z(now),
        "from": None,
        "error": why,
        "groups": [],
    }
