"""A policy's parts: its sources by metric, its targets by group, and how to observe them live.

Built once per policy version, after the tenancy checks (a refused policy builds nothing, so it
causes no API call). Each target kind builds its own groups, all at once, so that it can share
clients and batch observation (GCE: one Compute client per identity, one list per location).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from autozero.policy.model import Policy
from autozero.sources.base import BaseSource, Context
from autozero.sources.registry import build_source
from autozero.targets.base import Observed, ScaleTarget, TargetError
from autozero.targets.gce import GCEAllowlist
from autozero.targets.kind import BatchObserver, Environment, TargetKind, WatchedWorkload
from autozero.targets.registry import kind_of

SecretResolver = Callable[[str, str], str]


@dataclass
class RuntimeConfig:
    """What a shell configures once for every policy; each target kind reads its own part."""

    gce_allow: GCEAllowlist = field(default_factory=GCEAllowlist)  # default: no project
    gce_endpoint: str | None = None
    kube_api: Any = None  # the apiserver's client, when there is a cluster


@dataclass
class Assembly:
    sources: dict[str, BaseSource]  # by metric name
    targets: dict[str, ScaleTarget]  # by group name
    #: The groups the runtime's watches can observe without a call, and what to follow.
    watched: dict[str, WatchedWorkload] = field(default_factory=dict)
    observers: list[BatchObserver] = field(default_factory=list)  # one per target kind

    def observe_live(self, groups: Collection[str]) -> dict[str, Observed | TargetError]:
        """Ask the APIs (blocking), each kind in as few calls as it can (one list per GCE
        location and identity; one HPA list per namespace and a `/scale` GET per workload):
        used for the groups no watch can answer for."""
        seen: dict[str, Observed | TargetError] = {}
        for observe in self.observers:
            seen.update(observe(groups))
        return seen


def assemble(
    policy: Policy,
    *,
    resolve_secret: SecretResolver,
    config: RuntimeConfig | None = None,
    owner: Any = None,
) -> Assembly:
    """The policy's sources and targets (SourceConfigError or TargetConfigError if some
    settings cannot work, e.g. a Secret key that does not exist)."""
    ctx = Context(resolve_secret, namespace=policy.namespace)
    sources = {m.name: build_source(m, ctx) for m in policy.metrics}
    env = Environment(config or RuntimeConfig(), resolve_secret, owner)
    by_kind: dict[TargetKind, dict[str, Any]] = {}
    for group in policy.groups:
        by_kind.setdefault(kind_of(group.target), {})[group.name] = group.target
    built = [kind.assemble(policy, groups, env) for kind, groups in by_kind.items()]
    targets: dict[str, ScaleTarget] = {}
    watched: dict[str, WatchedWorkload] = {}
    for part in built:
        targets.update(part.targets)
        watched.update(part.watched)
    in_order = {g.name: targets[g.name] for g in policy.groups}
    return Assembly(sources, in_order, watched, [part.observe for part in built])
