"""SIGTERM while the operator's calls hang: it exits within the Pod's grace period, and the next
start finishes the work. An apiserver that accepted and never answered held a SIGTERM'd operator
for over a minute (asyncio.run, then the interpreter, waited for the threads in calls retried by
urllib3), past Kubernetes' SIGKILL."""

from __future__ import annotations

import contextlib
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
from support.operator import http_get, scale_of, start_operator, status_of
from testground.kube import KubeCluster, TcpRelay, create_secret, create_worker_deployment
from testground.process import free_port, wait_for
from testground.redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[2]
GRACE = 5  # the operator's --shutdown-grace
# The chart's relation (charts/autozero/values.yaml): the Pod's grace period is 10 s longer.
TERMINATION_GRACE_PERIOD = GRACE + 10


def policy(namespace: str, key: str) -> dict[str, Any]:
    return yaml.safe_load(f"""
apiVersion: autozero.dev/v1alpha1
kind: ScalingPolicy
metadata: {{name: queue-workers, namespace: {namespace}}}
spec:
  pollingInterval: 1s
  metrics:
    - name: backlog
      redis: {{urlFrom: {{secretKeyRef: {{name: queue, key: url}}}}, key: {key}}}
  groups:
    - name: workers
      target: {{kubernetes: {{apiVersion: apps/v1, kind: Deployment, name: worker}}}}
      capacity: {{minimum: 0, maximum: 4, default: 2}}
      activation: {{metric: backlog, idleFor: 2s}}
""")


@pytest.fixture
def namespace(kube: KubeCluster, kube_api: Any, redis_server: RedisServer) -> str:
    kube.kubectl_run("apply", "-f", str(ROOT / "crds" / "scalingpolicies.autozero.dev.yaml"))
    kube.wait_established("scalingpolicies.autozero.dev")
    name = f"st-{uuid.uuid4().hex[:6]}"
    k8s.CoreV1Api(kube_api).create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name)))
    create_secret(kube_api, name, "queue", {"url": redis_server.url})
    create_worker_deployment(kube_api, name, "worker")
    return name


@pytest.fixture
def operators(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
    for log in sorted(tmp_path.glob("operator-*.log")):
        print(f"--- {log.name}\n{log.read_text()[-3000:]}")


def start(kubeconfig: Path, namespace: str, log: Path) -> subprocess.Popen[bytes]:
    port = free_port()
    with log.open("w") as out:
        process = start_operator(
            out,
            [
                *("--kubeconfig", str(kubeconfig), "--metrics-port", str(port)),
                *("--namespace", namespace, "--shutdown-grace", str(GRACE)),
            ],
        )
    wait_for(lambda: http_get(f"http://127.0.0.1:{port}/metrics") is not None, timeout=60)
    return process


def test_sigterm_while_calls_hang_exits_within_the_grace_and_the_next_start_finishes(
    kube: KubeCluster,
    kube_api: Any,
    redis_server: RedisServer,
    namespace: str,
    operators: list[subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    key = f"jobs:{namespace}"
    queue = redis.Redis.from_url(redis_server.url)
    queue.rpush(key, 1)
    kube.kubectl_run("apply", "-f", "-", input_text=yaml.safe_dump(policy(namespace, key)))
    relay = TcpRelay(kube.port)
    try:
        relayed = kube.relayed_kubeconfig(relay, tmp_path / "relayed.kubeconfig")
        operators.append(start(relayed, namespace, tmp_path / "operator-1.log"))
        wait_for(lambda: scale_of(kube_api, namespace) == 2, timeout=60)

        relay.hang()  # the apiserver, for this operator, accepts and never answers
        queue.delete(key)  # the group is to sleep: a write the hung operator cannot make
        wait_for(lambda: relay.held >= 2, timeout=60)  # calls made and left unanswered
        operators[0].terminate()
        signalled = time.monotonic()
        with contextlib.suppress(subprocess.TimeoutExpired):
            operators[0].wait(timeout=120)
        took = time.monotonic() - signalled
        print(f"exited {took:.1f} s after SIGTERM")
    finally:
        relay.close()
    assert operators[0].returncode == 0, f"exit code {operators[0].returncode} after {took:.1f} s"
    assert took <= TERMINATION_GRACE_PERIOD, f"exited {took:.1f} s after SIGTERM"
    assert scale_of(kube_api, namespace) == 2  # the hung operator wrote nothing

    # The next start, with the apiserver answering, finishes the work and records it.
    operators.append(start(kube.kubeconfig, namespace, tmp_path / "operator-2.log"))
    wait_for(lambda: scale_of(kube_api, namespace) == 0, timeout=60)
    wait_for(
        lambda: (
            (s := status_of(kube_api, namespace)).get("groups")
            and s["groups"][0].get("lastScale", {}).get("to") == 0
        ),
        timeout=30,
    )
