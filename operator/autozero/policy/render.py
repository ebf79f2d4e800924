"""Policy -> manifest: the inverse of parse, so a model can be written back as YAML.

Used to check that parse and the schema agree on every generated policy (parse(render(p)) == p)
and by the demo to write the policy it runs.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from autozero.engine.durations import format_duration
from autozero.engine.spec import Capacity, Profile, Rule, ScalingRules, TargetRule
from autozero.policy.model import API_GROUP, API_VERSION, DAYS, KIND, GroupPolicy, Policy
from autozero.targets.registry import handoff_of, kind_of


def _d(value: timedelta) -> str:
    return format_duration(value)


def _capacity(capacity: Capacity) -> dict[str, int]:
    return {"minimum": capacity.minimum, "maximum": capacity.maximum, "default": capacity.default}


def _rule(rule: Rule | TargetRule) -> dict[str, Any]:
    aggregation = {
        "metric": rule.metric,
        "timeGrain": _d(rule.time_grain),
        "statistic": rule.statistic.value,
        "timeWindow": _d(rule.time_window),
        "timeAggregation": rule.time_aggregation.value,
    }
    if isinstance(rule, TargetRule):
        target = rule.target
        return {
            **aggregation,
            "target": {target.kind.value: target.value, "tolerance": target.tolerance},
        }
    action = rule.action
    return {
        **aggregation,
        "operator": rule.operator.value,
        "threshold": rule.threshold,
        "perInstance": rule.per_instance,
        "action": {
            "direction": action.direction.value,
            "type": action.type.value,
            "value": int(action.value),
            "cooldown": _d(action.cooldown),
        },
    }


def _scaling_rules(rules: ScalingRules) -> dict[str, Any]:
    out: dict[str, Any] = {
        "stabilizationWindow": _d(rules.stabilization_window),
        "selectPolicy": rules.select_policy.value,
    }
    if rules.policies:
        out["policies"] = [
            {"type": p.type.value, "value": p.value, "period": _d(p.period)} for p in rules.policies
        ]
    return out


def _profile(profile: Profile) -> dict[str, Any]:
    out: dict[str, Any] = {"name": profile.name}
    if profile.recurrence is not None:
        recurrence = profile.recurrence
        out["recurrence"] = {
            "timeZone": recurrence.time_zone,
            "days": [DAYS[d] for d in sorted(recurrence.days)],
            "hours": list(recurrence.hours),
            "minutes": list(recurrence.minutes),
        }
        if recurrence.duration is not None:
            out["recurrence"]["duration"] = _d(recurrence.duration)
    if profile.fixed_date is not None:
        out["fixedDate"] = {
            "start": profile.fixed_date.start.isoformat(),
            "end": profile.fixed_date.end.isoformat(),
        }
    if profile.capacity is not None:
        out["capacity"] = _capacity(profile.capacity)
    if profile.rules:
        out["rules"] = [_rule(r) for r in profile.rules]
    return out


def _group(group: GroupPolicy) -> dict[str, Any]:
    spec = group.engine
    kind = kind_of(group.target)
    out: dict[str, Any] = {
        "name": group.name,
        "target": {kind.key: kind.render(group.target)},
        "capacity": _capacity(spec.capacity),
    }
    if spec.activation is not None:
        out["activation"] = {
            "metric": spec.activation.metric,
            "idleFor": _d(spec.activation.idle_for),
            "threshold": spec.activation.threshold,
        }
    if group.handoff is not None:
        handoff = handoff_of(group.target)
        out["handoff"] = {handoff.key: handoff.render(group.handoff)}
    behavior = {
        key: _scaling_rules(rules)
        for key, rules in (
            ("scaleUp", spec.behavior.scale_up),
            ("scaleDown", spec.behavior.scale_down),
        )
        if rules is not None
    }
    if behavior:
        out["behavior"] = behavior
    if spec.profiles:
        out["profiles"] = [_profile(p) for p in spec.profiles]
    fallback: dict[str, Any] = {"failureThreshold": spec.failure.threshold}
    if spec.failure.fallback_replicas is not None:
        fallback["replicas"] = spec.failure.fallback_replicas
    out["fallback"] = fallback
    out["skip"] = group.skip
    return out


def render_policy(policy: Policy) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": policy.name, "namespace": policy.namespace}
    if policy.annotations:
        metadata["annotations"] = dict(policy.annotations)
    return {
        "apiVersion": f"{API_GROUP}/{API_VERSION}",
        "kind": KIND,
        "metadata": metadata,
        "spec": {
            "pollingInterval": _d(policy.polling_interval),
            "paused": policy.paused,
            "dryRun": policy.dry_run,
            **({"serviceAccountName": policy.service_account} if policy.service_account else {}),
            "metrics": [{"name": m.name, m.source: dict(m.settings)} for m in policy.metrics],
            "groups": [_group(g) for g in policy.groups],
        },
    }
