"""SIGKILL of the operator between the two writes of a standby-pool transition: a restarted
operator finishes it from what it observes.

The emulator's operations take 2 s, so the operator is killed while it waits for one: after
"suspend" and before "resize to 0" on the way down, and after "resume" and before "resize up" on
the way up. The emulator's request log says when.

On the way down the restarted operator finishes the sleep (resize the rest to 0). On the way up
the group is awake at the resumed count, which nothing observable says is short: the killed
operator wrote the count it was waking to into the status (`finishing`) before its first write,
and the restarted one finishes the wake to it (resize the rest), with or without a handoff (the
autoscaler created after). docs/gce.md says so. Then an uninterrupted sleep and wake: their
Events name the pool ("resumed 1 from the suspended pool (0 left), created 1"), and the status
and /metrics show its count.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from kubernetes import client as k8s
from support.operator import events_of, http_get, start_operator, status_of
from testground.gce import compute_client, create_mig
from testground.kube import KubeCluster, create_secret
from testground.process import free_port, wait_for
from testground.redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[2]
ZONE = "europe-west1-c"
EXPLAIN = [sys.executable, "-m", "autozero.cli", "explain"]


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


@pytest.mark.parametrize("handoff", [True, False], ids=["handoff", "no-handoff"])
def test_sigkill_between_pool_and_resize_converges(
    handoff: bool,
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
                }
            ],
        },
    }
    if handoff:
        spec: Any = manifest["spec"]
        spec["groups"][0]["handoff"] = {"gceAutoscaler": {"minReplicas": 2, "maxReplicas": 2}}
    args = ["--kubeconfig", str(kube.kubeconfig), "--namespace", namespace]
    args += ["--gce-endpoint", slow_emulator.api_endpoint, "--gce-allow", f"{namespace}=acme"]
    logs: list[Any] = []
    ports: list[int] = []

    def operator() -> subprocess.Popen[bytes]:
        log = (tmp_path / f"operator-{len(logs)}.log").open("w")
        logs.append(log)
        ports.append(free_port())
        return start_operator(log, [*args, "--metrics-port", str(ports[-1])])

    def explain() -> str:
        """`autozero explain` of the policy, from its status (kept in tmp_path for the docs)."""
        out = subprocess.run(
            [*EXPLAIN, "warm", "-n", namespace, "--kubeconfig", str(kube.kubeconfig)],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
        (tmp_path / f"explain-{len(list(tmp_path.glob('explain-*')))}.txt").write_text(out)
        return out

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
        settle(lambda: "instanceGroupManagers.resize" in calls())
        if handoff:
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
        # Written before the resume: the count the wake goes to.
        assert status_of(kube_api, namespace, "warm")["groups"][0]["finishing"] == 2
        assert "a scale-out to 2 was under way (`finishing`): a restart finishes it" in explain()
        settle(lambda: sizes() == (1, 0))  # half done: the pool VM is back, one to create
        slow_emulator.control("requests", method="DELETE")
        third = operator()
        running.append(third)
        settle(lambda: sizes() == (2, 0) and statuses() == ["RUNNING", "RUNNING"])
        made = ["instanceGroupManagers.resize"] + (["autoscalers.insert"] if handoff else [])
        settle(lambda: calls() == made)  # it made the rest; nothing resumed twice
        # Reported once the pass's writes are done: the wake is no longer under way.
        settle(lambda: "finishing" not in status_of(kube_api, namespace, "warm")["groups"][0])

        # A sleep and a wake, uninterrupted: their Events name the pool; the status and
        # /metrics show its count beside the running one.
        def said(words: str) -> bool:
            return any(words in message for _, message in events_of(kube_api, namespace))

        def replicas() -> Any:
            return status_of(kube_api, namespace, "warm")["groups"][0]["replicas"]

        queue.delete(key)
        settle(lambda: said("suspended 1 into the pool (1 suspended), deleted 1"))
        asleep = {"current": 0, "desired": 0, "suspended": 1, "stopped": 0}
        settle(lambda: replicas() == asleep)
        assert (
            "standby pool (Suspend, size 1): 1 suspended beside 0 running; a wake resumes 1 of "
            "them before creating any"
        ) in explain()
        series = f'group="warm",kind="suspended",namespace="{namespace}",policy="warm"}} 1.0'

        def scraped() -> str:
            text = http_get(f"http://127.0.0.1:{ports[-1]}/metrics") or ""
            (tmp_path / "metrics.txt").write_text(text)  # kept for the docs
            return text

        settle(lambda: series in scraped())
        queue.rpush(key, 1)
        settle(lambda: said("resumed 1 from the suspended pool (0 left), created 1"))
        settle(lambda: sizes() == (2, 0))
    finally:
        for process in running:
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=30)
        for log in logs:
            log.close()


RUN_POLICY = """
apiVersion: autozero.dev/v1alpha1
kind: ScalingPolicy
metadata: {name: nightly, namespace: batch}
spec:
  pollingInterval: 1s
  metrics:
    - name: backlog
      redis: {urlFrom: {secretKeyRef: {name: queue, key: url}}, key: jobs}
  groups:
    - name: warm
      target:
        gce:
          project: acme
          zone: europe-west1-c
          instanceGroupManager: warm
          standby: {mode: Suspend, size: 1}
      capacity: {minimum: 0, maximum: 2, default: 2}
      activation: {metric: backlog, idleFor: 1h}
"""


def test_sigkill_of_autozero_run_between_resume_and_resize_finishes_the_wake(
    redis_server: RedisServer, slow_emulator: Any, tmp_path: Path
) -> None:
    """`autozero run` keeps the wake's count in its state file before the resume: a new
    process finishes the wake to 2 (it would hold at the resumed 1 otherwise)."""
    compute = compute_client(slow_emulator.api_endpoint)
    create_mig(compute, "acme", "warm", zone=ZONE, size=1)
    group = {"project": "acme", "zone": ZONE, "instanceGroupManager": "warm"}
    igm = compute.instanceGroupManagers()

    def listed() -> list[dict[str, Any]]:
        rows = igm.listManagedInstances(**group).execute().get("managedInstances", [])
        return list(rows)

    wait_for(lambda: [m["instanceStatus"] for m in listed()] == ["RUNNING"], timeout=30)
    vm = listed()[0]["instance"]
    operation = igm.suspendInstances(**group, body={"instances": [vm]}).execute()
    compute.zoneOperations().wait(project="acme", zone=ZONE, operation=operation["name"]).execute()
    wait_for(lambda: [m["instanceStatus"] for m in listed()] == ["SUSPENDED"], timeout=30)

    secrets = tmp_path / "secrets" / "queue"
    secrets.mkdir(parents=True)
    (secrets / "url").write_text(redis_server.url)
    policy = tmp_path / "policy.yaml"
    policy.write_text(RUN_POLICY)
    state = tmp_path / "state.json"
    args = ["run", "-f", str(policy), "--state", str(state)]
    args += ["--secrets-dir", str(tmp_path / "secrets"), "--gce-endpoint"]
    args += [slow_emulator.api_endpoint, "--output", "json"]
    redis.Redis.from_url(redis_server.url).rpush("jobs", 1)
    slow_emulator.control("requests", method="DELETE")

    def writes() -> list[str]:
        log = slow_emulator.control("requests", method="GET")["requests"]
        return [str(r["api"]) for r in log if r["method"] == "POST" and "wait" not in r["api"]]

    with (tmp_path / "run-0.log").open("w") as out:
        runner = subprocess.Popen(
            [sys.executable, "-m", "autozero.cli", *args], stdout=out, stderr=subprocess.STDOUT
        )
        try:
            wait_for(
                lambda: "instanceGroupManagers.resumeInstances" in writes(),
                timeout=40,
                interval=0.05,
            )
        finally:
            runner.send_signal(signal.SIGKILL)
            runner.wait(timeout=10)
    assert "instanceGroupManagers.resize" not in writes()
    assert json.loads(state.read_text())["groups"]["warm"]["finishing"] == 2
    wait_for(lambda: igm.get(**group).execute()["targetSize"] == 1, timeout=30)

    again = subprocess.run(
        [sys.executable, "-m", "autozero.cli", *args, "--once"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    (finished,) = [json.loads(line) for line in again.stdout.splitlines()]
    assert (finished["reason"], finished["replicas"]) == ("Unfinished", {"before": 1, "after": 2})
    assert finished["steps"] == ["resize 1 -> 2"]
    assert igm.get(**group).execute()["targetSize"] == 2
    assert json.loads(state.read_text())["groups"]["warm"]["finishing"] is None
