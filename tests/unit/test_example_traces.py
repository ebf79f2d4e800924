"""The sample traces in examples/traces/, simulated with the policies docs/simulate.md pairs them
with: the decisions the page explains are the ones the engine takes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from autozero.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def simulate(capsys: pytest.CaptureFixture[str], policy: str, trace: str, *args: str) -> str:
    code = main(["simulate", "-f", str(EXAMPLES / policy), "--trace", str(EXAMPLES / trace), *args])
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    return out


def decisions(out: str) -> tuple[dict[str, dict[str, object]], dict[str, object]]:
    """Every decision by time, and the one group's summary, from --output jsonl."""
    *lines, last = [json.loads(line) for line in out.splitlines()]
    (summary,) = last["summary"].values()
    return {str(d["time"]): d for d in lines}, summary


def test_nightly_wakes_on_the_first_jobs_and_sleeps_30m_after_the_last_one_ran(
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = simulate(capsys, "nightly-batch.yaml", "traces/nightly.csv", "--output", "jsonl")
    by_time, summary = decisions(out)
    changes = [(t, d["action"]) for t, d in by_time.items() if d["action"] != "Hold"]
    # The trace is in Paris time (+01:00); decisions are in UTC.
    assert changes == [("2026-11-24T00:01:00Z", "Wake"), ("2026-11-24T03:20:00Z", "Sleep")]
    assert summary["wakeLatencySeconds"] == [30.0]  # jobs at 00:00:30Z, next poll 00:01
    # Idle from 01:40Z (nothing pending, nothing running), until new jobs at 01:55Z...
    assert str(by_time["2026-11-24T01:50:00Z"]["message"]).endswith("idle 10m of 30m")
    assert "jobs pending" in str(by_time["2026-11-24T01:55:00Z"]["message"])
    # ...then jobs still running after the queue empties at 02:30Z, until 02:50Z.
    assert "jobs in flight" in str(by_time["2026-11-24T02:45:00Z"]["message"])


def test_the_table_prints_utc_times_for_a_trace_with_offsets(
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = simulate(capsys, "nightly-batch.yaml", "traces/nightly.csv")
    rows = [line.split()[:4] for line in out.splitlines()[1:3]]
    assert rows == [
        ["2026-11-24T00:01:00Z", "bids", "default", "Wake"],
        ["2026-11-24T03:20:00Z", "bids", "default", "Sleep"],
    ]


def test_business_day_follows_office_hours_in_new_york(
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = simulate(capsys, "business-hours.yaml", "traces/business-day.csv", "--output", "jsonl")
    by_time, summary = decisions(out)
    wake = by_time["2026-11-24T13:30:20Z"]
    assert (wake["action"], wake["profile"]) == ("Wake", "default")  # 08:30 in New York
    opening = by_time["2026-11-24T14:00:00Z"]  # 09:00 in New York
    assert (opening["profile"], opening["replicas"]) == ("office-hours", {"before": 1, "after": 3})
    assert summary["peakReplicas"] == 12  # the profile's maximum
    lowest_in_hours = min(
        d["replicas"]["after"]  # type: ignore[index]
        for t, d in by_time.items()
        if "2026-11-24T14:00:00Z" <= t < "2026-11-24T22:00:00Z"
    )
    assert lowest_in_hours == 3  # the profile's minimum
    closing = by_time["2026-11-24T22:00:00Z"]  # 17:00: the profile ends, idle since 16:45
    assert (closing["action"], closing["profile"]) == ("Sleep", "default")
    assert summary["finalReplicas"] == 0


def test_one_replica_per_50_messages_reaches_20_in_one_decision(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The newcomer's RabbitMQ case (0..20, one replica per 50 messages): a backlog of 1,000
    wakes 20 consumers at once; the count follows the backlog down after the 5-minute scale-down
    stabilization, and the group sleeps 10 minutes after the queue is idle."""
    out = simulate(capsys, "rabbitmq-per-50.yaml", "traces/orders.csv", "--output", "jsonl")
    by_time, summary = decisions(out)
    changes = [
        (t, d["action"], d["replicas"]["after"])  # type: ignore[index]
        for t, d in by_time.items()
        if d["action"] != "Hold"
    ]
    assert changes == [
        ("2026-11-24T09:05:00Z", "Wake", 20),
        ("2026-11-24T09:14:45Z", "ScaleIn", 9),  # 420 from 09:10; 20 last wanted at 09:09:45
        ("2026-11-24T09:19:45Z", "ScaleIn", 3),
        ("2026-11-24T09:24:45Z", "ScaleIn", 1),
        ("2026-11-24T09:30:00Z", "Sleep", 0),
    ]
    held = by_time["2026-11-24T09:12:00Z"]
    assert (held["reason"], held["recommended"]) == ("Stabilized", 9)
    assert summary["peakReplicas"] == 20
