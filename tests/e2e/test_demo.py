"""The README's demo command, run non-interactively; its summary is the assertion."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from subprocess import CompletedProcess

import pytest

ROOT = Path(__file__).resolve().parents[2]


def demo(*args: str, timeout: float, env: dict[str, str] | None = None) -> CompletedProcess[str]:
    """`make demo` with these arguments (its output captured), as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "testground.demo", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT / "scripts"), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.parametrize(
    "mode", [[], ["--cluster"], ["--node"]], ids=["standalone", "operator", "pods-on-a-node"]
)
def test_the_demo_wakes_scales_out_drains_and_sleeps(mode: list[str]) -> None:
    """Standalone (the default), as the operator on a real kube-apiserver (`--cluster`), and as
    Pods on a real node, the operator installed with its chart and the workers a Deployment
    (`--node`)."""
    # A guard against a hang, not a speed limit: a node's demo may first wait for another test
    # process's node to stop (one node at a time on a machine; the chaos test's holds it ~2 min).
    result = demo("--json", "--jobs", "150", *mode, timeout=900 if "--node" in mode else 300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["ok"] is True
    assert summary["processed"] == summary["enqueued"] == 150  # no job lost
    assert summary["peakInstances"] > 1
    assert summary["finalSize"] == 0
    assert summary["actions"]["Wake"] == 1
    assert summary["actions"]["Sleep"] == 1
    assert summary["wakeLatencySeconds"] < 5


@pytest.mark.parametrize("mode", [[], ["--cluster"]], ids=["standalone", "operator"])
def test_the_warm_demo_wakes_the_second_time_from_suspended_workers(mode: list[str]) -> None:
    """`make demo DEMO_ARGS=--warm` (and `--warm --cluster`, the operator): a cold wake, a Sleep
    into the standby pool, a wake that resumes the same worker processes (not new ones), both
    rounds drained."""
    result = demo("--json", "--jobs", "100", "--warm", *mode, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["processed"] == summary["enqueued"] == 200  # no job lost
    assert summary["finalSize"] == 0
    assert summary["actions"]["Wake"] == summary["actions"]["Sleep"] == 2
    warm = summary["warm"]
    assert warm["resumedWorkers"]  # the same instance and process ran jobs in both rounds
    calls = warm["apiCalls"]
    assert "instanceGroupManagers.resumeInstances" not in calls["cold"]
    assert calls["warm"]["instanceGroupManagers.resumeInstances"] >= 1
    assert calls["cold"]["instanceGroupManagers.suspendInstances"] == 1  # the Sleep
    assert set(warm["wakeToFirstJobSeconds"]) == {"cold", "warm"}


def test_a_demo_that_cannot_start_says_why_in_one_line_without_a_traceback(tmp_path: Path) -> None:
    """No traceback reaches a user: here the tools' cache is a file, so nothing can be built."""
    cache = tmp_path / "cache"
    cache.write_text("not a directory")
    result = demo("--json", timeout=120, env={"AUTOZERO_CACHE": str(cache)})
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith("[demo] FAILED: "), result.stderr
    assert "build-go-tools.sh failed" in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--jobs", "-1"], "argument --jobs: -1 is not above 0"),
        (["--jobs", "0"], "argument --jobs: 0 is not above 0"),
        (["--job-seconds", "x"], "argument --job-seconds: 'x' is not a number"),
        (["--timeout", "0"], "argument --timeout: 0 is not above 0"),
    ],
)
def test_bad_demo_arguments_get_a_usage_error_before_anything_starts(
    args: list[str], error: str
) -> None:
    result = demo(*args, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""  # nothing started
    assert f"make demo: error: {error}" in result.stderr, result.stderr
