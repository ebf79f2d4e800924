"""One runtime, two shells: `autozero run` and the operator pass the same behavioural table,
against the real apiserver and Redis. What differs between them (a state file or the status;
stdout or Events) is tested elsewhere; what they share is tested here, once for each."""

from __future__ import annotations

import math
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from kubernetes import client as k8s
from kubernetes.config import new_client_from_config
from support.operator import start_operator
from testground.kube import KubeCluster, create_worker_deployment, start_cluster
from testground.process import free_port, stop_child, wait_for
from testground.redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[2]


def manifest(
    namespace: str,
    redis_url: str,
    *,
    polling: str,
    capacity: str = "{minimum: 0, maximum: 3, default: 1}",
    activation: str = "activation: {metric: backlog, idleFor: 2s}",
) -> dict[str, Any]:
    return dict(
        yaml.safe_load(f"""
apiVersion: autozero.dev/v1alpha1
kind: ScalingPolicy
metadata: {{name: shared, namespace: {namespace}}}
spec:
  pollingInterval: {polling}
  metrics:
    - name: backlog
      redis: {{url: "{redis_url}", key: "jobs:{namespace}", configureNotifications: true}}
  groups:
    - name: workers
      target: {{kubernetes: {{apiVersion: apps/v1, kind: Deployment, name: worker}}}}
      capacity: {capacity}
      {activation}
""")
    )


class Shell:
    """A shell serving one policy as its own process; `start` returns once it is running."""

    def __init__(self, kind: str, kube: KubeCluster, namespace: str, workdir: Path) -> None:
        self.kind, self.kube, self.namespace, self.workdir = kind, kube, namespace, workdir
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / f"{kind}.log"

    def start(self, policy: dict[str, Any]) -> None:
        log = self.log_path.open("w")
        if self.kind == "run":
            path = self.workdir / "policy.yaml"
            path.write_text(yaml.safe_dump(policy))
            self.process = subprocess.Popen(
                [
                    *(sys.executable, "-m", "autozero.cli", "run", "-f", str(path)),
                    *("--kubeconfig", str(self.kube.kubeconfig)),
                    *("--state", str(self.workdir / "state.json")),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        else:
            self.kube.kubectl_run(
                "apply", "-f", str(ROOT / "crds" / "scalingpolicies.autozero.dev.yaml")
            )
            self.kube.wait_established("scalingpolicies.autozero.dev")
            self.process = start_operator(
                log,
                [
                    *("--kubeconfig", str(self.kube.kubeconfig), "--namespace", self.namespace),
                    *("--metrics-port", str(free_port())),
                ],
            )
            self.kube.kubectl_run("apply", "-f", "-", input_text=yaml.safe_dump(policy))

    def stop(self) -> None:
        if self.process is not None:
            stop_child(self.process)

    def log(self) -> str:
        return self.log_path.read_text()


@pytest.fixture(params=["run", "operator"])
def shell(
    request: pytest.FixtureRequest, kube: KubeCluster, kube_api: Any, tmp_path: Path
) -> Iterator[Shell]:
    namespace = f"shell-{uuid.uuid4().hex[:6]}"
    k8s.CoreV1Api(kube_api).create_namespace(
        k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=namespace))
    )
    create_worker_deployment(kube_api, namespace)
    served = Shell(str(request.param), kube, namespace, tmp_path)
    try:
        yield served
    finally:
        served.stop()


def before_the_next_poll(interval: float, room: float) -> float:
    """The wall-clock time of the next poll (polls fall on multiples of the interval), after
    waiting out the current one if it is less than `room` seconds away: what happens before the
    returned time cannot have been caused by a poll."""
    next_poll = (math.floor(time.time() / interval) + 1) * interval
    if next_poll - time.time() < room:
        time.sleep(next_poll - time.time() + 0.5)
        next_poll += interval
    return next_poll


def replicas(kube_api: Any, namespace: str) -> int:
    scale = k8s.AppsV1Api(kube_api).read_namespaced_deployment_scale("worker", namespace)
    return int(scale.spec.replicas or 0)


def settle(check: Callable[[], bool], shell: Shell, timeout: float) -> None:
    try:
        wait_for(check, timeout=timeout, interval=0.05)
    except Exception:
        print(shell.log()[-4000:])
        raise


def test_wakes_on_pushed_work_and_sleeps_when_idle(
    shell: Shell, kube_api: Any, redis_server: RedisServer
) -> None:
    # A 30 s poll: only the push explains a wake within seconds.
    shell.start(manifest(shell.namespace, redis_server.url, polling="30s"))
    settle(lambda: "workers" in shell.log() or shell.kind == "operator", shell, 30)
    time.sleep(2)  # the subscription is made once the policy is built
    queue = redis.Redis.from_url(redis_server.url)
    next_poll = before_the_next_poll(30, room=15)
    queue.rpush(f"jobs:{shell.namespace}", 1, 2, 3)
    settle(lambda: replicas(kube_api, shell.namespace) == 1, shell, 30)
    assert time.time() < next_poll  # woken before any poll could have seen the work
    queue.delete(f"jobs:{shell.namespace}")
    # Nothing pushes "empty": the next poll (≤ 30 s) sees it, then idleFor 2s, then the deadline.
    settle(lambda: replicas(kube_api, shell.namespace) == 0, shell, 45)


def test_a_workload_scaled_by_someone_else_is_seen_without_a_poll(
    shell: Shell, kube_api: Any, redis_server: RedisServer
) -> None:
    # A 5-minute poll: only the watch on the Deployment explains a correction within seconds.
    policy = manifest(
        shell.namespace,
        redis_server.url,
        polling="5m",
        capacity="{minimum: 1, maximum: 2, default: 1}",
        activation="",
    )
    shell.start(policy)
    settle(lambda: replicas(kube_api, shell.namespace) == 1, shell, 30)  # raised to its minimum
    time.sleep(1)
    next_poll = before_the_next_poll(300, room=60)
    k8s.AppsV1Api(kube_api).patch_namespaced_deployment_scale(
        "worker", shell.namespace, {"spec": {"replicas": 5}}
    )
    settle(lambda: replicas(kube_api, shell.namespace) == 2, shell, 60)  # its maximum
    assert time.time() < next_poll  # corrected before any poll: the watch brought it


@pytest.fixture(scope="module")
def own_kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeCluster]:
    """An apiserver of its own, without a controller-manager: its request counts are the shell's
    alone (on the shared one, a client another test file left behind counts too)."""
    cluster = start_cluster(tmp_path_factory.mktemp("own-kube"), controller_manager=False)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.mark.parametrize("kind", ["run", "operator"])
def test_an_asleep_group_costs_the_apiserver_nothing(
    kind: str, own_kube: KubeCluster, redis_server: RedisServer, tmp_path: Path
) -> None:
    """Polled every second, the group is observed from the watch: no `/scale` GET and no HPA
    list while nothing changes (the runtime before informers made one of each per poll)."""
    kube = own_kube
    kube_api = new_client_from_config(config_file=str(kube.kubeconfig))
    namespace = f"shell-{uuid.uuid4().hex[:6]}"
    k8s.CoreV1Api(kube_api).create_namespace(
        k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=namespace))
    )
    create_worker_deployment(kube_api, namespace)
    shell = Shell(kind, kube, namespace, tmp_path)
    try:
        shell.start(manifest(namespace, redis_server.url, polling="1s"))
        settled_at = time.monotonic() + 60

        def gets() -> float:
            return kube.apiserver_requests().get(("GET", "deployments", "scale"), 0.0)

        # Built, first decision made, watches synced: until then a pass may read it live.
        while True:
            first = gets()
            time.sleep(3)
            if gets() == first:
                break
            assert time.monotonic() < settled_at, "the shell kept reading /scale live for 60 s"
        before = kube.apiserver_requests()
        time.sleep(10)
        after = kube.apiserver_requests()

        def made(verb: str, resource: str, subresource: str = "") -> float:
            key = (verb, resource, subresource)
            return after.get(key, 0.0) - before.get(key, 0.0)

        assert made("GET", "deployments", "scale") == 0
        assert made("LIST", "horizontalpodautoscalers") == 0
        assert made("PATCH", "deployments", "scale") == 0
        assert replicas(kube_api, namespace) == 0
    finally:
        shell.stop()
        kube_api.close()


def test_work_is_found_by_the_poll_when_nothing_pushes(
    shell: Shell, kube_api: Any, tmp_path: Path
) -> None:
    """A Redis that publishes no keyspace events (and may not be configured to): only the poll,
    every second, can find the work."""
    quiet = RedisServer(tmp_path / "quiet-redis")
    quiet.start()
    try:
        policy = manifest(shell.namespace, quiet.url, polling="1s")
        policy["spec"]["metrics"][0]["redis"]["configureNotifications"] = False
        shell.start(policy)
        time.sleep(3)  # built, and polled a few times with nothing to do
        assert replicas(kube_api, shell.namespace) == 0
        redis.Redis.from_url(quiet.url).rpush(f"jobs:{shell.namespace}", 1)
        settle(lambda: replicas(kube_api, shell.namespace) == 1, shell, 15)  # the next poll
    finally:
        shell.stop()
        quiet.stop()


def test_an_awake_group_scaled_to_zero_under_pending_work_is_woken_again(
    shell: Shell, kube_api: Any, redis_server: RedisServer
) -> None:
    """Someone (a person, another autoscaler) writes 0 while work is pending: the watch brings
    the new count and the group wakes again, without waiting for the work to change."""
    shell.start(manifest(shell.namespace, redis_server.url, polling="30s"))
    settle(lambda: "workers" in shell.log() or shell.kind == "operator", shell, 30)
    time.sleep(2)
    redis.Redis.from_url(redis_server.url).rpush(f"jobs:{shell.namespace}", 1, 2, 3)
    settle(lambda: replicas(kube_api, shell.namespace) == 1, shell, 10)
    time.sleep(1)
    k8s.AppsV1Api(kube_api).patch_namespaced_deployment_scale(
        "worker", shell.namespace, {"spec": {"replicas": 0}}
    )
    # The patch has been applied when it returns: the count is 0 until autozero writes it again.
    settle(lambda: replicas(kube_api, shell.namespace) == 1, shell, 10)
