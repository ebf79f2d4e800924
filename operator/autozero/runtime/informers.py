"""The informers the served policies need, created when a policy names a kind and stopped when
no policy does any more (reference counted).

Scope is a parameter: an operator serving every namespace runs one cluster-wide informer per
workload kind and one for HPAs (fewer connections, one watch each); an operator confined to a
list of namespaces runs one per (kind, namespace), since its RBAC may not allow a cluster-wide
list. Either way a lookup names the namespace, and the caller never needs to know which it is.

Each informer gets its own ApiClient (sharing the configuration and credentials): a watch holds
its connection for minutes, and a shared pool would churn connections once watches outnumber it.

How a runtime uses it: acquire a workload informer and the HPA informer for each Kubernetes group
a served policy names (release them when the policy goes); observe a group from
`workloads(...).get(namespace, name)` and `hpas(namespace).targeting(...)`, while the informer is
`synced` and its `error` is None or `transient` (a refusal, `InformerForbidden`, or a kind the
informer cannot read, `ReplicaPathsUnknown`, calls for a condition and one `/scale` GET per
group instead); write through `/scale` as before; and evaluate the group an `on_change` names.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from autozero.runtime.errors import InformerError
from autozero.runtime.informer import HPAInformer, Informer, WatchSettings, WorkloadInformer
from autozero.runtime.records import HPARecord, WorkloadRecord
from autozero.runtime.resources import HPA, ResourceResolver

AnyInformer = TypeVar("AnyInformer", bound=Informer[Any])


@dataclass(frozen=True, slots=True)
class InformerKey:
    """Which informer: a kind, and its namespace (None: all namespaces)."""

    api_version: str
    kind: str
    namespace: str | None


#: on_change(key, old, new): a record of `key`'s informer changed (new None: deleted).
ChangeCallback = Callable[
    [InformerKey, WorkloadRecord | HPARecord | None, WorkloadRecord | HPARecord | None], None
]
#: on_error(key, error): the informer failed (error) or recovered (None).
ErrorCallback = Callable[[InformerKey, InformerError | None], None]


class InformerSet:
    """Reference-counted informers: `acquire_*` starts one if needed, `release_*` stops it with
    its last user. Callbacks run on the informer's thread; keep them short (queue work)."""

    def __init__(
        self,
        api_client: Any,
        *,
        cluster_wide: bool,
        on_change: ChangeCallback | None = None,
        on_error: ErrorCallback | None = None,
        settings: WatchSettings | None = None,
        client_factory: Callable[[], Any] | None = None,
        scoped: bool = False,
    ) -> None:
        self.api_client = api_client
        self.cluster_wide = cluster_wide
        self.scoped = scoped  # workload informers keep only the objects wanted of them
        self.on_change = on_change
        self.on_error = on_error
        self.settings = settings or WatchSettings()
        self.resolver = ResourceResolver(api_client)
        self._client_factory = client_factory or self._new_client
        self._lock = threading.Lock()
        self._informers: dict[InformerKey, Informer[Any]] = {}
        self._users: dict[InformerKey, int] = {}
        self._clients: dict[InformerKey, Any] = {}

    def _new_client(self) -> Any:
        from kubernetes import client

        return client.ApiClient(configuration=self.api_client.configuration)

    def key(self, api_version: str, kind: str, namespace: str) -> InformerKey:
        """The informer that serves `kind` in `namespace` under this set's scope."""
        return InformerKey(api_version, kind, None if self.cluster_wide else namespace)

    # -- workloads -------------------------------------------------------------------------

    def acquire_workloads(self, api_version: str, kind: str, namespace: str) -> WorkloadInformer:
        """The (started) informer of `kind` serving `namespace`; one more user of it."""
        key = self.key(api_version, kind, namespace)

        def create(client: Any) -> WorkloadInformer:
            return WorkloadInformer(
                client,
                api_version,
                kind,
                key.namespace,
                resolver=self.resolver,
                on_change=self._changed(key),
                on_error=self._failed(key),
                settings=self.settings,
                scoped=self.scoped,
            )

        return self._acquire(key, create, WorkloadInformer)

    def release_workloads(self, api_version: str, kind: str, namespace: str) -> None:
        self._release(self.key(api_version, kind, namespace))

    def workloads(self, api_version: str, kind: str, namespace: str) -> WorkloadInformer | None:
        """The running informer serving `kind` in `namespace`, if some user acquired it."""
        return self._find(self.key(api_version, kind, namespace), WorkloadInformer)

    # -- HPAs ------------------------------------------------------------------------------

    def acquire_hpas(self, namespace: str) -> HPAInformer:
        key = self.key(HPA.api_version, HPA.kind, namespace)

        def create(client: Any) -> HPAInformer:
            return HPAInformer(
                client,
                key.namespace,
                on_change=self._changed(key),
                on_error=self._failed(key),
                settings=self.settings,
            )

        return self._acquire(key, create, HPAInformer)

    def release_hpas(self, namespace: str) -> None:
        self._release(self.key(HPA.api_version, HPA.kind, namespace))

    def hpas(self, namespace: str) -> HPAInformer | None:
        return self._find(self.key(HPA.api_version, HPA.kind, namespace), HPAInformer)

    # -- all -------------------------------------------------------------------------------

    def informers(self) -> dict[InformerKey, Informer[Any]]:
        with self._lock:
            return dict(self._informers)

    def counts(self) -> dict[str, int]:
        """Objects held in cache, by kind (summed over namespaces): `autozero_informer_objects`."""
        out: dict[str, int] = {}
        for key, informer in self.informers().items():
            out[key.kind] = out.get(key.kind, 0) + len(informer)
        return out

    def users(self, key: InformerKey) -> int:
        with self._lock:
            return self._users.get(key, 0)

    def stop(self) -> None:
        """Stop every informer, whoever still holds it."""
        with self._lock:
            keys = list(self._informers)
        for key in keys:
            self._release(key, force=True)

    def _acquire(
        self, key: InformerKey, create: Callable[[Any], AnyInformer], kind: type[AnyInformer]
    ) -> AnyInformer:
        with self._lock:
            found = self._informers.get(key)
            if found is None:
                client = self._client_factory()
                found = create(client)
                self._informers[key], self._clients[key] = found, client
                found.start()
            self._users[key] = self._users.get(key, 0) + 1
        assert isinstance(found, kind)
        return found

    def _release(self, key: InformerKey, *, force: bool = False) -> None:
        with self._lock:
            if key not in self._informers:
                return
            self._users[key] -= 1
            if self._users[key] > 0 and not force:
                return
            informer = self._informers.pop(key)
            client = self._clients.pop(key)
            del self._users[key]
        informer.stop()  # outside the lock: a callback on its thread may be waiting for it
        if client is not self.api_client:
            client.close()

    def _find(self, key: InformerKey, kind: type[AnyInformer]) -> AnyInformer | None:
        with self._lock:
            found = self._informers.get(key)
        return found if isinstance(found, kind) else None

    def _changed(self, key: InformerKey) -> Callable[[Any, Any], None]:
        def changed(old: Any, new: Any) -> None:
            if self.on_change is not None:
                self.on_change(key, old, new)

        return changed

    def _failed(self, key: InformerKey) -> Callable[[InformerError | None], None]:
        def failed(error: InformerError | None) -> None:
            if self.on_error is not None:
                self.on_error(key, error)

        return failed
