"""`autozero simulate` with a standby pool: the pool's VM-hours are counted apart from the running
replica-hours, and a wake takes its VMs from the pool first."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from autozero.cli import main

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "gce-emulator.yaml"

# Jobs for ten minutes, none for an hour (the group sleeps after idleFor: 1m), jobs again.
TRACE = """time,metric,value,in_flight
2026-11-24T00:00:00Z,backlog,5,0
2026-11-24T00:10:00Z,backlog,0,0
2026-11-24T01:10:00Z,backlog,5,0
2026-11-24T01:20:00Z,backlog,0,0
2026-11-24T01:30:00Z,backlog,0,0
"""


def summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], standby: object
) -> dict[str, object]:
    policy = yaml.safe_load(EXAMPLE.read_text())
    if standby is not None:
        policy["spec"]["groups"][0]["target"]["gce"]["standby"] = standby
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(policy))
    (tmp_path / "trace.csv").write_text(TRACE)
    args = ["-f", str(tmp_path / "policy.yaml"), "--trace", str(tmp_path / "trace.csv")]
    assert main(["simulate", *args, "--output", "jsonl"]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    return dict(json.loads(last)["summary"]["bids"])


def test_pool_vm_hours_are_counted_apart(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cold = summary(tmp_path, capsys, None)
    warm = summary(tmp_path, capsys, {"mode": "Suspend", "size": 1})
    assert "pool" not in cold
    assert warm["replicaSeconds"] == cold["replicaSeconds"]  # the running hours do not change
    pool = warm["pool"]
    assert pool["kind"] == "suspended"  # type: ignore[index]
    assert pool["warmStarts"] == 1  # type: ignore[index]  # the second wake resumed its VM
    # One VM in the pool from each sleep (about 00:11 and 01:21) to the next wake or the end:
    # 59 + 9 minutes, give or take a polling interval at each end.
    assert abs(pool["vmSeconds"] - 68 * 60) <= 30  # type: ignore[index,operator]


def test_the_table_says_the_pool_hours(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = yaml.safe_load(EXAMPLE.read_text())
    policy["spec"]["groups"][0]["target"]["gce"]["standby"] = {"mode": "Stop", "size": 2}
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(policy))
    (tmp_path / "trace.csv").write_text(TRACE)
    args = ["-f", str(tmp_path / "policy.yaml"), "--trace", str(tmp_path / "trace.csv")]
    assert main(["simulate", *args]) == 0
    out = capsys.readouterr().out
    assert "stopped pool VM-hours, 1 VMs taken from the pool" in out
