"""What a native autoscaler would do while a group is handed off, for `autozero simulate`.

Only the simulator uses these models: in the operator the real autoscaler decides. Each model
reads trace rows named `<group>.<signal>` (names no policy metric can have) and follows the
autoscaler's documented rules:

- **GCE autoscaler** (signal `<group>.cpu`: the average CPU utilization, 0 to 1, of the group's
  instances that have finished initializing): the recommended size is ceil(load / target), the
  load being the utilization times the initialized instances (the autoscaler ignores instances
  still within `coolDownPeriod`, its initialization period); it scales out to it at once, and in
  only to the highest recommendation of the last `stabilizationPeriod` (600 s by default, the
  Compute API's `stabilizationPeriodSec`); within `minReplicas`..`maxReplicas`.
- **HPA** (one signal per metric of `handoff.hpa.metrics`: `<group>.cpu` or `<group>.memory`
  for a Resource metric, as a ratio of the requests; `<group>.<metric name>` for External, Pods
  and Object metrics): each metric's desired count by the HPA's replica calculator (tolerance
  0.1), the largest wins, then the HPA's behavior (the policy's, else the HPA's defaults), within
  `minReplicas`..`maxReplicas`. The engine's own target and behavior code computes it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

from autozero.engine.behavior import rate_limit, remember, stabilize
from autozero.engine.spec import PolicyType, RatePolicy, ScalingRules, SelectPolicy
from autozero.engine.state import Timed
from autozero.policy.model import GroupPolicy
from autozero.quantity import parse_quantity
from autozero.targets.registry import handoff_of

if TYPE_CHECKING:  # each kind's module makes its model (`HandoffKind.model`)
    from autozero.targets.gce import GCEAutoscalerHandoff
    from autozero.targets.kubernetes import HPAHandoff

#: The Compute API's default stabilizationPeriodSec.
GCE_STABILIZATION = timedelta(seconds=600)
TOLERANCE = 0.1
_EPSILON = 1e-9
#: The HPA's default behavior (kube-controller-manager).
HPA_SCALE_UP = ScalingRules(
    timedelta(0),
    SelectPolicy.MAX,
    (
        RatePolicy(PolicyType.PERCENT, 100, timedelta(seconds=15)),
        RatePolicy(PolicyType.PODS, 4, timedelta(seconds=15)),
    ),
)
HPA_SCALE_DOWN = ScalingRules(
    timedelta(minutes=5),
    SelectPolicy.MAX,
    (RatePolicy(PolicyType.PERCENT, 100, timedelta(seconds=15)),),
)


class Unmodelled(ValueError):
    """A handoff this simulator cannot model (an HPA metric of an unknown form); says which."""


def _ceil(value: float) -> int:
    return math.ceil(value - _EPSILON)


class NativeModel(Protocol):
    name: str

    @property
    def signals(self) -> tuple[str, ...]: ...

    def start(self, at: float, replicas: int) -> None: ...

    def step(self, at: float, replicas: int, readings: Mapping[str, float]) -> tuple[int, str]: ...


@dataclass
class GCEAutoscalerModel:
    handoff: GCEAutoscalerHandoff
    group: str
    name: str = "GCE autoscaler"
    created: list[float] = field(default_factory=list)  # each instance's creation time
    recommendations: list[Timed] = field(default_factory=list)

    @property
    def signals(self) -> tuple[str, ...]:
        return (f"{self.group}.cpu",)

    def start(self, at: float, replicas: int) -> None:
        self.created = [at] * replicas
        self.recommendations = []

    def step(self, at: float, replicas: int, readings: Mapping[str, float]) -> tuple[int, str]:
        handoff = self.handoff
        while len(self.created) < replicas:  # made by someone else: count them as new
            self.created.append(at)
        del self.created[replicas:]
        cool_down = handoff.cool_down_period.total_seconds()
        ready = sum(1 for made in self.created if at - made >= cool_down)
        utilization = readings[self.signals[0]]
        target = handoff.cpu_utilization_target
        if ready == 0:
            return replicas, f"every instance still initializing ({self._cpu(utilization)})"
        wanted = _ceil(ready * utilization / target)
        wanted = max(handoff.min_replicas, min(handoff.max_replicas, wanted))
        period = (handoff.stabilization_period or GCE_STABILIZATION).total_seconds()
        self.recommendations = [r for r in self.recommendations if r[0] > at - period]
        self.recommendations.append((at, wanted))
        if wanted >= replicas:
            count = wanted  # out at once
        else:  # in only to the highest recommendation of the stabilization period
            count = min(replicas, max(r[1] for r in self.recommendations))
        why = (
            f"{self._cpu(utilization)} on {ready} initialized of {replicas}, target "
            f"{target:g}: wants {wanted}"
        )
        if count > wanted:
            why += f", held at {count} (stabilization period {period:g}s)"
        if count > replicas:
            self.created.extend([at] * (count - replicas))
        return count, why

    def _cpu(self, utilization: float) -> str:
        return f"{self.signals[0]} {utilization:g}"


@dataclass(frozen=True)
class _HPAMetric:
    signal: str
    kind: str  # "average" (ceil(v / t)), "ratio" (ceil(n * v / t))
    target: float
    text: str


def _hpa_metric(spec: Mapping[str, Any], group: str) -> _HPAMetric:
    kind = spec.get("type")
    body = spec.get(
        {
            "Resource": "resource",
            "ContainerResource": "containerResource",
            "External": "external",
            "Pods": "pods",
            "Object": "object",
        }.get(str(kind), "")
    )
    if not isinstance(body, Mapping):
        raise Unmodelled(f"HPA metric of type {kind!r}")
    target = body.get("target") or {}
    form = target.get("type")
    if kind in ("Resource", "ContainerResource"):
        signal = f"{group}.{body.get('name')}"
        if form == "Utilization":
            percent = float(target.get("averageUtilization", 0))
            return _HPAMetric(signal, "ratio", percent / 100, f"{signal} at {percent:g}%")
        if form == "AverageValue":
            value = parse_quantity(target.get("averageValue"))
            return _HPAMetric(signal, "ratio", value, f"{signal} at {value:g} a pod")
        raise Unmodelled(f"{kind} target {form!r}")
    signal = f"{group}.{(body.get('metric') or {}).get('name')}"
    if form == "AverageValue":
        value = parse_quantity(target.get("averageValue"))
        # Pods metrics are per pod: the HPA averages them, so n * average / target.
        shape = "ratio" if kind == "Pods" else "average"
        return _HPAMetric(signal, shape, value, f"{signal} at {value:g} a pod")
    if form == "Value":
        value = parse_quantity(target.get("value"))
        return _HPAMetric(signal, "ratio", value, f"{signal} at {value:g}")
    raise Unmodelled(f"{kind} target {form!r}")


def _rules(behavior: Mapping[str, Any] | None, key: str, default: ScalingRules) -> ScalingRules:
    given = (behavior or {}).get(key)
    if not isinstance(given, Mapping):
        return default
    window = given.get("stabilizationWindowSeconds")
    policies = tuple(
        RatePolicy(
            PolicyType(p["type"]), int(p["value"]), timedelta(seconds=int(p["periodSeconds"]))
        )
        for p in given.get("policies") or ()
    )
    return ScalingRules(
        default.stabilization_window if window is None else timedelta(seconds=int(window)),
        SelectPolicy(given.get("selectPolicy") or "Max"),
        policies or default.policies,
    )


@dataclass
class HPAModel:
    handoff: HPAHandoff
    group: str
    name: str = "HPA"
    metrics: tuple[_HPAMetric, ...] = ()
    scale_up: ScalingRules = HPA_SCALE_UP
    scale_down: ScalingRules = HPA_SCALE_DOWN
    highs: tuple[Timed, ...] = ()
    lows: tuple[Timed, ...] = ()
    events: tuple[Timed, ...] = ()

    def __post_init__(self) -> None:
        if not self.handoff.metrics:
            raise Unmodelled("an HPA without metrics")
        try:
            self.metrics = tuple(_hpa_metric(m, self.group) for m in self.handoff.metrics)
            behavior = self.handoff.behavior
            self.scale_up = _rules(behavior, "scaleUp", HPA_SCALE_UP)
            self.scale_down = _rules(behavior, "scaleDown", HPA_SCALE_DOWN)
        except Unmodelled:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise Unmodelled(f"HPA metric or behavior: {exc}") from None

    @property
    def signals(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(m.signal for m in self.metrics))

    def start(self, at: float, replicas: int) -> None:
        # The HPA's history starts with the count it first sees (maybeInitScaleDown...).
        self.highs, self.lows, self.events = ((at, replicas),), (), ()

    def step(self, at: float, replicas: int, readings: Mapping[str, float]) -> tuple[int, str]:
        wanted, whys = 0, []
        for metric in self.metrics:
            value = readings[metric.signal]
            if metric.kind == "average":
                ratio = value / (metric.target * replicas)
                desired = _ceil(value / metric.target)
            else:
                ratio = value / metric.target
                desired = _ceil(replicas * ratio)
            if abs(1.0 - ratio) <= TOLERANCE:
                desired = replicas
            wanted = max(wanted, desired)
            whys.append(f"{metric.signal} {value:g} ({metric.text}): {desired}")
        seconds = (
            self.scale_up.stabilization_window.total_seconds(),
            self.scale_down.stabilization_window.total_seconds(),
        )
        stable = stabilize(replicas, wanted, self.highs, self.lows, now=at, windows=seconds)
        self.highs, self.lows = remember(self.highs, self.lows, at, wanted, seconds)
        longest = max(
            (
                p.period.total_seconds()
                for p in (*self.scale_up.policies, *self.scale_down.policies)
            ),
            default=0.0,
        )
        self.events = tuple(e for e in self.events if e[0] > at - longest)
        rules = self.scale_up if stable.count > replicas else self.scale_down
        count = rate_limit(replicas, stable.count, self.events, rules, now=at).count
        count = max(self.handoff.min_replicas, min(self.handoff.max_replicas, count))
        if count != replicas:
            self.events = (*self.events, (at, count - replicas))
        why = "; ".join(whys)
        if count != wanted:
            why += f"; {count} by its behavior and bounds"
        return count, why


def native_model(group: GroupPolicy) -> NativeModel | None:
    """The model of `group`'s handoff; None without one. Unmodelled when it cannot be modelled."""
    if group.handoff is None:
        return None
    model: NativeModel = handoff_of(group.target).model(group.handoff, group.name)
    return model
