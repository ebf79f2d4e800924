"""`autozero simulate` while a group is handed off: the native autoscaler's documented rules,
modelled from the trace's `<group>.cpu` (GCE) or its HPA metrics' signals, or a summary that
says the handoff periods were not modelled; and what `--plot` draws of rules and handoffs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from autozero.cli import main
from autozero.manifests import load_policy
from autozero.plot import _rule_lines, _runs
from autozero.simulator import handoff_signals, read_trace, simulate

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NIGHTLY = EXAMPLES / "nightly-batch.yaml"  # GCE autoscaler: target 0.8, coolDownPeriod 180s


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["simulate", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def jsonl(out: str) -> tuple[list[dict[str, object]], dict[str, dict[str, object]]]:
    lines = [json.loads(line) for line in out.splitlines()]
    return lines[:-1], lines[-1]["summary"]


def changes(decisions: list[dict[str, object]]) -> list[tuple[str, str, int]]:
    return [
        (str(d["time"])[11:19], str(d["action"]), d["replicas"]["after"])  # type: ignore[index]
        for d in decisions
        if d["action"] != "Hold"
    ]


BUSY_NIGHT = """time,metric,value,in_flight
2026-11-24T00:00:00Z,backlog,0,0
2026-11-24T00:00:00Z,bids.cpu,0,
2026-11-24T00:01:00Z,backlog,120,0
2026-11-24T00:01:00Z,bids.cpu,0.95,
2026-11-24T00:20:00Z,bids.cpu,0.3,
2026-11-24T00:40:00Z,backlog,0,0
2026-11-24T00:40:00Z,bids.cpu,0.05,
2026-11-24T01:30:00Z,backlog,0,0
"""


def test_the_gce_autoscaler_is_modelled_from_the_cpu_in_the_trace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = tmp_path / "night.csv"
    trace.write_text(BUSY_NIGHT)
    code, out, err = run(capsys, "-f", str(NIGHTLY), "--trace", str(trace), "--output", "jsonl")
    assert (code, err) == (0, "")
    decisions, summary = jsonl(out)
    assert changes(decisions) == [
        ("00:01:00", "Wake", 1),
        # A new VM counts only once its 180 s initialization period is over: ceil(n x 0.95 /
        # 0.8) on the n initialized ones, one more every 3 minutes, then 6 x 0.95 / 0.8 = 7.1.
        ("00:04:00", "ScaleOut", 2),
        ("00:07:00", "ScaleOut", 3),
        ("00:10:00", "ScaleOut", 4),
        ("00:13:00", "ScaleOut", 5),
        ("00:16:00", "ScaleOut", 6),
        ("00:19:00", "ScaleOut", 8),
        # 0.3 from 00:20 wants 3; the 10-minute stabilization period keeps the highest
        # recommendation of the last 10 minutes (8, last at 00:19) until 00:29.
        ("00:29:00", "ScaleIn", 3),
        ("00:39:00", "ScaleIn", 2),  # 3 x 0.3 / 0.8 wants 2; 3 was wanted until 00:29
        ("00:49:00", "ScaleIn", 1),  # 0.05 from 00:40 wants 1; 2 was wanted until 00:39
        ("01:10:00", "Sleep", 0),  # 30 minutes idle from 00:40
    ]
    scale_outs = [d for d in decisions if d["action"] == "ScaleOut"]
    assert str(scale_outs[0]["message"]).startswith(
        "GCE autoscaler: bids.cpu 0.95 on 1 initialized"
    )
    bids = summary["bids"]
    assert bids["handoff"] == {
        "autoscaler": "GCE autoscaler",
        "modelled": True,
        "summary": "handoff periods modelled (GCE autoscaler on bids.cpu)",
    }
    assert bids["peakReplicas"] == 8
    # The replica-hours include the handoff: 1 + 3 + ... replicas held, not the wake count.
    assert bids["replicaSeconds"] == 60 * (
        3 * 1 + 3 * 2 + 3 * 3 + 3 * 4 + 3 * 5 + 3 * 6 + 10 * 8 + 10 * 3 + 10 * 2 + 21 * 1
    )


def test_without_the_signal_the_summary_says_the_handoff_was_not_modelled(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = tmp_path / "night.csv"
    trace.write_text("\n".join(line for line in BUSY_NIGHT.splitlines() if "cpu" not in line))
    code, out, err = run(capsys, "-f", str(NIGHTLY), "--trace", str(trace))
    assert (code, err) == (0, "")
    assert out.splitlines()[-1] == (
        "bids: 2 scale events, 1.15 replica-hours, peak 1, final 0, wake latency 0s; handoff "
        "periods not modelled (the trace has no bids.cpu rows for the GCE autoscaler)"
    )


HPA_POLICY = """
apiVersion: autozero.dev/v1alpha1
kind: ScalingPolicy
metadata: {name: api, namespace: web}
spec:
  pollingInterval: 15s
  metrics:
    - name: requests
      prometheus: {serverAddress: "http://prometheus:9090", query: sum(queued_requests)}
  groups:
    - name: api
      target: {kubernetes: {apiVersion: apps/v1, kind: Deployment, name: api}}
      capacity: {minimum: 0, maximum: 20, default: 1}
      activation: {metric: requests, threshold: 0, idleFor: 10m}
      handoff:
        hpa:
          minReplicas: 1
          maxReplicas: 20
          metrics:
            - type: Resource
              resource: {name: cpu, target: {type: Utilization, averageUtilization: 60}}
            - type: External
              external:
                metric: {name: queue}
                target: {type: AverageValue, averageValue: "30"}
"""


def test_an_hpa_is_modelled_from_its_metrics_with_its_default_behavior(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "api.yaml"
    policy.write_text(HPA_POLICY)
    trace = tmp_path / "api.csv"
    trace.write_text(
        "time,metric,value\n"
        "2026-11-24T09:00:00Z,requests,5\n"
        "2026-11-24T09:00:00Z,api.cpu,0.6\n"  # 60 %: at the target
        "2026-11-24T09:00:00Z,api.queue,90\n"
        "2026-11-24T09:03:00Z,api.queue,0\n"
        "2026-11-24T09:03:00Z,api.cpu,0.1\n"
        "2026-11-24T09:10:00Z,requests,5\n"
    )
    code, out, err = run(capsys, "-f", str(policy), "--trace", str(trace), "--output", "jsonl")
    assert (code, err) == (0, "")
    decisions, summary = jsonl(out)
    assert changes(decisions) == [
        ("09:00:00", "Wake", 1),
        # The queue's 90 / 30 = 3 beats the cpu (at its target: within tolerance, the current
        # count); within the HPA's default 4 Pods per 15 s.
        ("09:00:15", "ScaleOut", 3),
        # cpu 0.1 (ceil(3 x 0.1 / 0.6) = 1) and an empty queue (0) want 1, after the 5-minute
        # scale-down stabilization from the last recommendation of 3 (09:02:45): 100 % a period
        # allows it at once.
        ("09:07:45", "ScaleIn", 1),
    ]
    assert summary["api"]["handoff"]["modelled"] is True  # type: ignore[index]
    assert decisions[1]["message"] == (
        "HPA: api.cpu 0.6 (api.cpu at 60%): 1; api.queue 90 (api.queue at 30 a pod): 3"
    )


def test_an_hpa_metric_of_an_unknown_form_is_not_modelled(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "api.yaml"
    policy.write_text(HPA_POLICY.replace("type: External", "type: Weird"))
    trace = tmp_path / "api.csv"
    trace.write_text("time,metric,value\n2026-11-24T09:00:00Z,requests,5\n")
    code, out, err = run(capsys, "-f", str(policy), "--trace", str(trace))
    assert (code, err) == (0, "")
    assert out.splitlines()[-1].endswith(
        "; handoff periods not modelled: HPA metric of type 'Weird'"
    )


# --- the plot --------------------------------------------------------------------------------


def test_rule_lines_are_in_the_metrics_units_while_their_profile_is_active() -> None:
    policy = load_policy(str(EXAMPLES / "business-hours.yaml"))
    text = (EXAMPLES / "traces" / "business-day.csv").read_text()
    names = {m.name for m in policy.metrics}
    trace = read_trace(text, "day.csv", names, names, handoff_signals(policy))
    iterator, _ = simulate(policy, trace)
    decisions = list(iterator)
    lines = _rule_lines(policy, decisions, ["reports"])
    # office-hours rule 0: perInstance backlog > 5, drawn as 5 x the current count.
    _, label, times, values = lines[("workers", "office-hours", 0)]
    assert label == "office-hours rule 0: > 5"
    by_time = dict(zip(times, values, strict=True))
    office = [d for d in decisions if d.profile == "office-hours" and d.current > 0]
    assert all(by_time[d.at] == 5 * d.current for d in office)
    # Outside office hours that rule is not drawn.
    outside = [d for d in decisions if d.profile != "office-hours"]
    assert all(by_time[d.at] != by_time[d.at] for d in outside)  # NaN


def test_runs_are_the_spans_of_a_flag() -> None:
    from datetime import UTC, datetime

    t = [datetime(2026, 1, 1, h, tzinfo=UTC) for h in range(6)]
    flags = [False, True, True, False, True, True]
    assert _runs(list(zip(t, flags, strict=True))) == [(t[1], t[3]), (t[4], t[5])]


def _pixels_near(image: object, rgb: tuple[int, int, int]) -> int:
    import numpy as np

    pixels = np.asarray(image)[..., :3] * 255
    return int((np.abs(pixels - np.array(rgb)).sum(axis=-1) < 30).sum())


GRAY = (0x7F, 0x7F, 0x7F)  # tab:gray, the handoff hatch


@pytest.mark.parametrize(
    ("policy", "hatched"),
    [
        pytest.param(NIGHTLY, True, id="handoff-hatched"),
        pytest.param(EXAMPLES / "rabbitmq-per-50.yaml", False, id="no-handoff"),
    ],
)
def test_the_plot_hatches_the_handoff_periods(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], policy: Path, hatched: bool
) -> None:
    import matplotlib.image

    trace = tmp_path / "trace.csv"
    if hatched:
        trace.write_text(BUSY_NIGHT)
    else:
        trace.write_text((EXAMPLES / "traces" / "orders.csv").read_text())
    png = tmp_path / "plot.png"
    code, _, err = run(capsys, "-f", str(policy), "--trace", str(trace), "--plot", str(png))
    assert (code, err) == (0, "")
    image = matplotlib.image.imread(png)
    # Without a handoff only anti-aliased text comes near this gray (some 500 pixels).
    assert (_pixels_near(image, GRAY) > 3000) is hatched
