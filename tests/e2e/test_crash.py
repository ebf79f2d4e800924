"""SIGKILL of the operator in the middle of a GCE handoff: a restarted operator converges, and no
autoscaler is left behind at zero.

The emulator's operations take 2 s, so the operator is killed while it waits for one: after
"resize 0 -> 2" and before "create the autoscaler" on the way up, and after "delete the
autoscaler" and before "resize to 0" on the way down. The emulator's request log says when.
"""

from __future__ import annotations

import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from kubernetes import client as k8s
from support.operator import start_operator
from testground.gce import compute_client, create_mig
from testground.kube import KubeCluster, create_secret
from testground.process import free_port, wait_for
from testground.redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[2]
ZONE = "europe-west1-c"


@pytest.fixture
def slow_emulator() -> Iterator[Any]:
    from gce_emulator import EmulatorServer, Settings

    emulator = EmulatorServer(
        settings=Settings(operation_seconds=2.0, instance_boot_seconds=0.2)
    ).start()
    try:
        yield emulator
    finally:
        emulator.stop()


def test_sigkill_mid_handoff_converges_with_no_orphan_autoscaler(
    kube: KubeCluster,
    kube_api: Any,
    redis_server: RedisServer,
    slow_emulator: Any,
    tmp_path: Path,
) -> None:
    kube.kubectl_run("apply", "-f", str(ROOT / "crds" / "scalingpolicies.autozero.dev.yaml"))
    kube.wait_established("scalingpolicies.autozero.dev")
    compute = compute_client(slow_emulator.api_endpoint)
    create_mig(compute, "acme", "bids", zone=ZONE)
    namespace = f"kill-{uuid.uuid4().hex[:6]}"
    k8s.CoreV1Api(kube_api).create_namespace(
        k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=namespace))
    )
    create_secret(kube_api, namespace, "queue", {"url": redis_server.url})
    key = f"jobs:{namespace}"
    manifest = {
        "apiVersion": "autozero.dev/v1alpha1",
        "kind": "ScalingPolicy",
        "metadata": {"name": "bids", "namespace": namespace},
        "spec": {
            "pollingInterval": "1s",
            "metrics": [
                {
                    "name": "backlog",
                    "redis": {
                        "urlFrom": {"secretKeyRef": {"name": "queue", "key": "url"}},
                        "key": key,
                    },
                }
            ],
            "groups": [
                {
                    "name": "bids",
                    "target": {
                        "gce": {"project": "acme", "zone": ZONE, "instanceGroupManager": "bids"}
                    },
                    "capacity": {"minimum": 0, "maximum": 4, "default": 2},
                    "activation": {"metric": "backlog", "idleFor": "2s"},
                    "handoff": {
                        "gceAutoscaler": {
                            "minReplicas": 1,
                            "maxReplicas": 4,
                            "coolDownPeriod": "60s",
                            "cpuUtilizationTarget": 0.8,
                        }
                    },
                }
            ],
        },
    }
    args = ["--kubeconfig", str(kube.kubeconfig), "--namespace", namespace]
    args += ["--gce-endpoint", slow_emulator.api_endpoint, "--gce-allow", f"{namespace}=acme"]
    logs: list[Any] = []

    def operator() -> subprocess.Popen[bytes]:
        log = (tmp_path / f"operator-{len(logs)}.log").open("w")
        logs.append(log)
        return start_operator(log, [*args, "--metrics-port", str(free_port())])

    def calls() -> list[str]:
        log = slow_emulator.control("requests", method="GET")["requests"]
        return [str(r["api"]) for r in log if r["method"] != "GET" or "wait" in str(r["api"])]

    def kill_after(api: str, process: subprocess.Popen[bytes]) -> list[str]:
        """SIGKILL as soon as `api` was called (its operation is still running)."""
        wait_for(lambda: api in calls(), timeout=40, interval=0.05)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        return calls()

    def group() -> dict[str, Any]:
        return dict(
            compute.instanceGroupManagers()
            .get(project="acme", zone=ZONE, instanceGroupManager="bids")
            .execute()
        )

    def autoscalers() -> list[str]:
        listed = compute.autoscalers().list(project="acme", zone=ZONE).execute()
        return [a["name"] for a in listed.get("items", [])]

    def settle(check: Callable[[], Any]) -> Any:
        return wait_for(check, timeout=40, interval=0.25)

    kube.kubectl_run("apply", "-f", "-", input_text=yaml.safe_dump(manifest))
    slow_emulator.control("requests", method="DELETE")
    first = operator()
    redis.Redis.from_url(redis_server.url).rpush(key, 1)
    made = kill_after("instanceGroupManagers.resize", first)
    assert "autoscalers.insert" not in made  # killed between the two steps of the wake
    time.sleep(2.5)  # the resize finishes without anyone waiting for it
    assert group()["targetSize"] == 2
    assert autoscalers() == []  # half done: awake, and no autoscaler

    second = operator()
    settle(lambda: autoscalers() == ["autozero-bids"])
    assert group()["status"]["autoscaler"].endswith("/autoscalers/autozero-bids")
    slow_emulator.control("requests", method="DELETE")
    redis.Redis.from_url(redis_server.url).delete(key)
    made = kill_after("autoscalers.delete", second)
    assert made.count("instanceGroupManagers.resize") == 0  # killed between the two steps of sleep
    time.sleep(2.5)
    assert autoscalers() == []
    assert group()["targetSize"] >= 1  # half done: no autoscaler, and still awake

    third = operator()
    try:
        settle(lambda: group()["targetSize"] == 0)
        time.sleep(2.5)  # a few more cycles: nothing comes back
        assert autoscalers() == []
        assert group()["targetSize"] == 0
    finally:
        third.terminate()
        third.wait(timeout=30)
        for log in logs:
            log.close()
