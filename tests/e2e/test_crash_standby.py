"""SIGKILL of the operator between the two writes of a standby-pool transition: a restarted
operator finishes it from what it observes.

The emulator's operations take 2 s, so the operator is killed while it waits for one: after
"suspend" and before "resize to 0" on the way down, and after "resume" and before "resize up" on
the way up. The emulator's request log says when.

On the way down the restarted operator finishes the sleep (resize the rest to 0). On the way up
the group is awake at the resumed count, which the engine holds (a restarted operator does not
know the size the killed one was waking to): the handoff's invariant then creates the autoscaler,
which brings the group to its minimum. docs/gce.md says so.
"""

from __future__ import annotations

import signal
import subprocess
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
        settings=Settings(
            operation_seconds=2.0,
            instance_boot_seconds=0.2,
            instance_suspend_seconds=0.2,
            instance_resume_seconds=0.2,
        )
    ).start()
    try:
        yield emulator
    finally:
        emulator.stop()


def test_sigkill_between_pool_and_resize_converges(
    kube: KubeCluster,
    kube_api: Any,
    redis_server: RedisServer,
    slow_emulator: Any,
    tmp_path: Path,
) -> None:
    kube.kubectl_run("apply", "-f", str(ROOT / "crds" / "scalingpolicies.autozero.dev.yaml"))
    kube.wait_established("scalingpolicies.autozero.dev")
    compute = compute_client(slow_emulator.api_endpoint)
    create_mig(compute, "acme", "warm", zone=ZONE)
    namespace = f"pool-{uuid.uuid4().hex[:6]}"
    k8s.CoreV1Api(kube_api).create_namespace(
        k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=namespace))
    )
    create_secret(kube_api, namespace, "queue", {"url": redis_server.url})
    key = f"jobs:{namespace}"
    gce = {
        "project": "acme",
        "zone": ZONE,
        "instanceGroupManager": "warm",
        "standby": {"mode": "Suspend", "size": 1},
    }
    manifest = {
        "apiVersion": "autozero.dev/v1alpha1",
        "kind": "ScalingPolicy",
        "metadata": {"name": "warm", "namespace": namespace},
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
                    "name": "warm",
                    "target": {"gce": gce},
                    "capacity": {"minimum": 0, "maximum": 2, "default": 2},
                    "activation": {"metric": "backlog", "idleFor": "2s"},
                    "handoff": {"gceAutoscaler": {"minReplicas": 2, "maxReplicas": 2}},
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
        """The writes (reads, this test's own included, are left out)."""
        log = slow_emulator.control("requests", method="GET")["requests"]
        reads = ("wait", "listManagedInstances")
        return [
            str(r["api"])
            for r in log
            if r["method"] != "GET" and not any(read in str(r["api"]) for read in reads)
        ]

    def kill_after(api: str, process: subprocess.Popen[bytes]) -> list[str]:
        """SIGKILL as soon as `api` was called (its operation is still running)."""
        wait_for(lambda: api in calls(), timeout=40, interval=0.05)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        return calls()

    def sizes() -> tuple[int, int]:
        group = (
            compute.instanceGroupManagers()
            .get(project="acme", zone=ZONE, instanceGroupManager="warm")
            .execute()
        )
        return int(group["targetSize"]), int(group["targetSuspendedSize"])

    def statuses() -> list[str]:
        listed = (
            compute.instanceGroupManagers()
            .listManagedInstances(project="acme", zone=ZONE, instanceGroupManager="warm")
            .execute()
        )
        return sorted(m["instanceStatus"] for m in listed.get("managedInstances", []))

    def settle(check: Callable[[], Any]) -> Any:
        return wait_for(check, timeout=60, interval=0.25)

    kube.kubectl_run("apply", "-f", "-", input_text=yaml.safe_dump(manifest))
    queue = redis.Redis.from_url(redis_server.url)
    first = operator()
    running: list[subprocess.Popen[bytes]] = [first]
    try:
        queue.rpush(key, 1)
        settle(lambda: statuses() == ["RUNNING", "RUNNING"])  # woke cold: nothing in the pool
        settle(lambda: "autoscalers.insert" in calls())

        # Down: killed after the suspend, before the resize to 0.
        slow_emulator.control("requests", method="DELETE")
        queue.delete(key)
        made = kill_after("instanceGroupManagers.suspendInstances", first)
        assert "instanceGroupManagers.resize" not in made
        settle(lambda: sizes() == (1, 1))  # half done: one running, one in the pool
        slow_emulator.control("requests", method="DELETE")
        second = operator()
        running.append(second)
        settle(lambda: sizes() == (0, 1) and statuses() == ["SUSPENDED"])
        assert calls() == ["instanceGroupManagers.resize"]  # finished, nothing suspended again

        # Up: killed after the resume, before the resize to 2 and the autoscaler.
        slow_emulator.control("requests", method="DELETE")
        queue.rpush(key, 1)
        made = kill_after("instanceGroupManagers.resumeInstances", second)
        assert "instanceGroupManagers.resize" not in made
        settle(lambda: sizes() == (1, 0))  # half done: the pool VM is back, one to create
        slow_emulator.control("requests", method="DELETE")
        third = operator()
        running.append(third)
        settle(lambda: sizes() == (2, 0) and statuses() == ["RUNNING", "RUNNING"])
        assert calls() == ["autoscalers.insert"]  # it made the rest; nothing resumed twice
    finally:
        for process in running:
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=30)
        for log in logs:
            log.close()
