"""The typed, immutable ScalingPolicy: what the operator and the standalone runner act on.

Each group carries the engine's `GroupSpec` (everything the decision needs) beside what only the
appliers need (its target and handoff). Source settings stay a mapping here: each source module
validates its own settings, as each KEDA scaler parses its own metadata.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from autozero.engine.spec import GroupSpec

API_GROUP = "autozero.dev"
API_VERSION = "v1alpha1"
KIND = "ScalingPolicy"
SOURCE_KEYS = ("mrq", "redis", "rq", "rabbitmq", "prometheus")
#: What one unit of each source's pending count is, for sentences; a query's value has none.
UNITS = {"mrq": "jobs", "rq": "jobs", "redis": "items", "rabbitmq": "messages", "prometheus": ""}
NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True, slots=True)
class MetricSpec:
    name: str
    source: str  # one of SOURCE_KEYS
    settings: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class SecretKeyRef:
    """A key of a Secret in the policy's own namespace."""

    name: str
    key: str


@dataclass(frozen=True, slots=True)
class GCETarget:
    project: str
    instance_group_manager: str
    zone: str | None = None
    region: str | None = None
    credentials: SecretKeyRef | None = None  # a service-account key; else the operator's own

    @property
    def location(self) -> str:
        return self.zone or self.region or ""


@dataclass(frozen=True, slots=True)
class KubernetesTarget:
    api_version: str
    kind: str
    name: str
    namespace: str | None = None  # None: the policy's own (any other is refused)


Target = GCETarget | KubernetesTarget


@dataclass(frozen=True, slots=True)
class GCEAutoscalerHandoff:
    min_replicas: int
    max_replicas: int
    cool_down_period: timedelta
    cpu_utilization_target: float
    stabilization_period: timedelta | None = None


@dataclass(frozen=True, slots=True)
class HPAHandoff:
    min_replicas: int
    max_replicas: int
    metrics: tuple[Mapping[str, Any], ...] = ()
    behavior: Mapping[str, Any] | None = None


Handoff = GCEAutoscalerHandoff | HPAHandoff


@dataclass(frozen=True, slots=True)
class GroupPolicy:
    name: str
    target: Target
    engine: GroupSpec
    handoff: Handoff | None = None
    skip: bool = False


@dataclass(frozen=True)
class Policy:
    name: str
    namespace: str
    polling_interval: timedelta
    metrics: tuple[MetricSpec, ...]
    groups: tuple[GroupPolicy, ...]
    paused: bool = False
    dry_run: bool = False
    generation: int | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)
    service_account: str | None = None  # whose RBAC bounds what the policy may scale

    def metric(self, name: str) -> MetricSpec:
        for metric in self.metrics:
            if metric.name == name:
                return metric
        raise KeyError(name)

    def group(self, name: str) -> GroupPolicy:
        for group in self.groups:
            if group.name == name:
                return group
        raise KeyError(name)
