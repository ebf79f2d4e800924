"""The operator end to end on the real apiserver: policies in, scale changes, status, Events and
/metrics out."""

from __future__ import annotations

import copy
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from kubernetes import client as k8s
from support.operator import condition, events_of, http_get, scale_of, start_operator, status_of
from testground.gce import compute_client, create_mig, managers
from testground.kube import (
    KubeCluster,
    apply_worker_crd,
    create_secret,
    create_worker_deployment,
    create_worker_deployments,
    create_worker_object,
    worker_object_replicas,
)
from testground.process import free_port, wait_for
from testground.redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def operator(kube: KubeCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`autozero operator` as a process, as admin for now; yields its /metrics URL."""
    kube.kubectl_run("apply", "-f", str(ROOT / "crds" / "scalingpolicies.autozero.dev.yaml"))
    kube.wait_established("scalingpolicies.autozero.dev")
    port = free_port()
    log = (tmp_path_factory.mktemp("operator") / "operator.log").open("w")
    # Only `op-*` namespaces: the HA, GCE and RBAC tests run their own operators elsewhere.
    process = start_operator(
        log,
        ["--kubeconfig", str(kube.kubeconfig), "--metrics-port", str(port), "--namespace", "op-*"],
    )
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        wait_for(lambda: http_get(url) is not None, timeout=30)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


@pytest.fixture
def namespace(kube: KubeCluster, kube_api: Any) -> str:
    name = f"op-{uuid.uuid4().hex[:6]}"
    k8s.CoreV1Api(kube_api).create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name)))
    return name


def deployment(kube_api: Any, namespace: str, name: str = "worker") -> None:
    create_worker_deployment(kube_api, namespace, name)


def secret(kube_api: Any, namespace: str, url: str) -> None:
    create_secret(kube_api, namespace, "queue", {"url": url})


def policy(
    namespace: str, key: str, *, name: str = "queue-workers", zone: str = "UTC"
) -> dict[str, Any]:
    return yaml.safe_load(f"""
apiVersion: autozero.dev/v1alpha1
kind: ScalingPolicy
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  pollingInterval: 1s
  metrics:
    - name: backlog
      redis:
        urlFrom: {{secretKeyRef: {{name: queue, key: url}}}}
        key: {key}
        configureNotifications: true
  groups:
    - name: workers
      target: {{kubernetes: {{apiVersion: apps/v1, kind: Deployment, name: worker}}}}
      capacity: {{minimum: 0, maximum: 4, default: 2}}
      activation: {{metric: backlog, idleFor: 3s}}
      profiles:
        - name: nights
          recurrence: {{timeZone: {zone}, days: [Sun], hours: [3], duration: 1h}}
""")


def test_a_deployment_wakes_on_work_and_sleeps_when_idle(
    operator: str, kube: KubeCluster, kube_api: Any, namespace: str, redis_server: RedisServer
) -> None:
    deployment(kube_api, namespace)
    secret(kube_api, namespace, redis_server.url)
    key = f"jobs:{namespace}"
    queue = redis.Redis.from_url(redis_server.url)
    kube.kubectl_run("apply", "-f", "-", input_text=yaml.safe_dump(policy(namespace, key)))
    asleep = wait_for(lambda: (s := status_of(kube_api, namespace)).get("groups") and s, timeout=30)
    assert condition(asleep, "Active")["status"] == "False"
    assert asleep["groups"][0]["lastDecision"]["reason"] == "Asleep"

    queue.rpush(key, *range(5))
    started = time.monotonic()
    wait_for(lambda: scale_of(kube_api, namespace) == 2, timeout=30)
    woke_in = time.monotonic() - started
    awake = wait_for(
        lambda: (s := status_of(kube_api, namespace))["summary"]["awake"] == 1 and s, timeout=15
    )
    assert condition(awake, "Active")["status"] == "True"
    assert awake["groups"][0]["lastScale"]["to"] == 2
    assert awake["metrics"]["backlog"]["pending"] == 5
    wait_for(lambda: any(r == "Wake" for r, _ in events_of(kube_api, namespace)), timeout=15)
    metrics = http_get(operator) or ""
    assert (
        f'autozero_group_replicas{{group="workers",kind="desired",namespace="{namespace}",'
        f'policy="queue-workers"}} 2.0'
    ) in metrics
    assert woke_in < 10

    queue.delete(key)  # drained
    wait_for(lambda: scale_of(kube_api, namespace) == 0, timeout=30)
    wait_for(  # the status is written just after the scale
        lambda: status_of(kube_api, namespace)["groups"][0]["lastScale"]["to"] == 0, timeout=15
    )
    wait_for(lambda: any(r == "Sleep" for r, _ in events_of(kube_api, namespace)), timeout=15)
    out = kube.kubectl_run("get", "sp", "-n", namespace).stdout.splitlines()
    assert out[1].split()[:3] == ["queue-workers", "1", "0"]


def test_an_unusable_policy_gets_a_condition_and_an_event_and_others_go_on(
    operator: str, kube: KubeCluster, kube_api: Any, namespace: str, redis_server: RedisServer
) -> None:
    deployment(kube_api, namespace)
    secret(kube_api, namespace, redis_server.url)
    bad = policy(namespace, "jobs:bad", name="bad-zone", zone="Europe/Atlantis")
    good = policy(namespace, f"jobs:{namespace}", name="queue-workers")
    kube.kubectl_run("apply", "-f", "-", input_text=yaml.safe_dump_all([bad, good]))
    refused = wait_for(
        lambda: (s := status_of(kube_api, namespace, "bad-zone")).get("conditions") and s,
        timeout=30,
    )
    ready = condition(refused, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "InvalidPolicy")
    assert "unknown time zone 'Europe/Atlantis'" in ready["message"]
    wait_for(
        lambda: any(
            r == "InvalidPolicy" and "Europe/Atlantis" in m
            for r, m in events_of(kube_api, namespace)
        ),
        timeout=15,
    )
    served = wait_for(lambda: (s := status_of(kube_api, namespace)).get("groups") and s, timeout=30)
    assert condition(served, "Ready")["status"] == "True"
    # Fixed in Git and applied again: the same policy is served.
    fixed = policy(namespace, "jobs:bad", name="bad-zone", zone="Europe/Paris")
    kube.kubectl_run("apply", "-f", "-", input_text=yaml.safe_dump(fixed))
    wait_for(
        lambda: condition(status_of(kube_api, namespace, "bad-zone"), "Ready")["status"] == "True",
        timeout=30,
    )


def test_the_operator_never_writes_spec_labels_annotations_or_finalizers(
    operator: str, kube: KubeCluster, kube_api: Any, namespace: str, redis_server: RedisServer
) -> None:
    deployment(kube_api, namespace)
    secret(kube_api, namespace, redis_server.url)
    kube.kubectl_run(
        "apply", "-f", "-", input_text=yaml.safe_dump(policy(namespace, f"jobs:{namespace}"))
    )
    wait_for(lambda: status_of(kube_api, namespace).get("groups"), timeout=30)
    body = k8s.CustomObjectsApi(kube_api).get_namespaced_custom_object(
        "autozero.dev", "v1alpha1", namespace, "scalingpolicies", "queue-workers"
    )
    meta = body["metadata"]
    assert meta.get("finalizers") in (None, [])
    annotations = set(meta.get("annotations") or {})
    assert annotations <= {"kubectl.kubernetes.io/last-applied-configuration"}
    managers = {m["manager"]: m for m in meta["managedFields"]}
    operator_writes = [m for name, m in managers.items() if name != "kubectl-client-side-apply"]
    assert all(m.get("subresource") == "status" for m in operator_writes), operator_writes


def test_a_source_down_while_awake_never_scales_down(
    operator: str, kube: KubeCluster, kube_api: Any, namespace: str, tmp_path: Path
) -> None:
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        deployment(kube_api, namespace)
        secret(kube_api, namespace, server.url)
        key = f"jobs:{namespace}"
        kube.kubectl_run("apply", "-f", "-", input_text=yaml.safe_dump(policy(namespace, key)))
        redis.Redis.from_url(server.url).rpush(key, 1, 2, 3)
        wait_for(lambda: scale_of(kube_api, namespace) == 2, timeout=30)
        server.process.stop()  # Redis goes away while the group is awake
        degraded = wait_for(
            lambda: (
                (s := status_of(kube_api, namespace))
                and condition(s, "Degraded")["status"] == "True"
                and s
            ),
            timeout=20,
        )
        assert condition(degraded, "Degraded")["reason"] == "SourceFailed"
        time.sleep(6)  # twice idleFor: a group that cannot be read must not be put to sleep
        assert scale_of(kube_api, namespace) == 2
        failures = [m for r, m in events_of(kube_api, namespace) if r == "SourceFailed"]
        assert len(failures) == 1, failures  # one Event, not one per cycle
        server.process.start()  # back, and the queue is empty now (no persistence)
        wait_for(lambda: scale_of(kube_api, namespace) == 0, timeout=30)
        wait_for(
            lambda: any(r == "SourceRecovered" for r, _ in events_of(kube_api, namespace)),
            timeout=15,
        )
        healthy = status_of(kube_api, namespace)
        assert condition(healthy, "Degraded")["status"] == "False"
    finally:
        server.stop()


def test_a_missing_workload_is_reported_and_others_go_on(
    operator: str, kube: KubeCluster, kube_api: Any, namespace: str, redis_server: RedisServer
) -> None:
    deployment(kube_api, namespace)
    secret(kube_api, namespace, redis_server.url)
    ghost = policy(namespace, "jobs:ghost", name="ghost-workers")
    ghost["spec"]["groups"][0]["target"]["kubernetes"]["name"] = "ghost"
    good = policy(namespace, f"jobs:{namespace}")
    kube.kubectl_run("apply", "-f", "-", input_text=yaml.safe_dump_all([ghost, good]))
    refused = wait_for(
        lambda: (s := status_of(kube_api, namespace, "ghost-workers")).get("conditions") and s,
        timeout=30,
    )
    ready = condition(refused, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "TargetError")
    assert "Deployment" in ready["message"]
    assert "ghost not found" in ready["message"]
    time.sleep(3)
    target_errors = [m for r, m in events_of(kube_api, namespace) if r == "TargetError"]
    assert len(target_errors) == 1, target_errors
    redis.Redis.from_url(redis_server.url).rpush(f"jobs:{namespace}", 1)
    wait_for(lambda: scale_of(kube_api, namespace) == 2, timeout=30)
    redis.Redis.from_url(redis_server.url).delete(f"jobs:{namespace}")


def test_two_replicas_one_leader_and_a_clean_takeover(
    kube: KubeCluster, kube_api: Any, redis_server: RedisServer, tmp_path: Path
) -> None:
    kube.kubectl_run("apply", "-f", str(ROOT / "crds" / "scalingpolicies.autozero.dev.yaml"))
    kube.wait_established("scalingpolicies.autozero.dev")
    namespace = f"ha-{uuid.uuid4().hex[:6]}"
    k8s.CoreV1Api(kube_api).create_namespace(
        k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=namespace))
    )
    replicas = []
    for n in range(2):
        log = (tmp_path / f"replica-{n}.log").open("w")
        replicas.append(
            start_operator(
                log,
                [
                    "--kubeconfig",
                    str(kube.kubeconfig),
                    "--metrics-port",
                    str(free_port()),
                    "--namespace",
                    namespace,
                    "--leader-elect",
                    "--lease-namespace",
                    namespace,
                    "--lease-seconds",
                    "4",
                    "--renew-seconds",
                    "3",
                    "--retry-seconds",
                    "1",
                ],
            )
        )
    try:
        deployment(kube_api, namespace)
        secret(kube_api, namespace, redis_server.url)
        key = f"jobs:{namespace}"
        kube.kubectl_run("apply", "-f", "-", input_text=yaml.safe_dump(policy(namespace, key)))
        redis.Redis.from_url(redis_server.url).rpush(key, 1, 2)
        wait_for(lambda: scale_of(kube_api, namespace) == 2, timeout=40)
        time.sleep(2)
        wakes = [m for r, m in events_of(kube_api, namespace) if r == "Wake"]
        assert len(wakes) == 1, wakes  # one replica acted

        def holder() -> str:
            lease = k8s.CoordinationV1Api(kube_api).read_namespaced_lease(
                "autozero-leader", namespace
            )
            return str(lease.spec.holder_identity)

        leader_identity = holder()
        leader = next(p for p in replicas if f"-{p.pid}-" in leader_identity)  # HOST-PID-random
        leader.kill()  # SIGKILL: no chance to hand over
        wait_for(lambda: holder() != leader_identity, timeout=30, interval=0.5)
        assert scale_of(kube_api, namespace) == 2  # work still pending: the new leader holds
        redis.Redis.from_url(redis_server.url).delete(key)
        wait_for(lambda: scale_of(kube_api, namespace) == 0, timeout=40)
        sleeps = wait_for(
            lambda: [m for r, m in events_of(kube_api, namespace) if r == "Sleep"], timeout=15
        )
        assert len(sleeps) == 1
    finally:
        for replica in replicas:
            replica.kill()
            replica.wait(timeout=10)


@pytest.fixture(scope="module")
def gce_operator(kube: KubeCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """An emulator and an operator that uses it, serving namespaces `gce-*`."""
    from gce_emulator import EmulatorServer, Settings

    emulator = EmulatorServer(
        settings=Settings(
            operation_seconds=0.1,
            instance_boot_seconds=0.2,
            instance_stop_seconds=0.1,
            autoscaler_period_seconds=0.5,
        )
    ).start()
    kube.kubectl_run("apply", "-f", str(ROOT / "crds" / "scalingpolicies.autozero.dev.yaml"))
    kube.wait_established("scalingpolicies.autozero.dev")
    log = (tmp_path_factory.mktemp("gce-operator") / "operator.log").open("w")
    process = start_operator(
        log,
        [
            "--kubeconfig",
            str(kube.kubeconfig),
            "--metrics-port",
            str(free_port()),
            "--namespace",
            "gce-*",
            "--gce-endpoint",
            emulator.api_endpoint,
            "--gce-allow",
            "gce-*=acme",
        ],
    )
    try:
        yield emulator
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
        emulator.stop()


@pytest.mark.parametrize("scope", ["zone", "region"])
def test_a_mig_wakes_with_autoscaler_handoff_and_sleeps(
    gce_operator: Any, kube: KubeCluster, kube_api: Any, redis_server: RedisServer, scope: str
) -> None:
    emulator = gce_operator
    location = "europe-west1-c" if scope == "zone" else "europe-west1"
    compute = compute_client(emulator.api_endpoint)
    where = {scope: location}
    create_mig(compute, "acme", "bids", **where)
    groups = managers(compute, zone=where.get("zone"))
    namespace = f"gce-{uuid.uuid4().hex[:6]}"
    k8s.CoreV1Api(kube_api).create_namespace(
        k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=namespace))
    )
    secret(kube_api, namespace, redis_server.url)
    manifest = policy(namespace, f"jobs:{namespace}")
    manifest["spec"]["groups"][0]["target"] = {
        "gce": {"project": "acme", scope: location, "instanceGroupManager": "bids"}
    }
    manifest["spec"]["groups"][0]["handoff"] = {
        "gceAutoscaler": {
            "minReplicas": 1,
            "maxReplicas": 4,
            "coolDownPeriod": "60s",
            "cpuUtilizationTarget": 0.8,
        }
    }
    kube.kubectl_run("apply", "-f", "-", input_text=yaml.safe_dump(manifest))

    def group() -> dict[str, Any]:
        return dict(groups.get(project="acme", instanceGroupManager="bids", **where).execute())

    redis.Redis.from_url(redis_server.url).rpush(f"jobs:{namespace}", 1)
    awake = wait_for(lambda: (g := group()).get("status", {}).get("autoscaler") and g, timeout=30)
    assert awake["targetSize"] >= 1
    wait_for(lambda: any(r == "Wake" for r, _ in events_of(kube_api, namespace)), timeout=15)
    redis.Redis.from_url(redis_server.url).delete(f"jobs:{namespace}")
    asleep = wait_for(lambda: (g := group())["targetSize"] == 0 and g, timeout=30)
    assert "autoscaler" not in asleep.get("status", {})  # no orphan autoscaler at zero
    sleeps = wait_for(
        lambda: [m for r, m in events_of(kube_api, namespace) if r == "Sleep"], timeout=15
    )
    assert "delete autoscaler autozero-bids" in sleeps[0]


def test_the_operator_resumes_after_an_apiserver_restart(
    operator: str, kube: KubeCluster, kube_api: Any, namespace: str, redis_server: RedisServer
) -> None:
    deployment(kube_api, namespace)
    secret(kube_api, namespace, redis_server.url)
    key = f"jobs:{namespace}"
    kube.kubectl_run("apply", "-f", "-", input_text=yaml.safe_dump(policy(namespace, key)))
    wait_for(lambda: status_of(kube_api, namespace).get("groups"), timeout=30)
    kube.restart_apiserver()
    redis.Redis.from_url(redis_server.url).rpush(key, 1)
    wait_for(lambda: scale_of(kube_api, namespace) == 2, timeout=60)
    redis.Redis.from_url(redis_server.url).delete(key)
    wait_for(lambda: scale_of(kube_api, namespace) == 0, timeout=60)


def test_the_operator_works_under_the_charts_service_account(
    kube: KubeCluster, kube_api: Any, redis_server: RedisServer, tmp_path: Path
) -> None:
    """Not as admin: the chart's ServiceAccount with the chart's ClusterRole, RBAC enforced."""
    kube.kubectl_run("apply", "-f", str(ROOT / "crds" / "scalingpolicies.autozero.dev.yaml"))
    kube.wait_established("scalingpolicies.autozero.dev")
    kube.kubectl_run("create", "namespace", "autozero-rbac", check=False)
    rendered = subprocess.run(
        [
            str(kube.helm),
            "template",
            "rbac",
            str(ROOT / "charts" / "autozero"),
            "--namespace",
            "autozero-rbac",
            "--set",
            "watchNamespaces={rb-*}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    kube.kubectl_run("apply", "-f", "-", input_text=rendered)
    config = kube.service_account_kubeconfig(
        "autozero-rbac", "autozero", tmp_path / "sa.kubeconfig"
    )
    log = (tmp_path / "operator.log").open("w")
    process = start_operator(
        log,
        ["--kubeconfig", str(config), "--metrics-port", str(free_port()), "--namespace", "rb-*"],
    )
    try:
        namespace = f"rb-{uuid.uuid4().hex[:6]}"
        k8s.CoreV1Api(kube_api).create_namespace(
            k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=namespace))
        )
        deployment(kube_api, namespace)
        secret(kube_api, namespace, redis_server.url)
        key = f"jobs:{namespace}"
        kube.kubectl_run("apply", "-f", "-", input_text=yaml.safe_dump(policy(namespace, key)))
        redis.Redis.from_url(redis_server.url).rpush(key, 1)
        wait_for(lambda: scale_of(kube_api, namespace) == 2, timeout=40)
        wait_for(lambda: any(r == "Wake" for r, _ in events_of(kube_api, namespace)), timeout=15)
        redis.Redis.from_url(redis_server.url).delete(key)
        wait_for(lambda: scale_of(kube_api, namespace) == 0, timeout=40)
        # The status is written just after the scale: wait for it rather than race it.
        wait_for(
            lambda: status_of(kube_api, namespace)["groups"][0]["lastScale"]["to"] == 0,
            timeout=15,
        )
        denied = kube.kubectl_run(
            "auth",
            "can-i",
            "delete",
            "deployments",
            "-n",
            namespace,
            kubeconfig=config,
            check=False,
        )
        assert denied.stdout.strip() == "no"
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def apply_policy(kube: KubeCluster, manifest: dict[str, Any]) -> None:
    kube.kubectl_run("apply", "-f", "-", input_text=yaml.safe_dump(manifest))


@pytest.mark.parametrize("mode", ["annotation-paused", "dry-run"])
def test_paused_and_dry_run_decide_but_never_scale(
    operator: str,
    kube: KubeCluster,
    kube_api: Any,
    namespace: str,
    redis_server: RedisServer,
    mode: str,
) -> None:
    deployment(kube_api, namespace)
    secret(kube_api, namespace, redis_server.url)
    key = f"jobs:{namespace}"
    manifest = policy(namespace, key)
    if mode == "dry-run":
        manifest["spec"]["dryRun"] = True
    else:
        manifest["metadata"]["annotations"] = {"autozero.dev/paused": "true"}
    redis.Redis.from_url(redis_server.url).rpush(key, 1)
    apply_policy(kube, manifest)
    decided = wait_for(
        lambda: (
            (s := status_of(kube_api, namespace)).get("groups")
            and s["groups"][0]["lastDecision"]["action"] == "Wake"
            and s
        ),
        timeout=30,
    )
    assert condition(decided, "Paused")["status"] == "True"
    wait_for(lambda: any(r == "WouldWake" for r, _ in events_of(kube_api, namespace)), timeout=15)
    time.sleep(2)
    assert scale_of(kube_api, namespace) == 0
    redis.Redis.from_url(redis_server.url).delete(key)


def test_a_statefulset_and_a_scale_crd_are_driven_too(
    operator: str, kube: KubeCluster, kube_api: Any, namespace: str, redis_server: RedisServer
) -> None:
    kube.kubectl_run(
        "apply",
        "-f",
        "-",
        input_text=yaml.safe_dump(
            {
                "apiVersion": "apps/v1",
                "kind": "StatefulSet",
                "metadata": {"name": "shards", "namespace": namespace},
                "spec": {
                    "replicas": 0,
                    "serviceName": "shards",
                    "selector": {"matchLabels": {"app": "shards"}},
                    "template": {
                        "metadata": {"labels": {"app": "shards"}},
                        "spec": {"containers": [{"name": "s", "image": "s:1"}]},
                    },
                },
            }
        ),
    )
    secret(kube_api, namespace, redis_server.url)
    key = f"jobs:{namespace}"
    apply_worker_crd(kube)
    create_worker_object(kube, namespace)
    manifest = policy(namespace, key)
    shards = manifest["spec"]["groups"][0]
    shards["target"]["kubernetes"] = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "name": "shards",
    }
    crd = copy.deepcopy(shards) | {"name": "crd"}
    crd["target"]["kubernetes"] = {
        "apiVersion": "test.autozero.dev/v1",
        "kind": "Worker",
        "name": "worker",
    }
    manifest["spec"]["groups"].append(crd)
    apply_policy(kube, manifest)
    redis.Redis.from_url(redis_server.url).rpush(key, 1)

    def replicas() -> tuple[int, int]:
        scale = k8s.AppsV1Api(kube_api).read_namespaced_stateful_set_scale("shards", namespace)
        return int(scale.spec.replicas or 0), worker_object_replicas(kube_api, namespace)

    wait_for(lambda: replicas() == (2, 2), timeout=30)
    redis.Redis.from_url(redis_server.url).delete(key)
    wait_for(lambda: replicas() == (0, 0), timeout=30)


def test_a_half_done_hpa_handoff_is_finished_and_no_hpa_is_left_at_zero(
    operator: str, kube: KubeCluster, kube_api: Any, namespace: str, redis_server: RedisServer
) -> None:
    """As after a SIGKILL between "scale up" and "create the HPA": the operator finishes it."""
    deployment(kube_api, namespace)
    k8s.AppsV1Api(kube_api).patch_namespaced_deployment_scale(
        "worker", namespace, {"spec": {"replicas": 2}}
    )
    secret(kube_api, namespace, redis_server.url)
    key = f"jobs:{namespace}"
    redis.Redis.from_url(redis_server.url).rpush(key, 1)
    manifest = policy(namespace, key)
    manifest["spec"]["groups"][0]["handoff"] = {"hpa": {"minReplicas": 1, "maxReplicas": 3}}
    apply_policy(kube, manifest)
    autoscaling = k8s.AutoscalingV2Api(kube_api)

    def hpas() -> list[str]:
        return [
            h.metadata.name
            for h in autoscaling.list_namespaced_horizontal_pod_autoscaler(namespace).items
        ]

    assert wait_for(lambda: hpas() == ["autozero-worker"], timeout=30)
    redis.Redis.from_url(redis_server.url).delete(key)
    wait_for(lambda: scale_of(kube_api, namespace) == 0, timeout=40)
    assert hpas() == []


def test_a_leader_cut_off_from_the_apiserver_stops_acting(
    kube: KubeCluster, kube_api: Any, tmp_path: Path
) -> None:
    """A refused connection must not end the campaign quietly (the client's lease lock only
    handles API errors): the leader cannot renew, so it exits before its lease runs out."""
    from testground.kube import TcpRelay

    kube.kubectl_run("apply", "-f", str(ROOT / "crds" / "scalingpolicies.autozero.dev.yaml"))
    namespace = f"cut-{uuid.uuid4().hex[:6]}"
    k8s.CoreV1Api(kube_api).create_namespace(
        k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=namespace))
    )
    relay = TcpRelay(int(kube.server.rsplit(":", 1)[1]))
    kubeconfig = kube.relayed_kubeconfig(relay, tmp_path / "relayed.kubeconfig")
    log_path = tmp_path / "leader.log"
    with log_path.open("w") as log:
        leader = start_operator(
            log,
            [
                "--kubeconfig",
                str(kubeconfig),
                "--metrics-port",
                str(free_port()),
                "--namespace",
                namespace,
                "--leader-elect",
                "--lease-namespace",
                namespace,
                "--lease-seconds",
                "6",
                "--renew-seconds",
                "4",
                "--retry-seconds",
                "1",
            ],
        )
        try:

            def holder() -> str | None:
                try:
                    lease = k8s.CoordinationV1Api(kube_api).read_namespaced_lease(
                        "autozero-leader", namespace
                    )
                except k8s.ApiException:
                    return None
                return str(lease.spec.holder_identity)

            wait_for(lambda: f"-{leader.pid}-" in (holder() or ""), timeout=30)
            relay.cut()
            code = leader.wait(timeout=30)  # before the fix: renewing died, the process lived on
        finally:
            if leader.poll() is None:
                leader.kill()
                leader.wait(timeout=10)
            relay.close()
    assert code == 1
    assert "lost the leader lease" in log_path.read_text()


WITHOUT_WATCH = """
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: NAME}
rules:
  - {apiGroups: [autozero.dev], resources: [scalingpolicies], verbs: [get, list, watch]}
  - {apiGroups: [autozero.dev], resources: [scalingpolicies/status], verbs: [patch]}
  - {apiGroups: [""], resources: [namespaces], verbs: [list, watch]}
  - apiGroups: [apiextensions.k8s.io]
    resources: [customresourcedefinitions]
    verbs: [list, watch]
  - {apiGroups: [""], resources: [secrets], verbs: [get]}
  - {apiGroups: [""], resources: [events], verbs: [create]}
  - {apiGroups: [autoscaling], resources: [horizontalpodautoscalers], verbs: [list, create, delete]}
  - {apiGroups: [apps], resources: [deployments/scale], verbs: [get, patch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: NAME}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: NAME}
subjects: [{kind: ServiceAccount, name: nowatch, namespace: NAMESPACE}]
"""


def test_without_watch_rights_groups_are_served_with_gets_and_the_status_says_so(
    kube: KubeCluster, kube_api: Any, redis_server: RedisServer, tmp_path: Path
) -> None:
    """The RBAC of an older chart (no list/watch on workloads and HPAs): nothing stalls; each
    decision reads the group's /scale instead, and Degraded says why."""
    kube.kubectl_run("apply", "-f", str(ROOT / "crds" / "scalingpolicies.autozero.dev.yaml"))
    kube.wait_established("scalingpolicies.autozero.dev")
    namespace = f"nowatch-{uuid.uuid4().hex[:6]}"
    core = k8s.CoreV1Api(kube_api)
    core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=namespace)))
    core.create_namespaced_service_account(
        namespace, k8s.V1ServiceAccount(metadata=k8s.V1ObjectMeta(name="nowatch"))
    )
    rbac = WITHOUT_WATCH.replace("NAMESPACE", namespace).replace("NAME", namespace)
    kube.kubectl_run("apply", "-f", "-", input_text=rbac)
    config = kube.service_account_kubeconfig(namespace, "nowatch", tmp_path / "nowatch")
    deployment(kube_api, namespace)
    secret(kube_api, namespace, redis_server.url)
    key = f"jobs:{namespace}"
    with (tmp_path / "operator.log").open("w") as log:
        process = start_operator(
            log,
            [
                *("--kubeconfig", str(config), "--namespace", namespace),
                *("--metrics-port", str(free_port())),
            ],
        )
        try:
            kube.kubectl_run("apply", "-f", "-", input_text=yaml.safe_dump(policy(namespace, key)))
            redis.Redis.from_url(redis_server.url).rpush(key, 1, 2, 3)
            wait_for(lambda: scale_of(kube_api, namespace) == 2, timeout=30)

            def watch_refused() -> dict[str, Any] | None:
                """The Degraded condition once it says WatchRefused (the first status may be
                written before the refused watch is known, and has no Degraded yet)."""
                status = status_of(kube_api, namespace)
                found = [c for c in status.get("conditions", []) if c["type"] == "Degraded"]
                return found[0] if found and found[0]["reason"] == "WatchRefused" else None

            degraded = wait_for(watch_refused, timeout=30)
            assert "observed with a GET" in degraded["message"]
            assert "forbidden" in degraded["message"].lower()
        finally:
            process.terminate()
            process.wait(timeout=30)
            redis.Redis.from_url(redis_server.url).delete(key)


def test_a_policy_served_by_an_older_crd_says_which_fields_it_lost(
    kube: KubeCluster, kube_api: Any, redis_server: RedisServer, tmp_path: Path
) -> None:
    """A CRD older than the operator (applied by hand, or crds.install=false) drops the fields it
    does not know from every policy: the policy's status says which, and which of its own."""
    current = ROOT / "crds" / "scalingpolicies.autozero.dev.yaml"
    older = yaml.safe_load(current.read_text())
    spec = older["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    del spec["properties"]["dryRun"]
    namespace = f"drift-{uuid.uuid4().hex[:6]}"
    k8s.CoreV1Api(kube_api).create_namespace(
        k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=namespace))
    )
    deployment(kube_api, namespace)
    secret(kube_api, namespace, redis_server.url)
    manifest = policy(namespace, f"jobs:{namespace}")
    manifest["spec"]["dryRun"] = True
    kube.kubectl_run("apply", "-f", "-", input_text=yaml.safe_dump(older))
    kube.wait_established("scalingpolicies.autozero.dev")
    try:
        # Without kubectl's own strict check, as a GitOps tool would send it.
        kube.kubectl_run(
            "apply", "--validate=false", "-f", "-", input_text=yaml.safe_dump(manifest)
        )
        with (tmp_path / "operator.log").open("w") as log:
            process = start_operator(
                log,
                [
                    *("--kubeconfig", str(kube.kubeconfig), "--namespace", namespace),
                    *("--metrics-port", str(free_port())),
                ],
            )
            try:

                def crd_condition() -> dict[str, Any] | None:
                    conditions = status_of(kube_api, namespace).get("conditions", [])
                    found = [c for c in conditions if c["type"] == "CRDCurrent"]
                    return found[0] if found and found[0]["status"] == "False" else None

                outdated = wait_for(crd_condition, timeout=30)
            finally:
                process.terminate()
                process.wait(timeout=30)
    finally:
        kube.kubectl_run("apply", "-f", str(current))
    assert outdated["reason"] == "CRDOutdated"
    assert "lacks spec.dryRun" in outdated["message"]
    assert "dropped from this policy: spec.dryRun" in outdated["message"]


def test_many_policies_at_once_need_no_connection_beyond_the_pool(
    kube: KubeCluster, kube_api: Any, redis_server: RedisServer, tmp_path: Path
) -> None:
    """Every executor thread may call the apiserver at once (status, Events, access reviews):
    a pool smaller than the threads discards connections and logs a warning for each."""
    kube.kubectl_run("apply", "-f", str(ROOT / "crds" / "scalingpolicies.autozero.dev.yaml"))
    kube.wait_established("scalingpolicies.autozero.dev")
    namespace = f"pool-{uuid.uuid4().hex[:6]}"
    k8s.CoreV1Api(kube_api).create_namespace(
        k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=namespace))
    )
    secret(kube_api, namespace, redis_server.url)
    names = [f"w{n}" for n in range(60)]
    create_worker_deployments(kube_api, namespace, names)
    manifests = []
    for name in names:
        manifest = policy(namespace, f"jobs:{namespace}:{name}", name=name)
        manifest["spec"]["groups"][0]["target"]["kubernetes"]["name"] = name
        manifests.append(manifest)
    log_path = tmp_path / "operator.log"
    with log_path.open("w") as log:
        process = start_operator(
            log, ["--kubeconfig", str(kube.kubeconfig), "--namespace", namespace]
        )
        try:
            kube.kubectl_run("apply", "-f", "-", input_text=yaml.safe_dump_all(manifests))
            wait_for(
                lambda: all(status_of(kube_api, namespace, name).get("groups") for name in names),
                timeout=120,
                interval=1,
            )
        finally:
            process.terminate()
            process.wait(timeout=30)
    served = log_path.read_text()
    assert "Traceback" not in served
    assert "Connection pool is full" not in served
