"""Manifest (a dict, as YAML or the apiserver gives it) -> `Policy`, or `PolicyInvalid` with paths.

The CRD schema rejects what a schema can say at `kubectl apply`; this parser checks the same and
the rest (names that must refer to each other, time zones that must exist, grains that must fit
the polling interval), so `autozero validate` and the operator agree with the apiserver.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from autozero.engine.durations import format_duration
from autozero.engine.spec import (
    ActionType,
    Activation,
    Capacity,
    Direction,
    FailurePolicy,
    FixedDate,
    GroupSpec,
    Operator,
    Profile,
    Recurrence,
    Rule,
    ScaleAction,
    Statistic,
    TimeAggregation,
)
from autozero.policy.errors import FieldError, PolicyInvalid
from autozero.policy.fields import Field
from autozero.policy.model import (
    API_GROUP,
    API_VERSION,
    KIND,
    SOURCE_KEYS,
    GCEAutoscalerHandoff,
    GCETarget,
    GroupPolicy,
    Handoff,
    HPAHandoff,
    KubernetesTarget,
    MetricSpec,
    Policy,
    Target,
)

NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
PAUSED_ANNOTATION = "autozero.dev/paused"
DEFAULT_POLLING_INTERVAL = "15s"


def parse_policy(manifest: Any) -> Policy:
    """Parse and check a ScalingPolicy manifest; raise PolicyInvalid listing every error."""
    errors: list[FieldError] = []
    root = Field(manifest, "", errors)
    if not root.is_object():
        raise PolicyInvalid(errors)
    expected = f"{API_GROUP}/{API_VERSION}"
    if root.value.get("apiVersion") != expected:
        root.error(f"must be {expected}, not {root.value.get('apiVersion')!r}", key="apiVersion")
    if root.value.get("kind") != KIND:
        root.error(f"must be {KIND}, not {root.value.get('kind')!r}", key="kind")
    metadata = root.object("metadata", required=True)
    name = metadata.string("name", required=True) if metadata else ""
    namespace = (metadata.string("namespace") if metadata else "") or "default"
    annotations = _string_map(metadata.value.get("annotations")) if metadata else {}
    generation = metadata.value.get("generation") if metadata else None
    spec = root.object("spec", required=True)
    if spec is None:
        raise PolicyInvalid(errors)
    policy = _spec(spec, name, namespace, annotations, generation)
    if errors:
        raise PolicyInvalid(errors)
    return policy


def _string_map(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): str(v) for k, v in value.items()}


def _name(node: Field, key: str = "name") -> str:
    value = node.string(key, required=True)
    if value and not re.fullmatch(NAME_PATTERN, value):
        node.error(
            f"{value!r} must be lower-case letters, digits and '-', starting and ending with a "
            "letter or digit",
            key=key,
        )
    return value


def _unique(nodes: list[Field], names: list[str], what: str) -> None:
    seen: set[str] = set()
    for node, name in zip(nodes, names, strict=True):
        if name and name in seen:
            node.error(f"duplicate {what} name {name!r}", key="name")
        seen.add(name)


def _spec(
    spec: Field, name: str, namespace: str, annotations: dict[str, str], generation: Any
) -> Policy:
    spec.only(["pollingInterval", "paused", "dryRun", "metrics", "groups"])
    polling = spec.duration(
        "pollingInterval", DEFAULT_POLLING_INTERVAL, minimum=timedelta(seconds=1)
    )
    metric_nodes = spec.items("metrics")
    metrics = [_metric(node) for node in metric_nodes if node.is_object()]
    _unique(metric_nodes, [m.name for m in metrics], "metric")
    declared = {m.name for m in metrics}
    group_nodes = spec.items("groups", required=True, min_items=1)
    groups = [_group(node, declared, polling) for node in group_nodes if node.is_object()]
    _unique(group_nodes, [g.name for g in groups], "group")
    paused = spec.boolean("paused") or annotations.get(PAUSED_ANNOTATION, "").lower() == "true"
    return Policy(
        name=name,
        namespace=namespace,
        polling_interval=polling,
        metrics=tuple(metrics),
        groups=tuple(groups),
        paused=paused,
        dry_run=spec.boolean("dryRun"),
        generation=generation if isinstance(generation, int) else None,
        annotations=annotations,
    )


def _metric(node: Field) -> MetricSpec:
    node.only(["name", *SOURCE_KEYS])
    name = _name(node)
    chosen = node.exactly_one(SOURCE_KEYS, "source")
    if chosen is None:
        return MetricSpec(name, "", {})
    source, settings = chosen
    return MetricSpec(name, source, dict(settings.value))


def _target(node: Field) -> Target:
    node.only(["gce", "kubernetes"])
    chosen = node.exactly_one(("gce", "kubernetes"), "target")
    if chosen is None:
        return KubernetesTarget("", "", "")
    kind, settings = chosen
    if kind == "gce":
        settings.only(["project", "zone", "region", "instanceGroupManager"])
        if settings.has("zone") == settings.has("region"):
            settings.error("must set exactly one of zone (zonal group) or region (regional group)")
        return GCETarget(
            project=settings.string("project", required=True),
            instance_group_manager=settings.string("instanceGroupManager", required=True),
            zone=settings.string("zone") or None,
            region=settings.string("region") or None,
        )
    settings.only(["apiVersion", "kind", "name"])
    return KubernetesTarget(
        api_version=settings.string("apiVersion", required=True),
        kind=settings.string("kind", required=True),
        name=settings.string("name", required=True),
    )


def _capacity(node: Field) -> Capacity:
    node.only(["minimum", "maximum", "default"])
    minimum = node.integer("minimum", 0, minimum=0)
    maximum = node.integer("maximum", required=True, minimum=1, default=1)
    default = node.integer("default", max(1, minimum), minimum=0)
    if minimum > maximum:
        node.error(f"minimum {minimum} must not exceed maximum {maximum}", key="minimum")
    elif not minimum <= default <= maximum:
        node.error(
            f"must lie between minimum {minimum} and maximum {maximum}, not {default}",
            key="default",
        )
    return Capacity(minimum, maximum, default)


def _group(node: Field, declared: set[str], polling: timedelta) -> GroupPolicy:
    node.only(
        ["name", "target", "capacity", "activation", "handoff", "profiles", "fallback", "skip"]
    )
    name = _name(node)
    target_node = node.object("target", required=True)
    target = _target(target_node) if target_node else KubernetesTarget("", "", "")
    capacity_node = node.object("capacity", required=True)
    capacity = _capacity(capacity_node) if capacity_node else Capacity(0, 1, 1)

    activation = None
    activation_node = node.object("activation")
    if activation_node is not None:
        activation_node.only(["metric", "idleFor"])
        metric = activation_node.string("metric", required=True)
        _declared(activation_node, "metric", metric, declared)
        activation = Activation(metric, activation_node.duration("idleFor", required=True))
    elif capacity.minimum == 0:
        node.error(
            "is required when capacity.minimum is 0: it says when the group wakes and "
            "when it may go back to zero",
            key="activation",
        )

    handoff_node = node.object("handoff")
    handoff = _handoff(handoff_node, target) if handoff_node else None

    profile_nodes = node.items("profiles")
    profiles = [_profile(p, declared, polling) for p in profile_nodes if p.is_object()]
    _unique(profile_nodes, [p.name for p in profiles], "profile")
    defaults = [n for n, p in zip(profile_nodes, profiles, strict=True) if not p.scheduled]
    for extra in defaults[1:]:
        extra.error("only one profile may have no schedule (the default profile)")

    failure = FailurePolicy()
    fallback_node = node.object("fallback")
    if fallback_node is not None:
        fallback_node.only(["failureThreshold", "replicas"])
        replicas = (
            fallback_node.integer("replicas", minimum=0, maximum=capacity.maximum)
            if fallback_node.has("replicas")
            else None
        )
        failure = FailurePolicy(fallback_node.integer("failureThreshold", 3, minimum=1), replicas)

    engine = GroupSpec(
        name=name,
        capacity=capacity,
        profiles=tuple(profiles),
        activation=activation,
        failure=failure,
        handoff=handoff is not None,
    )
    return GroupPolicy(name, target, engine, handoff, node.boolean("skip"))


def _declared(node: Field, key: str, metric: str, declared: set[str]) -> None:
    if metric and metric not in declared:
        known = ", ".join(sorted(declared)) or "none"
        node.error(
            f"names metric {metric!r}, which spec.metrics does not declare (declared: {known})",
            key=key,
        )


def _handoff(node: Field, target: Target) -> Handoff | None:
    node.only(["gceAutoscaler", "hpa"])
    chosen = node.exactly_one(("gceAutoscaler", "hpa"), "handoff")
    if chosen is None:
        return None
    kind, settings = chosen
    if kind == "gceAutoscaler":
        settings.only(
            [
                "minReplicas",
                "maxReplicas",
                "coolDownPeriod",
                "cpuUtilizationTarget",
                "stabilizationPeriod",
            ]
        )
        if not isinstance(target, GCETarget):
            settings.error("needs a gce target")
        minimum, maximum = _replica_range(settings)
        stabilization = (
            settings.duration("stabilizationPeriod")
            if settings.has("stabilizationPeriod")
            else None
        )
        return GCEAutoscalerHandoff(
            min_replicas=minimum,
            max_replicas=maximum,
            cool_down_period=settings.duration("coolDownPeriod", "60s"),
            cpu_utilization_target=settings.number(
                "cpuUtilizationTarget", 0.6, minimum=0.01, maximum=1.0
            ),
            stabilization_period=stabilization,
        )
    settings.only(["minReplicas", "maxReplicas", "metrics", "behavior"])
    if not isinstance(target, KubernetesTarget):
        settings.error("needs a kubernetes target")
    minimum, maximum = _replica_range(settings)
    metrics = tuple(m.value for m in settings.items("metrics") if m.is_object())
    behavior = settings.object("behavior")
    return HPAHandoff(minimum, maximum, metrics, behavior.value if behavior else None)


def _replica_range(node: Field) -> tuple[int, int]:
    minimum = node.integer("minReplicas", 1, minimum=1)
    maximum = node.integer("maxReplicas", required=True, minimum=1, default=1)
    if minimum > maximum:
        node.error(
            f"minReplicas {minimum} must not exceed maxReplicas {maximum}", key="minReplicas"
        )
    return minimum, maximum


def _zone(node: Field, key: str = "timeZone") -> ZoneInfo | None:
    name = node.string(key, "UTC")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        node.error(f"unknown time zone {name!r} (use an IANA name such as Europe/Paris)", key=key)
        return None


def _profile(node: Field, declared: set[str], polling: timedelta) -> Profile:
    node.only(["name", "recurrence", "fixedDate", "capacity", "rules"])
    name = _name(node)
    if node.has("recurrence") and node.has("fixedDate"):
        node.error("may set recurrence or fixedDate, not both")
    recurrence = None
    recurrence_node = node.object("recurrence")
    if recurrence_node is not None:
        recurrence = _recurrence(recurrence_node)
    fixed = None
    fixed_node = node.object("fixedDate")
    if fixed_node is not None:
        fixed = _fixed_date(fixed_node)
    capacity_node = node.object("capacity")
    capacity = _capacity(capacity_node) if capacity_node else None
    rules = tuple(_rule(r, declared, polling) for r in node.items("rules") if r.is_object())
    return Profile(name, rules, capacity, recurrence, fixed)


def _recurrence(node: Field) -> Recurrence:
    node.only(["timeZone", "days", "hours", "minutes", "duration"])
    zone = _zone(node)
    days: set[int] = set()
    for day in node.items("days", required=True, min_items=1):
        if day.value in DAYS:
            days.add(DAYS.index(day.value))
        else:
            day.error(f"must be one of {', '.join(DAYS)}, not {day.value!r}")
    hours = _clock_values(node, "hours", 23, required=True)
    minutes = _clock_values(node, "minutes", 59, required=False) or (0,)
    duration = (
        node.duration("duration", minimum=timedelta(minutes=1)) if node.has("duration") else None
    )
    return Recurrence(zone.key if zone else "UTC", frozenset(days), hours, minutes, duration)


def _clock_values(node: Field, key: str, top: int, *, required: bool) -> tuple[int, ...]:
    values: list[int] = []
    for item in node.items(key, required=required, min_items=1 if required else 0):
        if (
            isinstance(item.value, int)
            and not isinstance(item.value, bool)
            and 0 <= item.value <= top
        ):
            values.append(item.value)
        else:
            item.error(f"must be an integer from 0 to {top}, not {item.value!r}")
    return tuple(sorted(set(values)))


def _fixed_date(node: Field) -> FixedDate | None:
    node.only(["timeZone", "start", "end"])
    zone = _zone(node)
    bounds: list[datetime] = []
    for key in ("start", "end"):
        text = node.string(key, required=True)
        if not text:
            continue
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            node.error(f"must be a date-time like 2026-11-27T08:00:00, not {text!r}", key=key)
            continue
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=zone)
        bounds.append(moment)
    if len(bounds) != 2:
        return None
    if bounds[0] >= bounds[1]:
        node.error("must be after start", key="end")
    return FixedDate(bounds[0], bounds[1])


def _rule(node: Field, declared: set[str], polling: timedelta) -> Rule:
    node.only(
        [
            "metric",
            "timeGrain",
            "statistic",
            "timeWindow",
            "timeAggregation",
            "operator",
            "threshold",
            "perInstance",
            "action",
        ]
    )
    metric = node.string("metric", required=True)
    _declared(node, "metric", metric, declared)
    grain = node.duration("timeGrain", "1m", minimum=timedelta(seconds=1))
    window = node.duration("timeWindow", "5m", minimum=timedelta(seconds=1))
    if grain and window:
        if grain > window:
            node.error(
                f"timeGrain {_secs(grain)} must not exceed timeWindow {_secs(window)}",
                key="timeGrain",
            )
        elif window % grain:
            node.error(f"must be a whole number of timeGrain ({_secs(grain)})", key="timeWindow")
        if grain < polling:
            node.error(
                f"timeGrain {_secs(grain)} is shorter than pollingInterval {_secs(polling)}:"
                " every grain needs at least one sample",
                key="timeGrain",
            )
    action_node = node.object("action", required=True)
    action = (
        _action(action_node)
        if action_node
        else ScaleAction(Direction.INCREASE, ActionType.CHANGE_COUNT, 1, timedelta(minutes=5))
    )
    return Rule(
        metric=metric,
        time_grain=grain or timedelta(minutes=1),
        statistic=node.enum("statistic", Statistic, Statistic.AVERAGE),
        time_window=window or timedelta(minutes=5),
        time_aggregation=node.enum("timeAggregation", TimeAggregation, TimeAggregation.AVERAGE),
        operator=node.enum("operator", Operator),
        threshold=node.number("threshold", required=True),
        per_instance=node.boolean("perInstance"),
        action=action,
    )


def _action(node: Field) -> ScaleAction:
    node.only(["direction", "type", "value", "cooldown"])
    kind = node.enum("type", ActionType, ActionType.CHANGE_COUNT)
    floor = 0 if kind is ActionType.EXACT_COUNT else 1
    value = node.number("value", 1, minimum=floor)
    if kind is not ActionType.PERCENT_CHANGE_COUNT and value != int(value):
        node.error(f"must be a whole number for {kind.value}, not {value:g}", key="value")
    return ScaleAction(
        direction=node.enum("direction", Direction),
        type=kind,
        value=value,
        cooldown=node.duration("cooldown", "5m"),
    )


def _secs(value: timedelta) -> str:
    return format_duration(value)
