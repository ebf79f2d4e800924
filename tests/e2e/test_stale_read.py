"""A slow Compute API never makes the operator sleep a group on reads older than the work.

Found by the chaos campaign (benchmarks/chaos.py, seed 2, "never 0 while a job runs"): with 2-5 s
of Compute latency, a pass read the queue (idle), then waited seconds for the group's GET, then
decided to sleep on that old read, and resized to 0 under jobs that had come meanwhile. Here the
emulator answers every call 3 s late; a job is pushed the moment the pass's GET arrives, so it
lands after the read and before the decision; the group must stay awake.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import redis
import yaml
from gce_emulator import EmulatorServer
from kubernetes import client as k8s
from support.operator import start_operator
from testground.gce import compute_client, create_mig
from testground.kube import KubeCluster, create_secret
from testground.process import free_port, wait_for
from testground.redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[2]
ZONE = "europe-west1-c"


def manifest(namespace: str, key: str) -> dict[str, Any]:
    return yaml.safe_load(f"""
apiVersion: autozero.dev/v1alpha1
kind: ScalingPolicy
metadata: {{name: bids, namespace: {namespace}}}
spec:
  pollingInterval: 1s
  metrics:
    - name: backlog
      redis: {{urlFrom: {{secretKeyRef: {{name: queue, key: url}}}}, key: "{key}"}}
  groups:
    - name: bids
      target: {{gce: {{project: acme, zone: {ZONE}, instanceGroupManager: bids}}}}
      capacity: {{minimum: 0, maximum: 3, default: 1}}
      activation: {{metric: backlog, idleFor: 1s}}
""")


def test_work_that_came_during_a_slow_target_read_keeps_the_group_awake(
    kube: KubeCluster,
    kube_api: Any,
    redis_server: RedisServer,
    gce_emulator: EmulatorServer,
    tmp_path: Path,
) -> None:
    kube.kubectl_run("apply", "-f", str(ROOT / "crds" / "scalingpolicies.autozero.dev.yaml"))
    kube.wait_established("scalingpolicies.autozero.dev")
    compute = compute_client(gce_emulator.api_endpoint)
    create_mig(compute, "acme", "bids", zone=ZONE)
    namespace = f"stale-{uuid.uuid4().hex[:6]}"
    k8s.CoreV1Api(kube_api).create_namespace(
        k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=namespace))
    )
    create_secret(kube_api, namespace, "queue", {"url": redis_server.url})
    key = f"jobs:{namespace}"
    queue = redis.Redis.from_url(redis_server.url)
    queue.rpush(key, 1)
    kube.kubectl_run("apply", "-f", "-", input_text=yaml.safe_dump(manifest(namespace, key)))

    def size() -> int:
        state = gce_emulator.control("state", method="GET")
        return int(next(g["targetSize"] for g in state["groups"] if g["name"] == "bids"))

    def requests() -> list[dict[str, Any]]:
        return list(gce_emulator.control("requests", method="GET")["requests"])

    with (tmp_path / "operator.log").open("w") as log:
        operator = start_operator(
            log,
            [
                *("--kubeconfig", str(kube.kubeconfig), "--metrics-port", str(free_port())),
                *("--namespace", namespace, "--gce-endpoint", gce_emulator.api_endpoint),
                *("--gce-allow", f"{namespace}=acme"),
            ],
        )
        try:
            wait_for(lambda: size() == 1, timeout=60)
            gce_emulator.control("faults", {"latencyMs": 3000})
            seen = len(requests())
            queue.delete(key)  # drained: the next pass reads an idle queue
            # The next look at the group: the pass has read the queue and now waits for Compute.
            wait_for(
                lambda: any(
                    r["api"] in ("instanceGroupManagers.list", "instanceGroupManagers.get")
                    for r in requests()[seen:]
                ),
                timeout=10,
                interval=0.02,
            )
            queue.rpush(key, 1)  # work, after the read and before the decision
            pushed = time.time()
            time.sleep(8)  # a few slow passes: none may put the group to sleep
            resizes = [
                r
                for r in requests()
                if r["api"] == "instanceGroupManagers.resize" and r["at"] > pushed - 5
            ]
            assert [r for r in resizes if "size=0" in r["query"]] == [], resizes
            assert size() == 1
        finally:
            gce_emulator.control("faults", {})
            operator.terminate()
            operator.wait(timeout=30)
