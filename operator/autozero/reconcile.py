"""One policy, one cycle: read the sources, observe the targets, decide, apply, remember.

Shared by the operator and the standalone runner, so both behave alike; neither kopf nor a
process loop lives here. The clock is read by the caller and passed in as `now`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from autozero.engine.decide import decide
from autozero.engine.decision import Action, Decision
from autozero.engine.readings import Observation
from autozero.engine.state import GroupState
from autozero.policy.model import GCETarget, GroupPolicy, KubernetesTarget, Policy, SecretKeyRef
from autozero.secrets import SecretUnavailable
from autozero.sources.base import BaseSource
from autozero.sources.registry import read_all
from autozero.targets.base import (
    Applied,
    Change,
    Observed,
    ScaleTarget,
    TargetConfigError,
    TargetError,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GroupReport:
    group: str
    decision: Decision | None = None
    observed: Observed | None = None
    applied: Applied | None = None
    error: TargetError | None = None  # the target could not be observed or changed
    acted: bool = False  # False when paused or in dry run

    @property
    def scaled(self) -> bool:
        return self.applied is not None and self.applied.wrote


@dataclass(frozen=True)
class CycleReport:
    policy: str
    at: datetime
    groups: tuple[GroupReport, ...]
    readings: Mapping[str, Observation]


@dataclass
class PolicyRunner:
    """Keeps one policy's engine state between cycles and carries out its decisions."""

    policy: Policy
    sources: Mapping[str, BaseSource]
    targets: Mapping[str, ScaleTarget]
    states: dict[str, GroupState] = field(default_factory=dict)
    observe_many: Callable[[list[GroupPolicy]], Mapping[str, Observed | TargetError]] | None = None

    @property
    def acting(self) -> bool:
        return not (self.policy.paused or self.policy.dry_run)

    def active_groups(self) -> list[GroupPolicy]:
        return [g for g in self.policy.groups if not g.skip]

    def cycle(self, now: datetime) -> CycleReport:
        groups = self.active_groups()
        wanted = {m for g in groups for m in g.engine.metrics}
        readings = read_all(s for name, s in self.sources.items() if name in wanted)
        observations = self.observe_many(groups) if self.observe_many else {}
        reports = tuple(self._group(g, readings, observations, now) for g in groups)
        return CycleReport(self.policy.name, now, reports, readings)

    def _group(
        self,
        group: GroupPolicy,
        readings: Mapping[str, Observation],
        observations: Mapping[str, Observed | TargetError],
        now: datetime,
    ) -> GroupReport:
        target = self.targets[group.name]
        try:
            seen = observations.get(group.name) or target.observe()
            if isinstance(seen, TargetError):
                raise seen
        except TargetError as error:
            return GroupReport(group.name, error=error)
        state = self.states.get(group.name, GroupState())
        evaluation = decide(group.engine, state, readings, now=now, current=seen.replicas)
        decision = evaluation.decision
        self.states[group.name] = evaluation.state
        if not self.acting:
            return GroupReport(group.name, decision, seen)
        try:
            applied = target.apply(Change(decision.target, group.handoff, decision.message), seen)
        except TargetError as error:
            log.warning("%s/%s: %s", self.policy.name, group.name, error)
            return GroupReport(group.name, decision, seen, error=error, acted=True)
        if decision.action is not Action.HOLD:
            self.states[group.name] = evaluation.state.after_scale(
                at=now, was=decision.current, now_is=decision.target
            )
        return GroupReport(group.name, decision, seen, applied, acted=True)


def assemble(
    policy: Policy,
    *,
    resolve_secret: Callable[[str, str], str],
    gce_endpoint: str | None = None,
    kube_api: Any = None,
    owner: Any = None,
) -> PolicyRunner:
    """A runner with the policy's sources and targets (SourceConfigError if a source's settings
    cannot work, e.g. a Secret key that does not exist)."""
    from google.auth.exceptions import DefaultCredentialsError

    from autozero.sources.base import Context
    from autozero.sources.registry import build_source
    from autozero.targets.gce import Compute, GCEGroup, observe_groups
    from autozero.targets.kubernetes import KubernetesWorkload, observe_workloads

    ctx = Context(resolve_secret, namespace=policy.namespace)
    sources = {m.name: build_source(m, ctx) for m in policy.metrics}
    targets: dict[str, ScaleTarget] = {}
    workloads: dict[str, KubernetesWorkload] = {}
    # One Compute client per identity (the operator's own, or a key from a Secret), and the
    # groups it serves, so observation stays one list per location per identity.
    computes: dict[SecretKeyRef | None, tuple[Compute, dict[str, GCETarget]]] = {}
    for group in policy.groups:
        if isinstance(group.target, GCETarget):
            ref = group.target.credentials
            if ref not in computes:
                key = _service_account_key(policy, group.name, ref, resolve_secret)
                try:
                    compute = Compute.build(endpoint=gce_endpoint, service_account_info=key)
                except DefaultCredentialsError as exc:  # no key Secret, no endpoint, no ADC
                    raise TargetConfigError(
                        group.name,
                        f"no Application Default Credentials for GCE project "
                        f"{group.target.project} ({str(exc).split('. ')[0].rstrip('.')}): set "
                        "GOOGLE_APPLICATION_CREDENTIALS to a service-account key file, run "
                        "`gcloud auth application-default login`, or name a key Secret in "
                        "target.gce.credentials",
                    ) from None
                except ValueError:  # a key google-auth cannot load; its text is never shown
                    raise TargetConfigError(
                        group.name,
                        f"secret {policy.namespace}/{ref.name if ref else '-'} holds a "
                        "service-account key that cannot be loaded",
                    ) from None
                computes[ref] = (compute, {})
            compute, served = computes[ref]
            targets[group.name] = GCEGroup(group.name, group.target, compute)
            served[group.name] = group.target
        elif isinstance(group.target, KubernetesTarget):
            workloads[group.name] = KubernetesWorkload(
                group.name, group.target, policy.namespace, kube_api, owner
            )
            targets[group.name] = workloads[group.name]

    def observe_many(groups: list[GroupPolicy]) -> Mapping[str, Observed | TargetError]:
        names = {g.name for g in groups}
        seen: dict[str, Observed | TargetError] = {}
        for compute, served in computes.values():
            wanted = {name: target for name, target in served.items() if name in names}
            if wanted:
                seen.update(observe_groups(compute, wanted))
        wanted_workloads = {name: w for name, w in workloads.items() if name in names}
        if wanted_workloads:
            seen.update(observe_workloads(kube_api, wanted_workloads))
        return seen

    return PolicyRunner(policy, sources, targets, observe_many=observe_many)


def _service_account_key(
    policy: Policy,
    group: str,
    ref: SecretKeyRef | None,
    resolve_secret: Callable[[str, str], str],
) -> dict[str, Any] | None:
    """The service-account key a GCE target names, from the policy's namespace; None for the
    operator's own identity. The key's content never appears in an error."""
    if ref is None:
        return None
    where = f"secret {policy.namespace}/{ref.name} key {ref.key!r}"
    try:
        text = resolve_secret(ref.name, ref.key)
    except SecretUnavailable as exc:  # which of no Secret, no key, forbidden... it says
        error = TargetConfigError(group, str(exc))
        error.retryable = exc.retryable
        raise error from exc
    except KeyError as exc:  # a plain resolver (a mapping): the key is not there
        raise TargetConfigError(group, f"{where} does not exist") from exc
    try:
        key = json.loads(text)
    except ValueError:
        key = None
    if not isinstance(key, dict) or key.get("type") != "service_account":
        raise TargetConfigError(group, f"{where} is not a service-account key (JSON)") from None
    return key
