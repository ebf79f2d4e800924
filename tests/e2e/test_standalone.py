"""`autozero run` against Redis and the GCE emulator, including a restart in the middle."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import redis
import yaml
from gce_emulator import EmulatorServer
from support.operator import http_get
from testground.gce import compute_client, create_mig
from testground.process import free_port, wait_for
from testground.redis_server import RedisServer

POLICY = """
apiVersion: autozero.dev/v1alpha1
kind: ScalingPolicy
metadata: {name: nightly, namespace: batch}
spec:
  pollingInterval: 1s
  metrics:
    - name: backlog
      rq: {urlFrom: {secretKeyRef: {name: queue, key: url}}, queue: bids}
  groups:
    - name: bids
      target: {gce: {project: acme, zone: europe-west1-c, instanceGroupManager: bids}}
      capacity: {minimum: 0, maximum: 4, default: 2}
      activation: {metric: backlog, idleFor: 3s}
"""


def autozero_run(policy: Path, state: Path, secrets: Path, endpoint: str) -> list[dict[str, Any]]:
    """One cycle in a new process, as after a restart of the runner."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "autozero.cli",
            "run",
            "-f",
            str(policy),
            "--state",
            str(state),
            "--secrets-dir",
            str(secrets),
            "--gce-endpoint",
            endpoint,
            "--once",
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return [json.loads(line) for line in out.stdout.splitlines()]


def create_group(emulator: EmulatorServer) -> Any:
    """The MIG `acme/europe-west1-c/bids` at size 0; returns a client for checks."""
    compute = compute_client(emulator.api_endpoint)
    create_mig(compute, "acme", "bids", zone="europe-west1-c")
    return compute


def write_inputs(tmp_path: Path, redis_url: str) -> Path:
    secrets = tmp_path / "secrets" / "queue"
    secrets.mkdir(parents=True)
    (secrets / "url").write_text(redis_url)
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    return policy


def test_a_restarted_runner_resumes_its_idle_clock(
    tmp_path: Path, redis_server: RedisServer, gce_emulator: EmulatorServer
) -> None:
    compute = create_group(gce_emulator)
    policy = write_inputs(tmp_path, redis_server.url)
    state = tmp_path / "state.json"
    queue = redis.Redis.from_url(redis_server.url)
    queue.delete("rq:queue:bids")

    queue.rpush("rq:queue:bids", "job-1", "job-2")
    (woke,) = autozero_run(policy, state, tmp_path / "secrets", gce_emulator.api_endpoint)
    assert (woke["action"], woke["replicas"]) == ("Wake", {"before": 0, "after": 2})
    assert woke["steps"] == ["resize 0 -> 2"]
    size = (
        compute.instanceGroupManagers()
        .get(project="acme", zone="europe-west1-c", instanceGroupManager="bids")
        .execute()
    )
    assert size["targetSize"] == 2

    queue.delete("rq:queue:bids")  # drained
    (idle,) = autozero_run(policy, state, tmp_path / "secrets", gce_emulator.api_endpoint)
    assert idle["action"] == "Hold"
    saved = json.loads(state.read_text())["groups"]["bids"]
    assert saved["idleSince"] is not None
    time.sleep(3.2)
    # A new process: only the state file remembers when the group became idle.
    (slept,) = autozero_run(policy, state, tmp_path / "secrets", gce_emulator.api_endpoint)
    assert (slept["action"], slept["replicas"]["after"]) == ("Sleep", 0)
    assert yaml.safe_load(json.dumps(slept))["reason"] == "Idle"


def test_a_bad_policy_exits_non_zero_with_the_field(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY.replace("idleFor: 3s", "idleFor: soon"))
    result = subprocess.run(
        [sys.executable, "-m", "autozero.cli", "run", "-f", str(policy), "--once"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "spec.groups[0].activation.idleFor: invalid duration 'soon'" in result.stderr


def test_the_runner_serves_metrics_while_it_runs(
    tmp_path: Path, redis_server: RedisServer, gce_emulator: EmulatorServer
) -> None:
    create_group(gce_emulator)
    policy = write_inputs(tmp_path, redis_server.url)
    redis.Redis.from_url(redis_server.url).rpush("rq:queue:bids", "job-1")
    port = free_port()
    args = ["-f", str(policy), "--secrets-dir", str(tmp_path / "secrets")]
    args += ["--metrics-port", str(port), "--gce-endpoint", gce_emulator.api_endpoint]
    process = subprocess.Popen(
        [sys.executable, "-m", "autozero.cli", "run", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        wanted = (
            'autozero_group_replicas{group="bids",kind="desired",namespace="batch",'
            'policy="nightly"} 2.0'
        )
        text = wait_for(
            lambda: (t := http_get(f"http://127.0.0.1:{port}/metrics")) and wanted in t and t,
            timeout=30,
        )
        assert (
            "autozero_decisions_total{"
            'action="Wake",group="bids",namespace="batch",policy="nightly"} 1.0' in text
        )
        assert (
            'autozero_metric_value{metric="backlog",namespace="batch",policy="nightly"} 1.0' in text
        )
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            _, stderr = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            _, stderr = process.communicate()
            raise AssertionError(
                f"autozero run ignored SIGTERM: {stderr.decode()[-2000:]}"
            ) from None
        redis.Redis.from_url(redis_server.url).delete("rq:queue:bids")
    assert process.returncode == 0, stderr.decode()[-2000:]  # a clean stop


def test_a_project_outside_the_allowlist_is_refused_with_no_call(
    tmp_path: Path, redis_server: RedisServer, gce_emulator: EmulatorServer
) -> None:
    policy = write_inputs(tmp_path, redis_server.url)
    args = ["-f", str(policy), "--once", "--secrets-dir", str(tmp_path / "secrets")]
    args += ["--gce-endpoint", gce_emulator.api_endpoint]
    result = subprocess.run(
        [sys.executable, "-m", "autozero.cli", "run", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "AUTOZERO_GCE_ALLOW": "batch=acme-other;team-*=acme"},
    )
    assert result.returncode == 1
    assert "GCEProjectNotAllowed: bids: namespace batch may not target GCE project acme" in (
        result.stderr
    )
    assert gce_emulator.control("requests", method="GET")["requests"] == []


def run_once(tmp_path: Path, policy: Path, endpoint: str) -> subprocess.CompletedProcess[str]:
    args = ["-f", str(policy), "--once", "--secrets-dir", str(tmp_path / "secrets")]
    return subprocess.run(
        [sys.executable, "-m", "autozero.cli", "run", *args, "--gce-endpoint", endpoint],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_once_exits_3_when_a_group_fails_and_0_when_it_is_back(
    tmp_path: Path, redis_server: RedisServer, gce_emulator: EmulatorServer
) -> None:
    """A cron job or a CI step must see that the cycle did not go through."""
    policy = write_inputs(tmp_path, redis_server.url)
    redis.Redis.from_url(redis_server.url).delete("rq:queue:bids")

    missing = run_once(tmp_path, policy, gce_emulator.api_endpoint)  # no such MIG yet
    assert missing.returncode == 3, missing.stderr
    assert "bids: ERROR bids: " in missing.stdout
    assert "instanceGroupManagers/bids" in missing.stdout
    assert "not found" in missing.stdout
    assert "Traceback" not in missing.stderr

    create_group(gce_emulator)
    found = run_once(tmp_path, policy, gce_emulator.api_endpoint)
    assert found.returncode == 0, found.stdout + found.stderr
    assert " bids Hold 0->0: " in found.stdout


def test_once_exits_3_when_a_metric_cannot_be_read(
    tmp_path: Path, gce_emulator: EmulatorServer
) -> None:
    """The group holds (a failing source never scales down), and the exit code says why."""
    create_group(gce_emulator)
    policy = write_inputs(tmp_path, f"redis://127.0.0.1:{free_port()}/0")  # nothing listens
    result = run_once(tmp_path, policy, gce_emulator.api_endpoint)
    assert result.returncode == 3, result.stdout + result.stderr
    assert " bids Hold 0->0: " in result.stdout
