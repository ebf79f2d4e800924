"""The status keeps what a restarted operator needs: recent scale events for the rate policies."""

from __future__ import annotations

from datetime import timedelta

from autozero.controller.status import build_status, restore_states
from autozero.engine.decide import decide
from autozero.engine.readings import Reading
from autozero.engine.spec import Behavior
from autozero.engine.state import GroupState
from autozero.runtime.report import CycleReport, GroupReport
from support.engine import T0, group, rates, target

SPEC = group(
    [target("q", average_value=50)],
    activation=None,
    maximum=30,
    minimum=1,
    behavior=Behavior(scale_up=rates(("Pods", 4, 60))),
)


def _status(state: GroupState, current: int, backlog: float) -> dict[str, object]:
    spec = SPEC
    decision = decide(spec, state, {"q": Reading(backlog)}, now=T0, current=current).decision
    report = CycleReport("p", T0, (GroupReport("workers", decision, acted=True),), {})
    return build_status(report, {"workers": state}, generation=1, paused=False, previous={})


def test_recent_scale_events_survive_a_restart_to_the_microsecond() -> None:
    at = T0 - timedelta(seconds=20, microseconds=123)
    state = GroupState().after_scale(at=at, was=1, now_is=5)
    status = _status(state, 5, 1000)
    (group_status,) = status["groups"]  # type: ignore[misc]
    assert group_status["scaleEvents"] == [{"time": "2026-11-22T23:59:39.999877Z", "change": 4}]
    restored = restore_states(status)["workers"]
    assert restored.scale_events == state.scale_events


def test_a_restored_state_limits_the_rate_as_the_original_did() -> None:
    spec = SPEC
    state = GroupState().after_scale(at=T0 - timedelta(seconds=20), was=1, now_is=5)
    restored = restore_states(_status(state, 5, 1000))["workers"]
    reads = {"q": Reading(1000)}
    # 1 -> 5 twenty seconds ago: 4 Pods per minute allows nothing more until it is a minute old.
    for kept in (state, restored):
        assert decide(spec, kept, reads, now=T0, current=5).decision.target == 5
    assert decide(spec, GroupState(), reads, now=T0, current=5).decision.target == 9


def test_target_rules_in_the_status_say_their_target_and_the_count_they_want() -> None:
    status = _status(GroupState(), 4, 1000)
    (group_status,) = status["groups"]  # type: ignore[misc]
    (rule,) = group_status["lastDecision"]["rules"]
    assert rule == {  # the shape simulate --output jsonl and run --output json print too
        "rule": 0,
        "metric": "q",
        "target": {"averageValue": 50, "tolerance": 0.1},
        "wants": 20,
        "observed": 1000,
        "status": "Fired",
        "fired": True,
    }
    assert "scaleEvents" not in group_status


def test_the_rules_recent_recommendations_are_in_the_status_for_explain() -> None:
    """`autozero explain` reads them to say when a stabilization window ends; a restart does
    not restore them (see `restore_states`)."""
    state = GroupState(highs=((T0.timestamp() - 60, 9),), lows=((T0.timestamp() - 60, 9),))
    (group_status,) = _status(state, 9, 100)["groups"]  # type: ignore[misc]
    assert group_status["recommendations"] == {
        "highs": [{"time": "2026-11-22T23:59:00Z", "replicas": 9}],
        "lows": [{"time": "2026-11-22T23:59:00Z", "replicas": 9}],
    }
    assert restore_states(_status(state, 9, 100))["workers"].highs == ()


def test_a_standby_pool_is_in_the_status_and_the_metrics_beside_the_running_count() -> None:
    from autozero.runtime.metrics import Metrics
    from autozero.targets.base import Observed
    from prometheus_client import generate_latest

    decision = decide(SPEC, GroupState(), {"q": Reading(0)}, now=T0, current=0).decision
    pooled = Observed(0, suspended=3, standby_delay=0)
    report = CycleReport(
        "p", T0, (GroupReport("workers", decision, pooled, acted=True),), {}, frozenset({"workers"})
    )
    status = build_status(report, {}, generation=1, paused=False, previous={})
    (group_status,) = status["groups"]  # type: ignore[misc]
    assert group_status["replicas"]["suspended"] == 3
    assert group_status["replicas"]["stopped"] == 0
    metrics = Metrics()
    metrics.record("ns", report, 0.1)
    text = generate_latest(metrics.registry).decode()
    assert 'group="workers",kind="suspended",namespace="ns",policy="p"} 3.0' in text
    # A kind without pools (standby_delay None) has no such series, nor a status field.
    bare = CycleReport(
        "p",
        T0,
        (GroupReport("workers", decision, Observed(0), acted=True),),
        {},
        frozenset({"workers"}),
    )
    (plain,) = build_status(bare, {}, generation=1, paused=False, previous={})["groups"]  # type: ignore[misc]
    assert "suspended" not in plain["replicas"]
    other = Metrics()
    other.record("ns", bare, 0.1)
    assert 'kind="suspended"' not in generate_latest(other.registry).decode()


def test_a_scale_out_under_way_survives_a_restart() -> None:
    """Its count is in the status before its first write (`begun_status`), in every status
    written while it is unfinished, in the state file, and gone once it is done."""
    from autozero.controller.status import begun_status

    state = GroupState(finishing=3)
    before = _status(GroupState(), 1, 0)
    begun = begun_status(before, {"workers": state})
    assert begun["groups"][0]["finishing"] == 3  # type: ignore[index]
    assert before["groups"][0].get("finishing") is None  # type: ignore[index]
    assert restore_states(begun)["workers"].finishing == 3
    assert begun_status({}, {"workers": state})["groups"] == [{"name": "workers", "finishing": 3}]
    assert restore_states(_status(state, 1, 0))["workers"].finishing == 3
    assert GroupState.from_json(state.to_json()).finishing == 3
    done = state.after_scale(at=T0, was=1, now_is=3)
    assert done.finishing is None
    assert "finishing" not in begun_status(begun, {"workers": done})["groups"][0]  # type: ignore[index]
