"""`autozero simulate` end to end: the seed's nightly batch, the output formats, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from autozero.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

NIGHTLY_TRACE = """time,metric,value,in_flight
2026-11-23T00:00:00Z,backlog,0,0
2026-11-23T02:00:20Z,backlog,500,0
2026-11-23T04:00:00+01:00,backlog,300,8
2026-11-23T04:00:00Z,backlog,100,8
2026-11-23T05:00:00Z,backlog,0,3
2026-11-23T05:10:00Z,backlog,0,0
2026-11-23T01:00:00Z,backlog,0,0
2026-11-23T07:00:00Z,backlog,0,0
"""


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["simulate", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def jsonl(out: str) -> tuple[list[dict[str, object]], dict[str, dict[str, object]]]:
    lines = [json.loads(line) for line in out.splitlines()]
    summary = lines[-1]["summary"]
    assert isinstance(summary, dict)
    return lines[:-1], summary


def test_the_seeds_nightly_batch(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = tmp_path / "nightly.csv"
    trace.write_text(NIGHTLY_TRACE)  # rows out of order on purpose
    code, out, err = run(
        capsys,
        "-f",
        str(EXAMPLES / "nightly-batch.yaml"),
        "--trace",
        str(trace),
        "--output",
        "jsonl",
    )
    assert (code, err) == (0, "")
    decisions, summary = jsonl(out)
    changes = [(d["time"], d["action"]) for d in decisions if d["action"] != "Hold"]
    # Backlog appears at 02:00:20: Wake at the next one-minute step. Jobs drain at 05:00 but
    # stay in flight until 05:10: Sleep 30 minutes after that, not before.
    assert changes == [("2026-11-23T02:01:00Z", "Wake"), ("2026-11-23T05:40:00Z", "Sleep")]
    assert {d["group"] for d in decisions} == {"bids"}  # `reports` is skipped
    bids = summary["bids"]
    assert bids["wakeLatencySeconds"] == [40.0]
    assert bids["scaleEvents"] == 2
    assert bids["replicaSeconds"] == 3 * 3600 + 39 * 60  # one replica from 02:01 to 05:40
    holds = {d["time"]: d for d in decisions}
    assert "jobs in flight" in str(holds["2026-11-23T05:05:00Z"]["message"])
    assert str(holds["2026-11-23T05:39:00Z"]["message"]).endswith("idle 29m of 30m")


AZURE_POLICY = """
apiVersion: autozero.dev/v1alpha1
kind: ScalingPolicy
metadata: {name: azure-four-rules}
spec:
  pollingInterval: 15s
  metrics:
    - name: queue
      prometheus: {serverAddress: "http://prometheus:9090", query: "sum(http_queue)"}
    - name: cpu
      prometheus: {serverAddress: "http://prometheus:9090", query: "avg(cpu)"}
  groups:
    - name: web
      target: {kubernetes: {apiVersion: apps/v1, kind: Deployment, name: web}}
      capacity: {minimum: 1, maximum: 5, default: 2}
      profiles:
        - name: default
          rules:
            - {metric: queue, operator: GreaterThan, threshold: 10,
               action: {direction: Increase, cooldown: 5m}}
            - {metric: cpu, operator: GreaterThan, threshold: 70,
               action: {direction: Increase, cooldown: 5m}}
            - {metric: queue, operator: Equals, threshold: 0,
               action: {direction: Decrease, cooldown: 5m}}
            - {metric: cpu, operator: LessThan, threshold: 50,
               action: {direction: Decrease, cooldown: 5m}}
"""


def test_table_output_of_the_azure_example(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "azure.yaml"
    policy.write_text(AZURE_POLICY)
    trace = tmp_path / "trace.csv"
    rows = ["time,metric,value"]
    for minute in range(40):
        queue, cpu = (20, 60) if minute < 20 else (0, 30)
        rows += [
            f"2026-11-23T10:{minute:02d}:00Z,queue,{queue}",
            f"2026-11-23T10:{minute:02d}:00Z,cpu,{cpu}",
        ]
    trace.write_text("\n".join(rows) + "\n")
    code, out, _ = run(capsys, "-f", str(policy), "--trace", str(trace), "--initial-replicas", "2")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["time", "group", "profile", "action", "replicas", "why"]
    actions = [line.split()[3] for line in lines[1:] if line.startswith("2026")]
    # Out by one every 5-minute cooldown up to the maximum, then in once the queue is empty.
    assert actions[:3] == ["ScaleOut", "ScaleOut", "ScaleOut"]
    assert "ScaleIn" in actions
    assert "web: " in out
    assert "fired: queue 20 > 10" in out


@pytest.mark.parametrize(
    ("trace", "message"),
    [
        pytest.param(
            "time,metric,value\n2026-11-23T00:00:00Z,nope,1\n",
            "trace.csv:2: unknown metric 'nope' (the policy declares backlog; handoff signals: "
            "bids.cpu)",
            id="unknown-metric",
        ),
        pytest.param(
            "time,metric,value\n2026-11-23T00:00:00Z,backlog,1\nyesterday,backlog,2\n",
            "trace.csv:3: time 'yesterday' is not RFC 3339",
            id="bad-time",
        ),
        pytest.param(
            "time,metric,value\n2026-11-23T00:00:00,backlog,1\n",
            "trace.csv:2: time '2026-11-23T00:00:00' needs an offset",
            id="no-offset",
        ),
        pytest.param(
            "time,metric,value\n2026-11-23T00:00:00Z,backlog,many\n",
            "trace.csv:2: value and in_flight must be numbers",
            id="bad-value",
        ),
        pytest.param(
            "when,metric,value\n",
            "trace.csv:1: the header must name time,metric,value",
            id="bad-header",
        ),
        pytest.param("time,metric,value\n", "trace.csv:2: the trace has no rows", id="empty"),
        pytest.param(
            "time,metric,value\n2026-11-23T00:00:00Z,backlog,1\n2026-11-23T00:01:00Z,backlog,nan\n",
            "trace.csv:3: value and in_flight must be finite numbers (no nan, inf)",
            id="nan",
        ),
        pytest.param(
            "time,metric,value\n2026-11-23T00:00:00Z,backlog,inf\n",
            "trace.csv:2: value and in_flight must be finite numbers (no nan, inf)",
            id="inf",
        ),
        pytest.param(
            "time,metric,value,in_flight\n2026-11-23T00:00:00Z,backlog,1,-inf\n",
            "trace.csv:2: value and in_flight must be finite numbers (no nan, inf)",
            id="minus-inf-in-flight",
        ),
        pytest.param(
            "time,metric,value\n2026-11-23T00:00:00Z,backlog,-3\n",
            "trace.csv:2: value -3 is negative: backlog is a queue length",
            id="negative-queue",
        ),
        pytest.param(
            "time,metric,value,in_flight\n2026-11-23T00:00:00Z,backlog,0,-1\n",
            "trace.csv:2: in_flight -1 is negative",
            id="negative-in-flight",
        ),
    ],
)
def test_bad_traces_name_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], trace: str, message: str
) -> None:
    path = tmp_path / "trace.csv"
    path.write_text(trace)
    code, out, err = run(capsys, "-f", str(EXAMPLES / "nightly-batch.yaml"), "--trace", str(path))
    assert code == 1
    assert out == ""
    assert message in err
    assert str(tmp_path) in err


def test_a_malformed_policy_names_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = (EXAMPLES / "nightly-batch.yaml").read_text().replace("idleFor: 30m}", "idleFor: 30}")
    policy = tmp_path / "broken.yaml"
    policy.write_text(broken)
    trace = tmp_path / "trace.csv"
    trace.write_text("time,metric,value\n2026-11-23T00:00:00Z,backlog,1\n")
    code, _, err = run(capsys, "-f", str(policy), "--trace", str(trace))
    assert code == 1
    assert (
        f"{policy}: spec.groups[0].activation.idleFor: must be a duration string like 30s, 5m "
        "or 1h30m, not the number 30"
    ) in err


def test_an_unknown_group_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = tmp_path / "trace.csv"
    trace.write_text("time,metric,value\n2026-11-23T00:00:00Z,backlog,1\n")
    code, _, err = run(
        capsys,
        "-f",
        str(EXAMPLES / "nightly-batch.yaml"),
        "--trace",
        str(trace),
        "--group",
        "ghost",
    )
    assert code == 1
    assert "no group named ghost" in err


def _pixels_near(image: object, rgb: tuple[int, int, int]) -> int:
    import numpy as np

    pixels = np.asarray(image)[..., :3] * 255
    return int((np.abs(pixels - np.array(rgb)).sum(axis=-1) < 30).sum())


WAKE_GREEN, SLEEP_RED = (0x2C, 0xA0, 0x2C), (0xD6, 0x27, 0x28)  # tab:green, tab:red


@pytest.mark.parametrize(
    ("until", "sleeps"),
    [pytest.param(None, True, id="whole-night"), pytest.param("05:00", False, id="before-sleep")],
)
def test_plot_draws_each_scale_decision(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], until: str | None, sleeps: bool
) -> None:
    """The markers are there because the decisions are: a Sleep marker only if the group slept."""
    import matplotlib.image

    rows = NIGHTLY_TRACE.splitlines()
    if until is not None:
        rows = [r for r in rows if r.startswith("time") or r[11:16] < until or "+01:00" in r]
    trace = tmp_path / "nightly.csv"
    trace.write_text("\n".join(rows) + "\n")
    png = tmp_path / "night.png"
    code, out, err = run(
        capsys,
        "-f",
        str(EXAMPLES / "nightly-batch.yaml"),
        "--trace",
        str(trace),
        "--plot",
        str(png),
    )
    assert (code, err) == (0, "")
    assert ("Sleep" in out) is sleeps
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(png)
    assert image.shape[:2] == (650, 1100)
    assert _pixels_near(image, WAKE_GREEN) > 20
    assert (_pixels_near(image, SLEEP_RED) > 20) is sleeps


def test_plot_into_a_missing_directory_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = tmp_path / "nightly.csv"
    trace.write_text(NIGHTLY_TRACE)
    target = tmp_path / "no" / "such" / "dir.png"
    code, _, err = run(
        capsys,
        "-f",
        str(EXAMPLES / "nightly-batch.yaml"),
        "--trace",
        str(trace),
        "--plot",
        str(target),
    )
    assert code == 1
    assert f"autozero: {target}: No such file or directory" in err


def test_a_prometheus_metric_may_be_negative(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Only queue lengths are counts: a query (a temperature, a delta) may go below zero."""
    policy = tmp_path / "azure.yaml"
    policy.write_text(AZURE_POLICY)
    trace = tmp_path / "trace.csv"
    trace.write_text(
        "time,metric,value\n2026-11-23T10:00:00Z,queue,-2\n2026-11-23T10:00:00Z,cpu,-5\n"
    )
    args = ["--trace", str(trace), "--output", "jsonl", "--initial-replicas", "2"]
    code, out, err = run(capsys, "-f", str(policy), *args)
    assert (code, err) == (0, "")
    (decision,), summary = jsonl(out)
    assert decision["group"] == "web"
    assert summary["web"]["finalReplicas"] == 2


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")], ids=str)
def test_decision_json_never_holds_a_bare_nan(value: float) -> None:
    """JSON has no NaN: a source's non-finite value is written as null, never as `NaN`."""
    from datetime import UTC, datetime

    from autozero.decisions import decision_json
    from autozero.engine.decision import Action, Decision, Reason, RuleStatus, RuleVerdict
    from autozero.engine.spec import Direction, Operator

    verdict = RuleVerdict(0, "cpu", Direction.INCREASE, Operator.GREATER_THAN, value, value,
                          RuleStatus.NOT_MET)  # fmt: skip
    decision = Decision(
        "web", datetime(2026, 11, 23, tzinfo=UTC), "default", 1, 1, Action.HOLD,
        Reason.NO_RULE_FIRED, "steady", rules=(verdict,), pending=value, in_flight=value,
    )  # fmt: skip
    text = json.dumps(decision_json(decision), allow_nan=False)  # raises on NaN or Infinity
    body = json.loads(text)
    assert (body["pending"], body["inFlight"]) == (None, None)
    assert (body["rules"][0]["observed"], body["rules"][0]["threshold"]) == (None, None)


def test_a_negative_initial_size_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It used to be accepted and reported as `ScaleOut -3 → 1`."""
    trace = tmp_path / "trace.csv"
    trace.write_text("time,metric,value\n2026-11-23T00:00:00Z,backlog,1\n")
    args = ["-f", str(EXAMPLES / "nightly-batch.yaml"), "--trace", str(trace)]
    with pytest.raises(SystemExit) as raised:
        run(capsys, *args, "--initial-replicas", "-3")
    assert raised.value.code == 2
    err = capsys.readouterr().err
    assert "argument --initial-replicas: -3 is negative; a count of replicas is 0 or more" in err
