"""Informers on a real apiserver: list, watch, resume, 410 re-list, RBAC refusal, CRD paths."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from autozero.runtime.errors import (
    InformerError,
    InformerForbidden,
    InformerNotFound,
    InformerUnavailable,
    NotScalable,
)
from autozero.runtime.informer import REFETCH_MAX, Informer, WatchSettings, WorkloadInformer
from autozero.runtime.informers import InformerKey, InformerSet
from autozero.runtime.resources import ResourceResolver
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from testground.kube import KubeCluster, TcpRelay, create_worker_deployment
from testground.process import wait_for

FAST = WatchSettings(backoff_initial=0.1, backoff_max=0.5)
WAIT = 60.0  # seconds: generous bound for an event to arrive; never a timing assertion

#: A CRD whose replica counts are not at the usual paths: the informer must read its definition.
SIZED_CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: pools.test.autozero.dev}
spec:
  group: test.autozero.dev
  scope: Namespaced
  names: {kind: Pool, plural: pools, singular: pool}
  versions:
    - name: v1
      served: true
      storage: true
      subresources:
        status: {}
        scale:
          specReplicasPath: .spec.size
          statusReplicasPath: .status.running
          labelSelectorPath: .status.selector
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec: {type: object, properties: {size: {type: integer}}}
            status:
              type: object
              properties: {running: {type: integer}, selector: {type: string}}
"""


class Changes:
    """What an informer's on_change reported, and a way to wait for one."""

    def __init__(self) -> None:
        self.seen: list[tuple[Any, Any, float]] = []
        self.errors: list[InformerError | None] = []
        self._cond = threading.Condition()

    def __call__(self, old: Any, new: Any) -> None:
        with self._cond:
            self.seen.append((old, new, time.monotonic()))
            self._cond.notify_all()

    def error(self, error: InformerError | None) -> None:
        with self._cond:
            self.errors.append(error)
            self._cond.notify_all()

    def wait(self, predicate: Any, timeout: float = WAIT) -> tuple[Any, Any, float]:
        """The first change (old, new, when) for which predicate(old, new) holds."""
        with self._cond:
            found = self._cond.wait_for(
                lambda: next((c for c in self.seen if predicate(c[0], c[1])), None), timeout
            )
        assert found is not None, f"no such change in {WAIT}s; seen: {self.seen}"
        return found

    def wait_error(self, kind: type[InformerError], timeout: float = WAIT) -> InformerError:
        with self._cond:
            found = self._cond.wait_for(
                lambda: next((e for e in self.errors if isinstance(e, kind)), None), timeout
            )
        assert found is not None, f"no {kind.__name__} in {timeout}s; errors: {self.errors}"
        return found


def scaled(name: str, replicas: int) -> Any:
    return lambda old, new: new is not None and new.name == name and new.replicas == replicas


def deleted(name: str) -> Any:
    return lambda old, new: new is None and old.name == name


def added(name: str) -> Any:
    return lambda old, new: old is None and new is not None and new.name == name


@pytest.fixture
def namespace(kube: KubeCluster, kube_api: Any) -> str:
    name = f"inf-{uuid.uuid4().hex[:8]}"
    k8s.CoreV1Api(kube_api).create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name)))
    return name


@pytest.fixture
def started() -> Iterator[list[Informer[Any]]]:
    """Informers a test starts, stopped at its end whatever happens."""
    informers: list[Informer[Any]] = []
    yield informers
    for informer in informers:
        assert informer.stop(timeout=20), f"informer for {informer.what} did not stop"


def scale(api: Any, namespace: str, name: str, replicas: int) -> None:
    k8s.AppsV1Api(api).patch_namespaced_deployment_scale(
        name, namespace, {"spec": {"replicas": replicas}}
    )


def deployments(
    api: Any, namespace: str, changes: Changes, started: list[Informer[Any]], **kw: Any
) -> WorkloadInformer:
    informer = WorkloadInformer(
        api,
        "apps/v1",
        "Deployment",
        namespace,
        on_change=changes,
        on_error=changes.error,
        settings=kw.pop("settings", FAST),
    )
    started.append(informer.start())
    assert informer.wait_synced(WAIT), f"not synced: {informer.error}"
    return informer


def test_lists_existing_workloads_then_sees_changes_through_the_watch_alone(
    kube_api: Any, namespace: str, started: list[Informer[Any]]
) -> None:
    for name in ("a", "b"):
        create_worker_deployment(kube_api, namespace, name)
    changes = Changes()
    informer = deployments(kube_api, namespace, changes, started)

    assert sorted((r.name, r.replicas, r.selector) for r in informer.items()) == [
        ("a", 0, "app=a"),
        ("b", 0, "app=b"),
    ]
    assert sorted(new.name for old, new, _ in changes.seen if old is None) == ["a", "b"]
    requests = informer.stats.requests

    sent = time.monotonic()
    scale(kube_api, namespace, "a", 2)  # someone else scales it, through /scale
    old, new, when = changes.wait(scaled("a", 2))
    print(f"scale seen through the watch {1000 * (when - sent):.0f} ms after the patch")
    assert (old.replicas, new.replicas, new.generation) == (0, 2, old.generation + 1)
    cached = informer.get(namespace, "a")  # the controller's status update may follow it
    assert cached is not None
    assert (cached.replicas, cached.generation) == (new.replicas, new.generation)

    k8s.AppsV1Api(kube_api).delete_namespaced_deployment("b", namespace)
    changes.wait(deleted("b"))
    assert informer.get(namespace, "b") is None

    create_worker_deployment(kube_api, namespace, "c")
    changes.wait(added("c"))
    assert informer.get(namespace, "c") is not None
    # Everything after the first list came through the one open watch: no request was sent.
    assert informer.stats.requests == requests
    assert informer.stats.lists == 1
    assert informer.error is None


def test_a_crd_is_read_through_its_scale_subresource_paths(
    kube: KubeCluster, kube_api: Any, namespace: str, started: list[Informer[Any]]
) -> None:
    kube.kubectl_run("apply", "-f", "-", input_text=SIZED_CRD)
    kube.wait_established("pools.test.autozero.dev")
    custom = k8s.CustomObjectsApi(kube_api)
    body = {
        "apiVersion": "test.autozero.dev/v1",
        "kind": "Pool",
        "metadata": {"name": "pool"},
        "spec": {"size": 0},
    }
    custom.create_namespaced_custom_object("test.autozero.dev", "v1", namespace, "pools", body)
    changes = Changes()
    informer = WorkloadInformer(
        kube_api, "test.autozero.dev/v1", "Pool", namespace, on_change=changes, settings=FAST
    )
    started.append(informer.start())
    assert informer.wait_synced(WAIT), informer.error
    assert informer.resource is not None
    assert informer.resource.paths is not None
    assert informer.resource.paths.spec == ".spec.size"  # from the CRD, not a default

    custom.patch_namespaced_custom_object_scale(
        "test.autozero.dev", "v1", namespace, "pools", "pool", {"spec": {"replicas": 3}}
    )
    changes.wait(scaled("pool", 3))
    custom.patch_namespaced_custom_object_status(
        "test.autozero.dev",
        "v1",
        namespace,
        "pools",
        "pool",
        {"status": {"running": 2, "selector": "app=pool"}},
    )
    _, record, _ = changes.wait(lambda old, new: new is not None and new.status_replicas == 2)
    assert (record.replicas, record.status_replicas, record.selector) == (3, 2, "app=pool")


def test_a_core_group_kind_is_listed_and_watched_under_api_v1(
    kube: KubeCluster, kube_api: Any, namespace: str, started: list[Informer[Any]]
) -> None:
    manifest = f"""
apiVersion: v1
kind: ReplicationController
metadata: {{name: rc, namespace: {namespace}}}
spec:
  replicas: 0
  selector: {{app: rc}}
  template:
    metadata: {{labels: {{app: rc}}}}
    spec: {{containers: [{{name: w, image: "w:1"}}]}}
"""
    kube.kubectl_run("apply", "-f", "-", input_text=manifest)
    changes = Changes()
    informer = WorkloadInformer(
        kube_api, "v1", "ReplicationController", namespace, on_change=changes, settings=FAST
    )
    started.append(informer.start())
    assert informer.wait_synced(WAIT), informer.error
    record = informer.get(namespace, "rc")
    assert record is not None
    assert (record.replicas, record.selector) == (0, "app=rc")
    k8s.CoreV1Api(kube_api).patch_namespaced_replication_controller_scale(
        "rc", namespace, {"spec": {"replicas": 2}}
    )
    changes.wait(scaled("rc", 2))


@pytest.mark.parametrize(
    ("api_version", "kind", "error"),
    [
        pytest.param("v1", "ConfigMap", NotScalable, id="no-scale-subresource"),
        pytest.param("apps/v1", "Nope", InformerNotFound, id="kind-not-served"),
        pytest.param("nothere.example/v1", "Worker", InformerNotFound, id="group-not-served"),
    ],
)
def test_a_kind_the_informer_cannot_serve_is_a_typed_error(
    kube_api: Any, api_version: str, kind: str, error: type[InformerError]
) -> None:
    with pytest.raises(error, match=kind):
        ResourceResolver(kube_api).resolve(api_version, kind)


def test_the_watch_survives_an_apiserver_restart(
    kube: KubeCluster, kube_api: Any, namespace: str, started: list[Informer[Any]]
) -> None:
    create_worker_deployment(kube_api, namespace, "a")
    changes = Changes()
    informer = deployments(kube_api, namespace, changes, started)

    kube.restart_apiserver()
    scale(kube_api, namespace, "a", 4)  # made after the restart
    changes.wait(scaled("a", 4))
    assert informer.get(namespace, "a").replicas == 4  # type: ignore[union-attr]
    print(f"after the restart: {informer.stats}")
    assert informer.running


@pytest.fixture
def relay(kube: KubeCluster) -> Iterator[TcpRelay]:
    relay = TcpRelay(kube.port)
    try:
        yield relay
    finally:
        relay.close()


@pytest.fixture
def relayed_api(kube: KubeCluster, relay: TcpRelay, tmp_path: Path) -> Iterator[Any]:
    path = kube.relayed_kubeconfig(relay, tmp_path / "relayed-kubeconfig")
    api = k8s_config.new_client_from_config(config_file=str(path))
    api.configuration.retries = 0
    try:
        yield api
    finally:
        api.close()


def away_while(relay: TcpRelay, changes: Changes, make_changes: Any) -> None:
    """Cut the informer off, wait until it knows, make the changes, and let it back."""
    relay.cut()
    changes.wait_error(InformerUnavailable)
    make_changes()
    relay.restore()


def test_a_dropped_watch_resumes_from_its_resource_version(
    kube_api: Any,
    relayed_api: Any,
    relay: TcpRelay,
    namespace: str,
    started: list[Informer[Any]],
) -> None:
    for name in ("a", "b"):
        create_worker_deployment(kube_api, namespace, name)
    changes = Changes()
    informer = deployments(relayed_api, namespace, changes, started)

    def while_away() -> None:
        scale(kube_api, namespace, "a", 5)
        k8s.AppsV1Api(kube_api).delete_namespaced_deployment("b", namespace)

    away_while(relay, changes, while_away)
    changes.wait(scaled("a", 5))
    changes.wait(deleted("b"))
    wait_for(lambda: informer.error is None, timeout=WAIT)
    assert (informer.stats.lists, informer.stats.gone) == (1, 0)  # resumed: no re-list


def test_410_gone_relists_and_emits_what_changed_while_away(
    kube: KubeCluster,
    kube_api: Any,
    relayed_api: Any,
    relay: TcpRelay,
    namespace: str,
    started: list[Informer[Any]],
) -> None:
    for name in ("a", "b"):
        create_worker_deployment(kube_api, namespace, name)
    changes = Changes()
    informer = deployments(relayed_api, namespace, changes, started)
    assert informer.stats.lists == 1

    def while_away() -> None:
        scale(kube_api, namespace, "a", 3)
        k8s.AppsV1Api(kube_api).delete_namespaced_deployment("b", namespace)
        create_worker_deployment(kube_api, namespace, "c")
        # The informer's resourceVersion is now history: etcd compacts it away, and a restarted
        # apiserver's watch cache starts after it. Resuming from it gets 410 Gone.
        kube.etcd.compact()
        kube.restart_apiserver()

    away_while(relay, changes, while_away)
    changes.wait(scaled("a", 3))
    changes.wait(deleted("b"))  # vanished while away: only a re-list can tell
    changes.wait(added("c"))
    assert informer.stats.gone >= 1
    assert informer.stats.lists >= 2
    assert sorted(r.name for r in informer.items()) == ["a", "c"]


def test_an_informer_without_list_and_watch_reports_forbidden_then_recovers(
    kube: KubeCluster, kube_api: Any, namespace: str, tmp_path: Path, started: list[Informer[Any]]
) -> None:
    k8s.CoreV1Api(kube_api).create_namespaced_service_account(
        namespace, k8s.V1ServiceAccount(metadata=k8s.V1ObjectMeta(name="reader"))
    )
    create_worker_deployment(kube_api, namespace, "a")
    path = kube.service_account_kubeconfig(namespace, "reader", tmp_path / "sa-kubeconfig")
    api = k8s_config.new_client_from_config(config_file=str(path))
    changes = Changes()
    informer = WorkloadInformer(
        api,
        "apps/v1",
        "Deployment",
        namespace,
        on_change=changes,
        on_error=changes.error,
        settings=FAST,
    )
    started.append(informer.start())

    error = changes.wait_error(InformerForbidden)
    assert error.status == 403
    assert f"system:serviceaccount:{namespace}:reader" in error.detail
    assert "cannot list" in error.detail
    assert informer.error is not None
    assert not informer.synced

    grant = f"""
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: watch-deployments, namespace: {namespace}}}
rules: [{{apiGroups: [apps], resources: [deployments], verbs: [list, watch]}}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: watch-deployments, namespace: {namespace}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: watch-deployments}}
subjects: [{{kind: ServiceAccount, name: reader, namespace: {namespace}}}]
"""
    kube.kubectl_run("apply", "-f", "-", input_text=grant)
    assert informer.wait_synced(WAIT)
    assert informer.get(namespace, "a") is not None
    wait_for(lambda: changes.errors[-1] is None, timeout=WAIT)  # recovery is reported too


def test_an_informer_set_shares_cluster_wide_informers_and_stops_unused_ones(
    kube_api: Any, started: list[Informer[Any]]
) -> None:
    spaces = [f"inf-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    core = k8s.CoreV1Api(kube_api)
    for space in spaces:
        core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=space)))
        create_worker_deployment(kube_api, space, "worker")
    seen: list[tuple[InformerKey, Any, Any]] = []
    informers = InformerSet(
        kube_api, cluster_wide=True, settings=FAST, on_change=lambda k, o, n: seen.append((k, o, n))
    )
    try:
        first = informers.acquire_workloads("apps/v1", "Deployment", spaces[0])
        second = informers.acquire_workloads("apps/v1", "Deployment", spaces[1])
        assert first is second  # one cluster-wide informer serves both namespaces
        assert first.wait_synced(WAIT)
        assert {r.namespace for r in first.items()} >= set(spaces)
        assert [(r.namespace, r.name) for r in first.items(spaces[0])] == [(spaces[0], "worker")]
        hpas = informers.acquire_hpas(spaces[0])
        assert hpas.wait_synced(WAIT)

        k8s.AutoscalingV2Api(kube_api).create_namespaced_horizontal_pod_autoscaler(
            spaces[0],
            {
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": "mine"},
                "spec": {
                    "scaleTargetRef": {
                        "apiVersion": "apps/v1",
                        "kind": "Deployment",
                        "name": "worker",
                    },
                    "minReplicas": 1,
                    "maxReplicas": 3,
                },
            },
        )
        wait_for(lambda: hpas.targeting(spaces[0], "apps/v1", "Deployment", "worker"), timeout=WAIT)
        assert hpas.targeting(spaces[1], "apps/v1", "Deployment", "worker") == []
        key = InformerKey("autoscaling/v2", "HorizontalPodAutoscaler", None)
        assert any(k == key and n is not None and n.name == "mine" for k, o, n in seen)

        informers.release_workloads("apps/v1", "Deployment", spaces[0])
        assert first.running  # still used for the other namespace
        informers.release_workloads("apps/v1", "Deployment", spaces[1])
        assert not first.running
        assert informers.workloads("apps/v1", "Deployment", spaces[1]) is None
        assert informers.hpas(spaces[1]) is hpas  # cluster-wide: any namespace finds it
    finally:
        informers.stop()
    assert informers.informers() == {}


def test_a_per_namespace_informer_set_runs_one_informer_per_namespace(kube_api: Any) -> None:
    informers = InformerSet(kube_api, cluster_wide=False, settings=FAST)
    try:
        a = informers.acquire_workloads("apps/v1", "Deployment", "ns-a")
        b = informers.acquire_workloads("apps/v1", "Deployment", "ns-b")
        assert a is not b
        assert (a.namespace, b.namespace) == ("ns-a", "ns-b")
        assert a.wait_synced(WAIT)
        assert b.wait_synced(WAIT)
        assert len(informers.informers()) == 2
    finally:
        informers.stop()
    assert not a.running
    assert not b.running


def test_a_scoped_informer_fetches_one_object_with_a_get_and_many_with_one_list(
    kube_api: Any, namespace: str, started: list[Informer[Any]]
) -> None:
    """A sharded replica taking over a share wants thousands of workloads at once: one LIST of
    the namespace makes them known, not a GET each; the watch goes on after it, unharmed."""
    count = REFETCH_MAX + 20
    for n in range(count):
        create_worker_deployment(kube_api, namespace, f"w-{n}")
    informer = WorkloadInformer(
        kube_api, "apps/v1", "Deployment", namespace, settings=FAST, scoped=True
    )
    started.append(informer.start())
    assert informer.wait_synced(WAIT), f"not synced: {informer.error}"
    assert len(informer) == 0  # nothing wanted: nothing kept
    informer.want(namespace, "w-0")
    assert informer.prime(namespace, "w-0")
    assert informer.stats.gets == 1
    for n in range(1, count):
        informer.want(namespace, f"w-{n}")
    assert all(informer.prime(namespace, f"w-{n}") for n in range(count))
    assert len(informer) == count
    assert informer.stats.gets == 1  # before: one GET per object
    assert informer.stats.lists == 2
    assert informer.stats.errors == 0  # the watch cut for the LIST is no failure
    scale(kube_api, namespace, "w-5", 3)
    wait_for(lambda: (r := informer.get(namespace, "w-5")) is not None and r.replicas == 3)
