"""A handoff sleep whose autoscaler takes seconds to delete, with work arriving meanwhile: the
group is not resized to 0 under it, and its autoscaler comes back. Regression of the chaos
campaign's seed 23 (`--handoff`): the MIG was resized to 0 on reads made 4.7 s earlier, before a
slow deletion, under a job that had started 0.1 s before the resize."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from gce_emulator import EmulatorServer, Settings
from testground.gce import compute_client, create_mig
from testground.process import wait_for
from testground.redis_server import RedisServer

POLICY = """
apiVersion: autozero.dev/v1alpha1
kind: ScalingPolicy
metadata: {{name: nightly, namespace: batch}}
spec:
  pollingInterval: 1s
  metrics:
    - name: backlog
      redis: {{urlFrom: {{secretKeyRef: {{name: queue, key: url}}}}, key: {key}}}
  groups:
    - name: bids
      target: {{gce: {{project: acme, zone: europe-west1-c, instanceGroupManager: bids}}}}
      capacity: {{minimum: 0, maximum: 4, default: 1}}
      activation: {{metric: backlog, idleFor: 2s}}
      handoff:
        gceAutoscaler: {{minReplicas: 1, maxReplicas: 4, coolDownPeriod: 60s,
                         cpuUtilizationTarget: 0.8}}
"""
OPERATION_SECONDS = 3.0  # each Compute operation, the autoscaler's deletion among them


@pytest.fixture
def slow_emulator() -> Iterator[EmulatorServer]:
    emulator = EmulatorServer(
        settings=Settings(operation_seconds=OPERATION_SECONDS, instance_boot_seconds=0.2)
    ).start()
    try:
        yield emulator
    finally:
        emulator.stop()


def calls(emulator: EmulatorServer, api: str) -> list[dict[str, Any]]:
    found = emulator.control("requests", method="GET")["requests"]
    return [c for c in found if c.get("api") == api and c["status"] == 200]


def test_work_during_the_autoscalers_deletion_keeps_the_group_awake(
    tmp_path: Path, redis_server: RedisServer, slow_emulator: EmulatorServer
) -> None:
    create_mig(compute_client(slow_emulator.api_endpoint), "acme", "bids", zone="europe-west1-c")
    key = f"jobs:{tmp_path.name}"
    (tmp_path / "secrets" / "queue").mkdir(parents=True)
    (tmp_path / "secrets" / "queue" / "url").write_text(redis_server.url)
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY.format(key=key))
    queue = redis.Redis.from_url(redis_server.url)
    queue.rpush(key, "job-1")
    args = ["-f", str(policy), "--secrets-dir", str(tmp_path / "secrets")]
    args += ["--gce-endpoint", slow_emulator.api_endpoint, "--output", "json"]
    log = (tmp_path / "run.log").open("w")
    runner = subprocess.Popen(
        [sys.executable, "-m", "autozero.cli", "run", *args], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        # Awake, handed to the autoscaler (two operations of 3 s).
        wait_for(lambda: calls(slow_emulator, "autoscalers.insert"), timeout=60, interval=0.2)
        queue.delete(key)  # drained: idle for 2 s, then the sleep begins with the deletion
        wait_for(lambda: calls(slow_emulator, "autoscalers.delete"), timeout=60, interval=0.05)
        queue.rpush(key, "job-2")  # while the deletion's operation runs
        # Either the resize to 0 the sleep was heading for, or the autoscaler made again.
        wait_for(
            lambda: (
                len(calls(slow_emulator, "autoscalers.insert")) >= 2
                or any(
                    "size=0" in c["query"]
                    for c in calls(slow_emulator, "instanceGroupManagers.resize")
                )
            ),
            timeout=60,
            interval=0.2,
        )
        resizes = [c["query"] for c in calls(slow_emulator, "instanceGroupManagers.resize")]
        assert not [q for q in resizes if "size=0" in q], (tmp_path / "run.log").read_text()
        assert len(calls(slow_emulator, "autoscalers.insert")) == 2
        said = (tmp_path / "run.log").read_text()
        assert "the sleep stopped before its last step: work came: backlog pending=1" in said, said
    finally:
        runner.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            runner.wait(timeout=30)
        if runner.poll() is None:
            runner.kill()
        log.close()
