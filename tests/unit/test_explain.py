"""`autozero explain` offline and from a status: what it says is what the engine does."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from autozero.cli import main
from autozero.engine.decision import Action
from autozero.explain.build import explain
from autozero.explain.live import evidence_of
from autozero.manifests import load_policy
from autozero.simulator import read_trace, simulate

ROOT = Path(__file__).resolve().parents[2]
PER_50 = ROOT / "examples" / "rabbitmq-per-50.yaml"
ORDERS = ROOT / "examples" / "traces" / "orders.csv"


def explain_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    assert main(["explain", *args, "--output", "json"]) == 0
    found: dict[str, Any] = json.loads(capsys.readouterr().out)
    return found


def decisions(policy_file: Path, trace_file: Path) -> list[Any]:
    policy = load_policy(str(policy_file))
    trace = read_trace(trace_file.read_text(), str(trace_file), {m.name for m in policy.metrics})
    iterator, _ = simulate(policy, trace)
    return list(iterator)


def test_a_stabilization_window_ends_when_the_simulation_scales_in(
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = explain_json(
        capsys, "-f", str(PER_50), "--trace", str(ORDERS), "--at", "2026-11-24T09:12:00Z"
    )
    (group,) = out["groups"]
    assert group["reason"]["code"] == "Stabilized"
    (window,) = group["stabilization"]
    assert (window["direction"], window["window"], window["holdsAt"]) == ("scaleDown", "5m", 20)
    scale_in = next(d for d in decisions(PER_50, ORDERS) if d.action is Action.SCALE_IN)
    assert window["until"] == scale_in.at.strftime("%Y-%m-%dT%H:%M:%SZ") == "2026-11-24T09:14:45Z"
    assert group["activation"]["state"] == "in-flight"


RATED = """
apiVersion: autozero.dev/v1alpha1
kind: ScalingPolicy
metadata: {name: rated, namespace: shop}
spec:
  pollingInterval: 15s
  metrics:
    - name: orders
      rabbitmq:
        managementUrl: http://rabbitmq.shop.svc:15672
        queue: orders
  groups:
    - name: consumers
      target: {kubernetes: {apiVersion: apps/v1, kind: Deployment, name: consumer}}
      capacity: {minimum: 0, maximum: 20, default: 1}
      activation: {metric: orders, idleFor: 10m}
      behavior:
        scaleUp: {policies: [{type: Pods, value: 2, period: 1m}]}
      profiles:
        - name: default
          rules:
            - {metric: orders, timeGrain: 15s, timeWindow: 15s, statistic: Last,
               timeAggregation: Last, target: {averageValue: 50}}
"""

TRACE = """time,metric,value,in_flight
2026-11-24T09:00:00Z,orders,0,0
2026-11-24T09:01:00Z,orders,1000,0
2026-11-24T09:05:00Z,orders,1000,0
"""


def test_a_rate_limit_says_how_far_the_count_may_go_and_until_when(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy, trace = tmp_path / "rated.yaml", tmp_path / "trace.csv"
    policy.write_text(RATED)
    trace.write_text(TRACE)
    out = explain_json(
        capsys, "-f", str(policy), "--trace", str(trace), "--at", "2026-11-24T09:01:30Z"
    )
    (group,) = out["groups"]
    moves = [d for d in decisions(policy, trace) if d.action is not Action.HOLD]
    assert [(d.at.strftime("%H:%M:%S"), d.current, d.target) for d in moves[:3]] == [
        ("09:01:00", 0, 1),
        ("09:01:15", 1, 3),
        ("09:02:15", 3, 5),
    ]
    assert group["reason"]["code"] == "RateLimited"
    (limit,) = group["rateLimits"]
    assert (limit["direction"], limit["allows"], limit["changes"]) == ("scaleUp", 3, 2)
    assert limit["until"] == "2026-11-24T09:02:15Z"  # when the simulation next scales out
    assert limit["sentence"] == (
        "behavior.scaleUp (2 Pods per 1m (Max)): may go up to 3 now (+2 within the period since "
        "2026-11-24T09:01:15Z; the first change leaves it at 2026-11-24T09:02:15Z); it limited "
        "the last decision"
    )
    assert [r["what"] for r in group["recent"]] == ["Wake", "ScaleOut"]


def test_offline_text_names_the_profile_the_rules_and_the_next_deadline(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["-f", str(PER_50), "--trace", str(ORDERS), "--at", "2026-11-24T09:26:00Z"]
    assert main(["explain", *args]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == (
        "ScalingPolicy shop/orders-consumers, from the simulation at 2026-11-24T09:26:00Z"
    )
    assert "  profile default: the only profile (no schedule)" in out
    assert (
        "  activation orders: idle since 2026-11-24T09:20:00Z; sleeps at 2026-11-24T09:30:00Z "
        "(idleFor 10m) unless work arrives"
    ) in out
    assert "  0     orders  0         averageValue 50 ±0.1  Fired: wants 0" in out


NIGHTLY = ROOT / "examples" / "nightly-batch.yaml"
NIGHTLY_TRACE = ROOT / "examples" / "traces" / "nightly.csv"


@pytest.mark.parametrize(
    ("at", "owner", "sentence"),
    [
        pytest.param(
            "2026-11-24T01:00:00Z",
            "GCE autoscaler autozero-bids-workers",
            "owner: GCE autoscaler autozero-bids-workers (1..10) while awake; autozero only puts "
            "it to sleep",
            id="awake",
        ),
        pytest.param(
            "2026-11-24T04:00:00Z",
            "autozero",
            "owner: autozero while asleep; GCE autoscaler autozero-bids-workers (1..10) takes over "
            "once it wakes",
            id="asleep",
        ),
    ],
)
def test_the_handoff_owner_follows_the_wake(
    at: str, owner: str, sentence: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = explain_json(capsys, "-f", str(NIGHTLY), "--trace", str(NIGHTLY_TRACE), "--at", at)
    bids, reports = out["groups"]
    assert bids["handoff"] == {"owner": owner, "sentence": sentence}
    assert reports["summary"] == "skip: true: autozero never reads nor scales it"


def body_with(status: dict[str, Any], annotations: dict[str, str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = yaml.safe_load(PER_50.read_text())
    if annotations:
        body["metadata"]["annotations"] = annotations
    body["status"] = status
    return body


NOW = datetime(2026, 11, 24, 9, 12, tzinfo=UTC)


def test_a_refused_policy_explains_each_group_in_one_line() -> None:
    refused = {
        "conditions": [
            {
                "type": "Ready",
                "status": "False",
                "reason": "TargetForbidden",
                "message": "consumers: Deployment kube-system/x is outside shop",
            }
        ]
    }
    out = explain(evidence_of(body_with(refused), [], now=NOW))
    assert out["notes"] == [
        "the policy is not served: TargetForbidden: consumers: Deployment kube-system/x is "
        "outside shop"
    ]
    assert out["groups"] == [
        {
            "group": "consumers",
            "state": "unserved",
            "summary": "not decided: the policy is not served (TargetForbidden: consumers: "
            "Deployment kube-system/x is outside shop)",
            "lines": [],
        }
    ]


def test_a_status_with_recommendations_says_when_the_window_ends() -> None:
    decision = {
        "time": "2026-11-24T09:11:45Z",
        "group": "consumers",
        "profile": "default",
        "action": "Hold",
        "replicas": {"before": 20, "after": 20},
        "reason": "Stabilized",
        "message": "scale-in to 9 held at 20",
        "pending": 420,
        "inFlight": 20,
        "failing": [],
        "recommended": 9,
        "rules": [],
        "nextEvaluation": None,
    }
    status = {
        "conditions": [{"type": "Ready", "status": "True", "reason": "Evaluated", "message": ""}],
        "groups": [
            {
                "name": "consumers",
                "lastDecision": decision,
                "recommendations": {
                    "highs": [
                        {"time": "2026-11-24T09:09:45Z", "replicas": 20},
                        {"time": "2026-11-24T09:11:45Z", "replicas": 9},
                    ],
                    "lows": [{"time": "2026-11-24T09:11:45Z", "replicas": 9}],
                },
            }
        ],
    }
    (group,) = explain(evidence_of(body_with(status), [], now=NOW))["groups"]
    (window,) = group["stabilization"]
    assert (window["holdsAt"], window["until"]) == (20, "2026-11-24T09:14:45Z")
    del status["groups"][0]["recommendations"]  # an older operator's status
    (group,) = explain(evidence_of(body_with(status), [], now=NOW))["groups"]
    (window,) = group["stabilization"]
    assert (window["holds"], window["until"]) == (True, None)
    assert "when it ends is not recorded in this status" in window["sentence"]


@pytest.mark.parametrize(
    ("args", "error"),
    [
        pytest.param([], "name a POLICY, or explain offline", id="nothing"),
        pytest.param(["p", "-f", "x.yaml"], "either POLICY", id="both"),
        pytest.param(["-f", "x.yaml"], "-f needs --trace CSV and --at TIME", id="no-trace"),
        pytest.param(["p", "--at", "now"], "--at is for offline explanations", id="at-live"),
    ],
)
def test_usage_errors_exit_2(
    args: list[str], error: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["explain", *args]) == 2
    assert error in capsys.readouterr().err


WARM = """
apiVersion: autozero.dev/v1alpha1
kind: ScalingPolicy
metadata: {name: warm, namespace: batch}
spec:
  metrics:
    - name: backlog
      redis: {url: "redis://127.0.0.1:1/0", key: jobs}
  groups:
    - name: workers
      target:
        gce:
          project: acme
          zone: europe-west1-c
          instanceGroupManager: warm
          standby: {mode: Suspend, size: 3}
      capacity: {minimum: 0, maximum: 5, default: 2}
      activation: {metric: backlog, idleFor: 5m}
"""


@pytest.mark.parametrize(
    ("replicas", "finishing", "sentence"),
    [
        pytest.param(
            {"current": 0, "desired": 0, "suspended": 3, "stopped": 0},
            None,
            "standby pool (Suspend, size 3): 3 suspended beside 0 running; a wake resumes 2 of "
            "them before creating any",
            id="asleep",
        ),
        pytest.param(
            {"current": 1, "desired": 1, "suspended": 2, "stopped": 0},
            2,
            "standby pool (Suspend, size 3): 2 suspended beside 1 running; Sleep keeps up to 3 "
            "of them suspended, deletes the rest; a scale-out to 2 was under way (`finishing`): "
            "a restart finishes it",
            id="half-woken",
        ),
        pytest.param(
            {"current": 2, "desired": 2},
            None,
            "standby pool (Suspend, size 3): 0 suspended beside 2 running; Sleep keeps up to 3 "
            "of them suspended, deletes the rest",
            id="awake-pool-empty",
        ),
    ],
)
def test_a_gce_group_with_standby_shows_its_pool_from_the_status(
    replicas: dict[str, int], finishing: int | None, sentence: str
) -> None:
    count = replicas["current"]
    decision = {
        "time": "2026-11-24T09:11:45Z",
        "group": "workers",
        "profile": "default",
        "action": "Hold",
        "replicas": {"before": count, "after": count},
        "reason": "Asleep" if count == 0 else "NoRules",
        "message": "-",
        "rules": [],
        "failing": [],
        "nextEvaluation": None,
    }
    group: dict[str, Any] = {"name": "workers", "lastDecision": decision, "replicas": replicas}
    if finishing is not None:
        group["finishing"] = finishing
    body = yaml.safe_load(WARM) | {"status": {"groups": [group]}}
    (explained,) = explain(evidence_of(body, [], now=NOW))["groups"]
    assert explained["standby"]["sentence"] == sentence
    assert {"topic": "standby", "text": sentence} in explained["lines"]


def test_a_group_without_standby_has_no_pool_line() -> None:
    status = {"groups": [{"name": "consumers", "lastDecision": {"reason": "Asleep"}}]}
    body = body_with(status)
    body["status"]["groups"][0]["lastDecision"] |= {
        "action": "Hold",
        "replicas": {"before": 0, "after": 0},
        "message": "-",
        "rules": [],
        "failing": [],
        "profile": "default",
        "time": "2026-11-24T09:11:45Z",
    }
    (explained,) = explain(evidence_of(body, [], now=NOW))["groups"]
    assert explained["standby"] is None
    assert all(line["topic"] != "standby" for line in explained["lines"])
