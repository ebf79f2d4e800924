"""What autozero observes in the cluster, from watches: each watched group's count and HPA.

The groups are those whose target kind says what to follow (`Assembly.watched`: a workload with
a /scale subresource). One workload informer per (kind, namespace or cluster) a served policy
names, and one HPA informer per namespace (`InformerSet`), shared and reference counted. A group
is observed from the cache while both informers are synced and healthy; otherwise `lookup` says
it cannot answer and the runtime falls back to its kind's live observation (one `/scale` GET per
group), and says so (`problems`). A change to a watched workload or HPA calls
`on_group_changed(policy, group)`, so the group is decided at once.

The workload informers are scoped: they list and watch the whole namespace (or cluster) but keep
only the workloads some attached policy names, so a sharded replica holds its share and no more.
A workload newly named is fetched (one GET) before the policy's first pass when its informer is
synced; until it is known, `lookup` says it cannot answer, and the pass reads it live.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from autozero.runtime.informers import InformerKey, InformerSet
from autozero.runtime.life import PolicyKey, PolicyLife
from autozero.runtime.records import HPARecord, WorkloadRecord
from autozero.targets.base import Observed, TargetError, TargetNotFound
from autozero.targets.kind import WatchedWorkload

#: (namespace, API group, kind, name) of a workload.
Ident = tuple[str, str, str, str]


def _group_of(api_version: str) -> str:
    return api_version.rpartition("/")[0]


def ident(workload: WatchedWorkload) -> Ident:
    return (workload.namespace, _group_of(workload.api_version), workload.kind, workload.name)


class ClusterCache:
    def __init__(
        self,
        api_client: Any,
        *,
        cluster_wide: bool,
        on_group_changed: Callable[[PolicyKey, str], None],
        informers: InformerSet | None = None,
    ) -> None:
        self.on_group_changed = on_group_changed
        self.informers = informers or InformerSet(
            api_client,
            cluster_wide=cluster_wide,
            on_change=self._changed,
            scoped=True,
        )
        self._lock = threading.Lock()
        self._interest: dict[Ident, set[tuple[PolicyKey, str]]] = defaultdict(set)
        self._held: dict[PolicyKey, list[WatchedWorkload]] = {}

    def attach(self, key: PolicyKey, life: PolicyLife) -> None:
        """Start (or share) the informers the policy's watched groups need."""
        self.detach(key)
        held: list[WatchedWorkload] = []
        fetch: list[tuple[WatchedWorkload, Any]] = []
        for name, target in life.parts.watched.items():
            informer = self.informers.acquire_workloads(
                target.api_version, target.kind, target.namespace
            )
            self.informers.acquire_hpas(target.namespace)
            held.append(target)
            with self._lock:
                interested = self._interest[ident(target)]
                if not interested:  # under the lock: a detach cannot unwant it in between
                    informer.want(target.namespace, target.name)
                    fetch.append((target, informer))
                interested.add((key, name))
        self._held[key] = held
        for target, informer in fetch:  # before the first pass, so it finds them
            informer.prime(target.namespace, target.name)

    def detach(self, key: PolicyKey) -> None:
        """Release what `attach` took (the last user of an informer stops it)."""
        for target in self._held.pop(key, []):
            with self._lock:
                interested = self._interest.get(ident(target))
                if interested is not None:
                    interested.discard((key, target.group))
                    if not interested:
                        del self._interest[ident(target)]
                        informer = self.informers.workloads(
                            target.api_version, target.kind, target.namespace
                        )
                        if informer is not None:  # its entry goes with its last policy
                            informer.unwant(target.namespace, target.name)
            self.informers.release_workloads(target.api_version, target.kind, target.namespace)
            self.informers.release_hpas(target.namespace)

    def lookup(self, target: WatchedWorkload) -> Observed | TargetError | None:
        """The group's target as the watches know it; None when they cannot say (not synced
        yet, or refused), and the caller asks the API instead."""
        workloads = self.informers.workloads(target.api_version, target.kind, target.namespace)
        hpas = self.informers.hpas(target.namespace)
        if workloads is None or hpas is None:
            return None
        for informer in (workloads, hpas):
            error = informer.error
            if not informer.synced or (error is not None and not error.transient):
                return None
        if not workloads.known(target.namespace, target.name):  # not fetched yet: ask the API
            return None
        record = workloads.get(target.namespace, target.name)
        if record is None:
            return TargetNotFound(target.group, f"{target.what} not found")
        found = hpas.targeting(target.namespace, target.api_version, target.kind, target.name)
        return observed(target, record, found)

    def problems(self, life: PolicyLife) -> list[str]:
        """Why some of the policy's groups are observed with GETs rather than watches."""
        out: list[str] = []
        for name, target in life.parts.watched.items():
            for informer in (
                self.informers.workloads(target.api_version, target.kind, target.namespace),
                self.informers.hpas(target.namespace),
            ):
                error = informer.error if informer is not None else None
                if error is not None and not error.transient:
                    out.append(f"{name}: {error} (observed with a GET per evaluation)")
        return sorted(set(out))

    def counts(self) -> dict[str, int]:
        return self.informers.counts()

    def stop(self) -> None:
        self.informers.stop()

    def _changed(
        self,
        key: InformerKey,
        old: WorkloadRecord | HPARecord | None,
        new: WorkloadRecord | HPARecord | None,
    ) -> None:
        record = new or old
        if isinstance(record, HPARecord):
            seen: Ident = (
                record.namespace,
                record.target_group,
                record.target_kind,
                record.target_name,
            )
        elif isinstance(record, WorkloadRecord):
            seen = (record.namespace, _group_of(key.api_version), key.kind, record.name)
        else:
            return
        with self._lock:
            interested = list(self._interest.get(seen, ()))
        for policy, group in interested:
            self.on_group_changed(policy, group)


def observed(workload: WatchedWorkload, record: WorkloadRecord, hpas: list[HPARecord]) -> Observed:
    """`KubernetesWorkload.observe_with`, from the cache: its count and the HPA on it (ours
    first: a foreign HPA beside ours is still a conflict, reported once ours is gone)."""

    def owned(hpa: HPARecord) -> bool:
        return workload.owns(hpa.name, hpa.owner_uids)

    ranked = sorted(hpas, key=lambda h: not owned(h))
    hpa = ranked[0] if ranked else None
    return Observed(
        replicas=record.replicas or 0,
        ready=record.status_replicas or 0,
        autoscaler=hpa.name if hpa else None,
        owned_autoscaler=bool(hpa and owned(hpa)),
    )
