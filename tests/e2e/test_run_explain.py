"""`autozero run` explains its groups on SIGUSR1, between its decision lines."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import redis
from gce_emulator import EmulatorServer
from testground.gce import compute_client, create_mig
from testground.process import wait_for
from testground.redis_server import RedisServer

POLICY = """
apiVersion: autozero.dev/v1alpha1
kind: ScalingPolicy
metadata: {name: nightly, namespace: batch}
spec:
  pollingInterval: 1s
  metrics:
    - name: backlog
      redis: {urlFrom: {secretKeyRef: {name: queue, key: url}}, key: "explain:bids"}
  groups:
    - name: bids
      target: {gce: {project: acme, zone: europe-west1-c, instanceGroupManager: bids}}
      capacity: {minimum: 0, maximum: 4, default: 2}
      activation: {metric: backlog, idleFor: 1h}
      profiles:
        - name: default
          rules:
            - metric: backlog
              timeGrain: 1s
              timeWindow: 1s
              statistic: Last
              timeAggregation: Last
              target: {averageValue: 100}
"""


class Lines:
    """The process's stdout, line by line, as it comes."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert process.stdout is not None
        self._thread = threading.Thread(target=self._read, args=(process.stdout,), daemon=True)
        self._thread.start()

    def _read(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            self.lines.append(line.rstrip("\n"))


@pytest.mark.parametrize("output", ["text", "json"])
def test_sigusr1_prints_the_explanation(
    tmp_path: Path, redis_server: RedisServer, gce_emulator: EmulatorServer, output: str
) -> None:
    create_mig(compute_client(gce_emulator.api_endpoint), "acme", "bids", zone="europe-west1-c")
    (tmp_path / "secrets" / "queue").mkdir(parents=True)
    (tmp_path / "secrets" / "queue" / "url").write_text(redis_url := redis_server.url)
    (tmp_path / "policy.yaml").write_text(POLICY)
    queue = redis.Redis.from_url(redis_url)
    queue.rpush("explain:bids", *range(3))
    args = ["-f", str(tmp_path / "policy.yaml"), "--secrets-dir", str(tmp_path / "secrets")]
    args += ["--output", output, "--gce-endpoint", gce_emulator.api_endpoint]
    process = subprocess.Popen(
        [sys.executable, "-m", "autozero.cli", "run", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out = Lines(process)
    try:
        wait_for(lambda: any("Wake" in line for line in out.lines), timeout=30)
        process.send_signal(signal.SIGUSR1)
        if output == "json":
            line = wait_for(
                lambda: next((x for x in out.lines if x.startswith('{"explanation"')), None),
                timeout=30,
            )
            (group,) = json.loads(line)["explanation"]["groups"]
            assert group["state"] == "awake"
            assert group["recent"][0]["what"] == "Wake"
            assert group["rules"][0]["against"] == "averageValue 100 ±0.1"
            assert group["stabilization"][0]["direction"] == "scaleDown"
            assert group["stabilization"][0]["window"] == "5m"
        else:
            wait_for(lambda: "  recent decisions:" in out.lines, timeout=30)
            text = "\n".join(out.lines)
            assert "ScalingPolicy batch/nightly, from autozero run's memory at " in text
            assert "\nbids: awake at 2" in text
            assert "  activation backlog: 3 items pending: not idle" in text
            assert "  scaleDown stabilization window 5m: " in text
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
        queue.delete("explain:bids")
    assert process.returncode == 0, stderr[-2000:]
