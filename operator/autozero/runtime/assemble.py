"""A policy's parts: its sources by metric, its targets by group, and how to observe them live.

Built once per policy version, after the tenancy checks (a refused policy builds nothing, so it
causes no API call). One Compute client per identity (the operator's own, or a key from a
Secret), so GCE observation stays one list per location per identity.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from autozero.policy.model import GCETarget, KubernetesTarget, Policy, SecretKeyRef
from autozero.secrets import SecretUnavailable
from autozero.sources.base import BaseSource, Context
from autozero.sources.registry import build_source
from autozero.targets.base import Observed, ScaleTarget, TargetConfigError, TargetError
from autozero.targets.gce import Compute, GCEGroup, observe_groups
from autozero.targets.kubernetes import KubernetesWorkload, Owner, observe_workloads

SecretResolver = Callable[[str, str], str]


@dataclass
class Assembly:
    sources: dict[str, BaseSource]  # by metric name
    targets: dict[str, ScaleTarget]  # by group name
    workloads: dict[str, KubernetesWorkload] = field(default_factory=dict)  # the k8s ones
    _computes: list[tuple[Compute, dict[str, GCETarget]]] = field(default_factory=list)
    _kube_api: Any = None

    def observe_live(self, groups: Collection[str]) -> dict[str, Observed | TargetError]:
        """Ask the APIs (blocking): one list per GCE location and identity, and for workloads
        one HPA list per namespace and a `/scale` GET each (used when no cache can answer)."""
        seen: dict[str, Observed | TargetError] = {}
        for compute, served in self._computes:
            wanted = {name: target for name, target in served.items() if name in groups}
            if wanted:
                seen.update(observe_groups(compute, wanted))
        workloads = {name: w for name, w in self.workloads.items() if name in groups}
        if workloads:
            seen.update(observe_workloads(self._kube_api, workloads))
        return seen


def assemble(
    policy: Policy,
    *,
    resolve_secret: SecretResolver,
    gce_endpoint: str | None = None,
    kube_api: Any = None,
    owner: Owner | None = None,
) -> Assembly:
    """The policy's sources and targets (SourceConfigError or TargetConfigError if some
    settings cannot work, e.g. a Secret key that does not exist)."""
    from google.auth.exceptions import DefaultCredentialsError

    ctx = Context(resolve_secret, namespace=policy.namespace)
    sources = {m.name: build_source(m, ctx) for m in policy.metrics}
    targets: dict[str, ScaleTarget] = {}
    workloads: dict[str, KubernetesWorkload] = {}
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
            workload = KubernetesWorkload(
                group.name, group.target, policy.namespace, kube_api, owner
            )
            workloads[group.name] = workload
            targets[group.name] = workload
    return Assembly(sources, targets, workloads, list(computes.values()), kube_api)


def _service_account_key(
    policy: Policy, group: str, ref: SecretKeyRef | None, resolve_secret: SecretResolver
) -> Mapping[str, Any] | None:
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
