"""Manifest (a dict, as YAML or the apiserver gives it) -> `Policy`, or `PolicyInvalid` with paths.

First the CRD's own schema and CEL rules (validate.py), exactly as the apiserver applies them;
then what only code can check: IANA time zones, dates, and grains that fit the polling interval.
After the schema, the structure is known good, so building the model reads fields directly.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from autozero.engine.durations import DURATION_PATTERN, format_duration, parse_duration
from autozero.engine.spec import (
    ActionType,
    Activation,
    Behavior,
    Capacity,
    Direction,
    FailurePolicy,
    FixedDate,
    GroupSpec,
    Operator,
    PolicyType,
    Profile,
    RatePolicy,
    Recurrence,
    Rule,
    ScaleAction,
    ScalingRules,
    SelectPolicy,
    Statistic,
    TargetKind,
    TargetRule,
    TimeAggregation,
    TrackingTarget,
)
from autozero.policy.errors import FieldError, PolicyInvalid
from autozero.policy.identity import identity_errors
from autozero.policy.model import DAYS, GroupPolicy, MetricSpec, Policy
from autozero.policy.validate import go_duration_ns, schema_errors
from autozero.sources.registry import SOURCES
from autozero.targets.registry import TARGETS

PAUSED_ANNOTATION = "autozero.dev/paused"


def parse_policy(manifest: Any) -> Policy:
    """Check a ScalingPolicy manifest and build its model; raise PolicyInvalid with every error."""
    if not isinstance(manifest, dict):
        raise PolicyInvalid([FieldError("(root)", "must be a YAML mapping")])
    identity = identity_errors(manifest)
    errors, valid = schema_errors(manifest)
    # A kind or apiVersion that is not a string is said once, by the identity check.
    named = {e.path for e in identity}
    errors = identity + [e for e in errors if e.path not in named]
    if errors:
        raise PolicyInvalid(errors)
    return _Builder(valid).build()


def _sub_millisecond(value: Any, path: str) -> Iterator[str]:
    """Paths of durations above 0 but under 1 ms (`0.0001ms`): the apiserver takes them (Go
    counts nanoseconds), the engine would read them as 0."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _sub_millisecond(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _sub_millisecond(item, f"{path}[{index}]")
    elif isinstance(value, str) and _DURATION.fullmatch(value):
        nanoseconds = go_duration_ns(value)
        if nanoseconds is not None and 0 < nanoseconds < 1_000_000:
            yield path


_DURATION = re.compile(DURATION_PATTERN)


def _duration(text: str) -> timedelta:
    return parse_duration(text)  # the schema's pattern guarantees the syntax


class _Builder:
    """Builds the model from a schema-valid, defaulted manifest; collects semantic errors."""

    def __init__(self, manifest: dict[str, Any]) -> None:
        self.manifest = manifest
        self.errors: list[FieldError] = []

    def error(self, path: str, message: str) -> None:
        self.errors.append(FieldError(path, message))

    def build(self) -> Policy:
        metadata = self.manifest["metadata"]
        spec = self.manifest["spec"]
        for path in _sub_millisecond(spec, "spec"):
            self.error(path, "must be at least 1ms: autozero counts time in milliseconds")
        if self.errors:  # a 0 grain or interval would divide by zero or never pause below
            raise PolicyInvalid(self.errors)
        annotations = {str(k): str(v) for k, v in (metadata.get("annotations") or {}).items()}
        polling = _duration(spec["pollingInterval"])
        metrics = tuple(self._metric(m) for m in spec.get("metrics", []))
        groups = tuple(
            self._group(g, f"spec.groups[{n}]", polling) for n, g in enumerate(spec["groups"])
        )
        if self.errors:
            raise PolicyInvalid(self.errors)
        generation = metadata.get("generation")
        return Policy(
            name=metadata["name"],
            namespace=metadata.get("namespace") or "default",
            polling_interval=polling,
            metrics=metrics,
            groups=groups,
            paused=spec["paused"] or annotations.get(PAUSED_ANNOTATION, "").lower() == "true",
            dry_run=spec["dryRun"],
            generation=generation if isinstance(generation, int) else None,
            annotations=annotations,
            service_account=spec.get("serviceAccountName"),
        )

    @staticmethod
    def _metric(metric: dict[str, Any]) -> MetricSpec:
        source = next(k for k in SOURCES if k in metric)
        return MetricSpec(metric["name"], source, metric[source])

    @staticmethod
    def _target(target: dict[str, Any]) -> Any:
        key = next(k for k in TARGETS if k in target)
        return TARGETS[key].parse(target[key])

    @staticmethod
    def _capacity(capacity: dict[str, Any]) -> Capacity:
        minimum = capacity["minimum"]
        return Capacity(minimum, capacity["maximum"], capacity.get("default", max(1, minimum)))

    @staticmethod
    def _handoff(handoff: dict[str, Any] | None) -> Any:
        """Typed by the kind whose handoff it is (the schema checked it is the target's kind)."""
        if handoff is None:
            return None
        kinds = {k.handoff.key: k.handoff for k in TARGETS.values() if k.handoff is not None}
        key = next(k for k in kinds if k in handoff)
        return kinds[key].parse(handoff[key])

    def _activation(self, activation: dict[str, Any] | None) -> Activation | None:
        if activation is None:
            return None
        metric = activation["metric"]
        source = next(m for m in self.manifest["spec"].get("metrics", []) if m["name"] == metric)
        return Activation(
            metric,
            _duration(activation["idleFor"]),
            float(activation.get("threshold", 0.0)),
            SOURCES[next(k for k in SOURCES if k in source)].unit,
        )

    @staticmethod
    def _scaling_rules(rules: dict[str, Any] | None) -> ScalingRules | None:
        if rules is None:
            return None
        return ScalingRules(
            _duration(rules["stabilizationWindow"]),
            SelectPolicy(rules["selectPolicy"]),
            tuple(
                RatePolicy(PolicyType(p["type"]), p["value"], _duration(p["period"]))
                for p in rules.get("policies", ())
            ),
        )

    def _behavior(self, behavior: dict[str, Any] | None) -> Behavior:
        behavior = behavior or {}
        return Behavior(
            self._scaling_rules(behavior.get("scaleUp")),
            self._scaling_rules(behavior.get("scaleDown")),
        )

    def _group(self, group: dict[str, Any], path: str, polling: timedelta) -> GroupPolicy:
        fallback = group.get("fallback") or {}
        profiles = tuple(
            self._profile(p, f"{path}.profiles[{n}]", polling)
            for n, p in enumerate(group.get("profiles", []))
        )
        handoff = self._handoff(group.get("handoff"))
        engine = GroupSpec(
            name=group["name"],
            capacity=self._capacity(group["capacity"]),
            profiles=profiles,
            activation=self._activation(group.get("activation")),
            failure=FailurePolicy(fallback.get("failureThreshold", 3), fallback.get("replicas")),
            handoff=handoff is not None,
            behavior=self._behavior(group.get("behavior")),
        )
        return GroupPolicy(
            group["name"], self._target(group["target"]), engine, handoff, group["skip"]
        )

    def _zone(self, name: str, path: str) -> ZoneInfo | None:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            self.error(path, f"unknown time zone {name!r} (use an IANA name such as Europe/Paris)")
            return None

    def _profile(self, profile: dict[str, Any], path: str, polling: timedelta) -> Profile:
        recurrence = None
        if "recurrence" in profile:
            raw = profile["recurrence"]
            zone = self._zone(raw["timeZone"], f"{path}.recurrence.timeZone")
            duration = raw.get("duration")
            recurrence = Recurrence(
                zone.key if zone else "UTC",
                frozenset(DAYS.index(d) for d in raw["days"]),
                tuple(sorted(set(raw["hours"]))),
                tuple(sorted(set(raw.get("minutes") or [0]))),
                _duration(duration) if duration else None,
            )
        fixed = (
            self._fixed_date(profile["fixedDate"], f"{path}.fixedDate")
            if ("fixedDate" in profile)
            else None
        )
        rules = tuple(
            self._rule(r, f"{path}.rules[{n}]", polling)
            for n, r in enumerate(profile.get("rules", []))
        )
        capacity = self._capacity(profile["capacity"]) if "capacity" in profile else None
        return Profile(profile["name"], rules, capacity, recurrence, fixed)

    def _fixed_date(self, raw: dict[str, Any], path: str) -> FixedDate | None:
        zone = self._zone(raw["timeZone"], f"{path}.timeZone")
        bounds: list[datetime] = []
        for key in ("start", "end"):
            try:
                moment = datetime.fromisoformat(raw[key])
            except ValueError:
                self.error(
                    f"{path}.{key}",
                    f"must be a date-time like 2026-11-27T08:00:00, not {raw[key]!r}",
                )
                continue
            bounds.append(moment if moment.tzinfo else moment.replace(tzinfo=zone))
        if len(bounds) != 2:
            return None
        if bounds[0] >= bounds[1]:
            self.error(f"{path}.end", "must be after start")
        return FixedDate(bounds[0], bounds[1])

    def _rule(self, rule: dict[str, Any], path: str, polling: timedelta) -> Rule | TargetRule:
        grain = _duration(rule["timeGrain"])
        window = _duration(rule["timeWindow"])
        if window % grain:  # the schema makes both positive
            self.error(
                f"{path}.timeWindow",
                f"must be a whole number of timeGrain ({format_duration(grain)})",
            )
        if grain < polling:
            self.error(
                f"{path}.timeGrain",
                f"timeGrain {format_duration(grain)} is shorter than pollingInterval "
                f"{format_duration(polling)}: every grain needs at least one sample",
            )
        if "target" in rule:
            target = rule["target"]
            kind = TargetKind.AVERAGE_VALUE if "averageValue" in target else TargetKind.VALUE
            return TargetRule(
                metric=rule["metric"],
                time_grain=grain,
                statistic=Statistic(rule["statistic"]),
                time_window=window,
                time_aggregation=TimeAggregation(rule["timeAggregation"]),
                target=TrackingTarget(kind, float(target[kind.value]), float(target["tolerance"])),
            )
        action = rule["action"]
        return Rule(
            metric=rule["metric"],
            time_grain=grain,
            statistic=Statistic(rule["statistic"]),
            time_window=window,
            time_aggregation=TimeAggregation(rule["timeAggregation"]),
            operator=Operator(rule["operator"]),
            threshold=float(rule["threshold"]),
            per_instance=rule["perInstance"],
            action=ScaleAction(
                Direction(action["direction"]),
                ActionType(action["type"]),
                action["value"],
                _duration(action["cooldown"]),
            ),
        )
