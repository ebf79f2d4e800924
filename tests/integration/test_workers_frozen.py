"""The MRQ workers run on VMs that a standby pool suspends: a process frozen in its BLPOP, then
resumed and stopped (SIGTERM), exits cleanly. With a read timeout it died of TimeoutError, as
Python retried the interrupted read against a deadline that had passed while it was frozen (the
chaos campaign's `--standby` found it: a traceback in a pool VM's log)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from testground.redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[2]
FROZEN = 6.5  # seconds: longer than the 5 s read timeout the workers had


@pytest.mark.parametrize("worker", ["chaos", "demo"])
def test_a_worker_frozen_in_its_blpop_then_stopped_exits_cleanly(
    worker: str, redis_server: RedisServer, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "scripts"),
        # Never connected to: neither worker takes a job here.
        "CHAOS_MONGO_URL": "mongodb://127.0.0.1:9/x",
        "DEMO_MONGO_URL": "mongodb://127.0.0.1:9/x",
        "CHAOS_REDIS_URL": redis_server.url,
        "DEMO_REDIS_URL": redis_server.url,
        "CHAOS_QUEUE": "frozen",
        "DEMO_QUEUE": "frozen",
        "CHAOS_WORKER_LOG": str(tmp_path / "jobs.jsonl"),
    }
    argv = (
        [sys.executable, str(ROOT / "benchmarks" / "chaos_workers.py"), "mrq"]
        if worker == "chaos"
        else [sys.executable, "-m", "testground.demo_worker"]
    )
    process = subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(2.0)  # in its BLPOP loop
        assert process.poll() is None
        os.kill(process.pid, signal.SIGSTOP)  # suspended into the pool
        time.sleep(FROZEN)
        os.kill(process.pid, signal.SIGCONT)  # resumed, then stopped
        os.kill(process.pid, signal.SIGTERM)
        _, stderr = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert "Traceback" not in stderr, stderr
    assert process.returncode == 0, stderr
