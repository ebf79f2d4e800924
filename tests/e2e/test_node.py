"""The operator and its workers as real Pods on a real node, installed the way a user would.

One node for the module (containerd, a kubelet and kube-scheduler on loopback, testground.node);
the operator's image is built from the project's Dockerfile, the workers' from an RQ image, both
imported into containerd (testground.images). The chart runs with its defaults except the image
and the loopback settings (hostNetwork, /healthz on 127.0.0.1, the apiserver through
KUBERNETES_SERVICE_HOST/PORT). The tests run in order, each on what the one before left: install,
a queue drained by real Pods, an upgrade, a deleted operator Pod, SIGTERM, uninstall, a CRD
upgrade; the last one stops the node and checks that the host is as it was.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import rq
import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes import watch as k8s_watch
from support.operator import http_get
from testground.host import host_state
from testground.images import build_all
from testground.kube import KubeCluster, start_cluster
from testground.node import Node, loopback_chart_values, start_node
from testground.process import free_port, wait_for
from testground.redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "autozero"
RELEASE, NS, WORK = "az", "autozero", "work"
QUEUE = "node-e2e"
GRACE = 30  # the chart's default terminationGracePeriodSeconds


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeCluster]:
    """A control plane of its own: these tests replace the CRD, which others rely on."""
    kube = start_cluster(tmp_path_factory.mktemp("node-kube"), with_nodes=True)
    try:
        yield kube
    finally:
        kube.stop()


@pytest.fixture(scope="module")
def node(cluster: KubeCluster) -> Iterator[Node]:
    started = start_node(cluster, build_all())  # in a directory of its own, removed at its stop
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def api(cluster: KubeCluster) -> Iterator[Any]:
    client = k8s_config.new_client_from_config(config_file=str(cluster.kubeconfig))
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="module")
def ports() -> dict[str, int]:
    """The operator's ports on the node (hostNetwork): free ones, not the chart's 8080/8081."""
    return {"metrics": free_port(), "health": free_port()}


def helm(cluster: KubeCluster, *args: str) -> str:
    result = subprocess.run(
        [str(cluster.helm), f"--kubeconfig={cluster.kubeconfig}", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        pods = cluster.kubectl_run("get", "pods", "-A", "-o", "wide", check=False).stdout
        events = cluster.kubectl_run("get", "events", "-n", NS, check=False).stdout
        raise AssertionError(
            f"helm {' '.join(args)}:\n{result.stdout}\n{result.stderr}\n{pods}\n{events[-3000:]}"
        )
    return result.stdout


def node_values(node: Node, ports: dict[str, int]) -> list[str]:
    """The chart's defaults except the image and the loopback settings."""
    return loopback_chart_values(node, metrics_port=ports["metrics"], health_port=ports["health"])


def operator_pods(api: Any) -> list[Any]:
    pods = k8s.CoreV1Api(api).list_namespaced_pod(
        NS, label_selector="app.kubernetes.io/name=autozero"
    )
    return [p for p in pods.items if p.metadata.deletion_timestamp is None]


def ready_operator(api: Any, node: Node, not_named: str = "") -> Any:
    """The one operator Pod, Ready through its probes, other than `not_named`."""

    def ready() -> Any:
        pods = [p for p in operator_pods(api) if p.metadata.name != not_named]
        for pod in pods:
            conditions = {c.type: c.status for c in pod.status.conditions or []}
            if conditions.get("Ready") == "True":
                return pod
        return None

    try:
        return wait_for(ready, timeout=120, interval=0.5)
    except AssertionError:
        raise AssertionError(node.pod_log(NS, f"{RELEASE}-autozero")[-4000:]) from None


def worker_deployment(node: Node, redis_url: str) -> dict[str, Any]:
    labels = {"app": "rq-worker"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "rq-worker", "namespace": WORK},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "hostNetwork": True,
                    "terminationGracePeriodSeconds": GRACE,
                    "containers": [
                        {
                            "name": "worker",
                            "image": node.images.worker.ref,
                            "imagePullPolicy": "Never",
                            "args": ["--url", redis_url, "--name", "$(POD_NAME)", QUEUE],
                            "env": [
                                {
                                    "name": "POD_NAME",
                                    "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
                                }
                            ],
                        }
                    ],
                },
            },
        },
    }


def worker_policy(redis_url: str) -> dict[str, Any]:
    rule = {"metric": "jobs", "perInstance": True, "timeGrain": "1s", "timeWindow": "2s"}
    return {
        "apiVersion": "autozero.dev/v1alpha1",
        "kind": "ScalingPolicy",
        "metadata": {"name": "rq-workers", "namespace": WORK},
        "spec": {
            "pollingInterval": "1s",
            "metrics": [{"name": "jobs", "rq": {"url": redis_url, "queue": QUEUE}}],
            "groups": [
                {
                    "name": "workers",
                    "target": {
                        "kubernetes": {
                            "apiVersion": "apps/v1",
                            "kind": "Deployment",
                            "name": "rq-worker",
                        }
                    },
                    "capacity": {"minimum": 0, "maximum": 3, "default": 1},
                    "activation": {"metric": "jobs", "idleFor": "4s"},
                    "profiles": [
                        {
                            "name": "default",
                            "rules": [
                                {
                                    **rule,
                                    "operator": "GreaterThan",
                                    "threshold": 3,
                                    "timeAggregation": "Last",
                                    "action": {
                                        "direction": "Increase",
                                        "value": 2,
                                        "cooldown": "2s",
                                    },
                                },
                                {
                                    **rule,
                                    "operator": "LessThan",
                                    "threshold": 1,
                                    "action": {
                                        "direction": "Decrease",
                                        "value": 1,
                                        "cooldown": "2s",
                                    },
                                },
                            ],
                        }
                    ],
                }
            ],
        },
    }


class Jobs:
    """RQ jobs enqueued by the test and what the worker Pods recorded of each run."""

    def __init__(self, url: str) -> None:
        self.store = redis.Redis.from_url(url)
        self.queue = rq.Queue(QUEUE, connection=self.store)
        self.tokens: list[str] = []

    def enqueue(self, count: int, seconds: float, prefix: str) -> None:
        for n in range(count):
            token = f"{prefix}-{n}"
            self.queue.enqueue("node_jobs.work", seconds, token, job_id=token)
            self.tokens.append(token)

    def runs(self, key: str) -> dict[str, int]:
        raw = self.store.hgetall(f"node-e2e:{key}")
        return {k.decode(): int(v) for k, v in raw.items()}

    def all_finished(self) -> bool:
        return set(self.runs("finished")) >= set(self.tokens)

    def assert_each_ran_once_to_the_end(self) -> None:
        started, finished = self.runs("started"), self.runs("finished")
        assert set(finished) == set(self.tokens), "a job was lost"
        assert all(started[t] == 1 for t in self.tokens), f"a job ran twice: {started}"
        assert started == finished, "a job was interrupted (started, never finished)"
        failed = rq.registry.FailedJobRegistry(QUEUE, connection=self.store)
        assert failed.get_job_ids() == []


@pytest.fixture(scope="module")
def jobs(redis_server: RedisServer) -> Jobs:
    return Jobs(redis_server.url)


def deployment_replicas(api: Any) -> int:
    scale = k8s.AppsV1Api(api).read_namespaced_deployment_scale("rq-worker", WORK)
    return int(scale.spec.replicas or 0)


def worker_pods(api: Any) -> list[str]:
    pods = k8s.CoreV1Api(api).list_namespaced_pod(WORK, label_selector="app=rq-worker").items
    return [p.metadata.name for p in pods]


def group_status(api: Any) -> dict[str, Any]:
    body = k8s.CustomObjectsApi(api).get_namespaced_custom_object(
        "autozero.dev", "v1alpha1", WORK, "scalingpolicies", "rq-workers"
    )
    groups = (body.get("status") or {}).get("groups") or [{}]
    return dict(groups[0])


def drained(api: Any, jobs: Jobs) -> bool:
    return jobs.all_finished() and deployment_replicas(api) == 0 and worker_pods(api) == []


# --- 1. helm install ----------------------------------------------------------------------------


def test_helm_install_runs_the_operator_ready_through_its_probes_with_its_lease_and_metrics(
    node: Node, api: Any, ports: dict[str, int]
) -> None:
    helm(
        node.cluster,
        "install",
        RELEASE,
        str(CHART),
        f"--namespace={NS}",
        "--create-namespace",
        "--wait",
        "--timeout=180s",
        *node_values(node, ports),
    )
    pod = ready_operator(api, node)
    assert pod.spec.node_name == "autozero-node"
    assert pod.spec.containers[0].image == node.images.operator.ref
    leases = k8s.CoordinationV1Api(api)
    holder = wait_for(
        lambda: leases.read_namespaced_lease("autozero-leader", NS).spec.holder_identity,
        timeout=60,
    )
    # The identity is the Pod's name (POD_NAME): with hostNetwork, host name and PID (1) would
    # be the same for every replica on the node.
    assert holder == pod.metadata.name
    metrics = wait_for(lambda: http_get(f"http://127.0.0.1:{ports['metrics']}/metrics"))
    assert "autozero_" in metrics


# --- 2. a queue drained by real Pods -------------------------------------------------------------


def test_enqueued_jobs_wake_the_workers_which_drain_every_job_and_go_back_to_zero(
    node: Node, api: Any, jobs: Jobs, redis_server: RedisServer
) -> None:
    node.cluster.kubectl_run("create", "namespace", WORK)
    manifests = [worker_deployment(node, redis_server.url), worker_policy(redis_server.url)]
    node.cluster.kubectl_run("apply", "-f", "-", input_text=yaml.safe_dump_all(manifests))
    jobs.enqueue(24, 1.0, "first")
    peak = 0

    def settled() -> bool:
        nonlocal peak
        peak = max(peak, deployment_replicas(api))
        return drained(api, jobs)

    try:
        wait_for(settled, timeout=240, interval=0.5)
    except AssertionError:
        raise AssertionError(
            f"status: {group_status(api)}\n{node.pod_log(NS, RELEASE)[-3000:]}"
        ) from None
    assert peak > 1, "the workers never scaled out"
    jobs.assert_each_ran_once_to_the_end()
    pods = set(jobs.store.hvals("node-e2e:pod"))
    assert len(pods) > 1, f"the jobs ran in one Pod only: {pods}"


# --- 3. helm upgrade -----------------------------------------------------------------------------


def test_helm_upgrade_rolls_the_operator_and_keeps_each_groups_state(
    node: Node, api: Any, ports: dict[str, int]
) -> None:
    before = group_status(api)
    assert before.get("lastScale"), before
    old = ready_operator(api, node)
    upgraded_at = time.time()
    helm(
        node.cluster,
        "upgrade",
        RELEASE,
        str(CHART),
        f"--namespace={NS}",
        "--wait",
        "--timeout=180s",
        "--set=resources.requests.cpu=60m",  # a changed value: a new Pod template
        *node_values(node, ports),
    )
    new = ready_operator(api, node, not_named=old.metadata.name)
    assert new.spec.containers[0].resources.requests["cpu"] == "60m"

    def evaluated_by_the_new_pod() -> dict[str, Any] | None:
        status = group_status(api)
        when = (status.get("lastDecision") or {}).get("time") or ""
        return status if when and _epoch(when) > upgraded_at + 1 else None

    after = wait_for(evaluated_by_the_new_pod, timeout=90, interval=0.5)
    assert after["lastScale"] == before["lastScale"]
    assert after.get("idleSince") == before.get("idleSince")


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


# --- 4. the operator Pod deleted mid-drain -------------------------------------------------------


def test_deleting_the_operator_pod_mid_drain_loses_no_job(node: Node, api: Any, jobs: Jobs) -> None:
    old = ready_operator(api, node)
    jobs.enqueue(24, 1.0, "second")
    wait_for(lambda: len(jobs.runs("finished")) >= len(jobs.tokens) - 20, timeout=120)
    assert not jobs.all_finished(), "the drain ended before the operator was deleted"
    k8s.CoreV1Api(api).delete_namespaced_pod(old.metadata.name, NS)
    ready_operator(api, node, not_named=old.metadata.name)
    wait_for(lambda: drained(api, jobs), timeout=240, interval=0.5)
    jobs.assert_each_ran_once_to_the_end()


# --- 6. SIGTERM ----------------------------------------------------------------------------------


def test_the_operator_exits_cleanly_on_sigterm_within_its_grace_period(
    node: Node, api: Any
) -> None:
    """Exit code 0 is the operator's own clean exit; 137 would be the kubelet's SIGKILL at the end
    of the grace period (a PID 1 that ignores SIGTERM). The seconds it took are printed."""
    pod = ready_operator(api, node)
    name = pod.metadata.name
    core = k8s.CoreV1Api(api)
    started = time.monotonic()
    core.delete_namespaced_pod(name, NS)
    terminated: Any = None
    seconds = 0.0
    stream = k8s_watch.Watch()
    for event in stream.stream(
        core.list_namespaced_pod, NS, field_selector=f"metadata.name={name}", timeout_seconds=90
    ):
        statuses = event["object"].status.container_statuses or []
        state = statuses[0].state.terminated if statuses else None
        if state is not None and terminated is None:
            terminated, seconds = state, time.monotonic() - started
        if event["type"] == "DELETED":
            stream.stop()
    assert terminated is not None, "the Pod went away without reporting its container's exit"
    print(f"operator exited {seconds:.1f}s after SIGTERM (grace period {GRACE}s)")
    assert (terminated.exit_code, terminated.reason) == (0, "Completed")
    ready_operator(api, node, not_named=name)


# --- 5. helm uninstall, 5b. a CRD upgrade --------------------------------------------------------


def test_helm_uninstall_removes_the_operator_and_keeps_the_crd_and_the_policies(
    node: Node, api: Any
) -> None:
    helm(node.cluster, "uninstall", RELEASE, f"--namespace={NS}", "--wait", "--timeout=120s")
    assert operator_pods(api) == []
    apps = k8s.AppsV1Api(api)
    assert apps.list_namespaced_deployment(NS).items == []
    selector = f"app.kubernetes.io/instance={RELEASE}"
    left = node.cluster.kubectl_run(
        "get", "clusterroles,serviceaccounts,roles", "-A", "-l", selector
    )
    assert "autozero" not in left.stdout
    node.cluster.kubectl_run("get", "crd", "scalingpolicies.autozero.dev")
    node.cluster.kubectl_run("get", "scalingpolicy", "rq-workers", "-n", WORK)


def _older_chart(tmp_path: Path, field: str) -> Path:
    """The chart as a release whose CRD did not yet have `spec.<field>`."""
    old = tmp_path / "autozero"
    shutil.copytree(CHART, old)
    crd_file = old / "files" / "scalingpolicies.autozero.dev.yaml"
    crd = yaml.safe_load(crd_file.read_text())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    del spec["properties"][field]
    crd_file.write_text(yaml.safe_dump(crd, sort_keys=False))
    return old


def test_helm_upgrade_upgrades_an_older_crd_so_a_new_field_is_kept(
    node: Node, api: Any, ports: dict[str, int], tmp_path: Path
) -> None:
    """With the CRD in crds/ Helm would never upgrade it, and the apiserver would go on dropping
    the new field from every policy without an error."""
    field = "dryRun"
    policy = {
        "apiVersion": "autozero.dev/v1alpha1",
        "kind": "ScalingPolicy",
        "spec": {
            field: True,
            "metrics": [{"name": "m", "redis": {"url": "redis://127.0.0.1:1/0", "key": "k"}}],
            "groups": [
                {
                    "name": "g",
                    "target": {
                        "kubernetes": {
                            "apiVersion": "apps/v1",
                            "kind": "Deployment",
                            "name": "x",
                        }
                    },
                    "capacity": {"minimum": 1, "maximum": 2},
                }
            ],
        },
    }

    objects = k8s.CustomObjectsApi(api)
    where = ("autozero.dev", "v1alpha1", WORK, "scalingpolicies")

    def apply_and_read_back(name: str) -> dict[str, Any]:
        """As a GitOps controller or an API client would: the apiserver drops a field its CRD
        does not know with a warning, not an error (kubectl's strict validation refuses it)."""
        body = {**policy, "metadata": {"name": name, "namespace": WORK}}
        objects.create_namespaced_custom_object(*where, body)
        return dict(objects.get_namespaced_custom_object(*where, name)["spec"])

    values = node_values(node, ports)
    helm(node.cluster, "install", RELEASE, str(_older_chart(tmp_path, field)), f"--namespace={NS}",
         "--wait", "--timeout=180s", *values)  # fmt: skip
    assert field not in apply_and_read_back("before"), "the older CRD should drop the field"

    helm(node.cluster, "upgrade", RELEASE, str(CHART), f"--namespace={NS}", "--wait",
         "--timeout=180s", *values)  # fmt: skip
    assert apply_and_read_back("after")[field] is True


# --- the host after the node ---------------------------------------------------------------------


def test_stopping_the_node_leaves_nothing_on_the_host(node: Node) -> None:
    """Last in this module: it stops the module's node. While it runs the node has processes,
    cgroups, iptables chains and mounts of its own; after it, the host is as it was."""
    running = host_state(node.needles).added_since(node.before)
    assert {"processes", "cgroups", "mounts"} <= running.keys(), running
    node.stop()
    assert host_state(node.needles).added_since(node.before) == {}
    assert not node.workdir.exists()  # containerd's unpacked images (0.7 GiB) with it
