"""The typed, immutable ScalingPolicy: what the operator and the standalone runner act on.

Each group carries the engine's `GroupSpec` (everything the decision needs) beside what only the
appliers need (its target and handoff, typed by the target's kind: `targets.registry`). Source
settings stay a mapping here: each source module validates its own settings, as each KEDA scaler
parses its own metadata (`sources.registry`).
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
NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True, slots=True)
class MetricSpec:
    name: str
    source: str  # its source's key (`sources.registry.SOURCES`)
    settings: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class SecretKeyRef:
    """A key of a Secret in the policy's own namespace."""

    name: str
    key: str


@dataclass(frozen=True, slots=True)
class GroupPolicy:
    name: str
    target: Any  # its kind's parsed settings (`GCETarget`...): `targets.registry.kind_of`
    engine: GroupSpec
    handoff: Any = None  # that kind's handoff settings, when a native autoscaler takes over
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
