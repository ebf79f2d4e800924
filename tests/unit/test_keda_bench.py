"""The cheap pieces of the KEDA comparison benchmark: its fleets and its arithmetic (the run itself
needs KEDA's operator, built only for the benchmark)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from autozero.policy.parse import parse_policy
from keda_fleet import (
    STREAM_GROUP,
    Mode,
    autozero_fleet,
    keda_fleet,
    list_key,
    stream_fleets,
    stream_key,
)
from keda_measure import (
    commands_per_minute,
    commandstats_calls,
    latency_cell,
    rates_cell,
    timeline,
)


def test_each_member_of_both_fleets_reads_its_own_list() -> None:
    names = ["w-0", "w-1"]
    keda = keda_fleet(names, "127.0.0.1:7000", Mode(30), 30)
    policies = autozero_fleet(names, "127.0.0.1:7001", Mode(15, push=True), 30)
    assert [o["spec"]["triggers"][0]["metadata"]["listName"] for o in keda] == [
        "jobs:w-0",
        "jobs:w-1",
    ]
    assert [p["spec"]["metrics"][0]["redis"]["key"] for p in policies] == [
        list_key(n) for n in names
    ]
    assert [p["spec"]["groups"][0]["target"]["kubernetes"]["name"] for p in policies] == names
    redis = policies[1]["spec"]["metrics"][0]["redis"]
    assert redis["url"] == "redis://127.0.0.1:7001/0"
    assert redis["configureNotifications"] is True
    group = policies[1]["spec"]["groups"][0]
    assert group["activation"]["idleFor"] == "30s"
    assert policies[1]["spec"]["pollingInterval"] == "15s"


def test_the_converted_policies_are_valid_and_carry_keda_fallback() -> None:
    fallback = {"failureThreshold": 3, "replicas": 2}
    (policy,) = autozero_fleet(["o"], "127.0.0.1:7001", Mode(1), 30, fallback=fallback)
    parse_policy(policy)  # raises PolicyInvalid with every error
    assert policy["spec"]["groups"][0]["fallback"] == fallback
    assert "configureNotifications" not in policy["spec"]["metrics"][0]["redis"]


def test_redis_command_rates_leave_out_the_readers_own_info() -> None:
    before = commandstats_calls({"cmdstat_llen": {"calls": 10}, "cmdstat_info": {"calls": 4}})
    after = commandstats_calls(
        {
            "cmdstat_llen": {"calls": 40},
            "cmdstat_info": {"calls": 5},
            "cmdstat_config|get": {"calls": 1},
        }
    )
    assert commands_per_minute(before, after, 30.0) == {"config|get": 2.0, "llen": 60.0}


def test_a_restarted_redis_is_an_error_not_a_negative_rate() -> None:
    with pytest.raises(ValueError, match="counters went back"):
        commands_per_minute({"llen": 50, "info": 3}, {"llen": 2, "info": 1}, 60.0)


@pytest.mark.parametrize(
    ("rates", "cell"),
    [
        pytest.param({}, "0", id="nothing"),
        pytest.param({"get a": 3.0, "list b": 1.0}, "4.0 (get a 3.0, list b 1.0)", id="two"),
        pytest.param(
            {"a": 1.0, "b": 1.0, "c": 1.0, "d": 1.0, "e": 1.0},
            "5.0 (a 1.0, b 1.0, c 1.0, d 1.0, +1 more)",
            id="more-than-four",
        ),
    ],
)
def test_rates_cell(rates: dict[str, float], cell: str) -> None:
    assert rates_cell(rates) == cell


def test_timeline_says_each_change_after_the_origin() -> None:
    assert timeline([(100.0, 1), (145.2, 2), (230.0, 0)], 100.0) == "1, 2 at +45 s, 0 at +130 s"
    assert timeline([], 0.0) == "no record"


def test_latency_cell_says_how_many_trials_never_woke() -> None:
    values = [float(v) for v in range(1, 21)]
    assert latency_cell(values, 20) == "10.50 / 20.00 s"  # p99 by nearest rank: the largest of 20
    assert latency_cell(values[:18], 20) == "9.50 / 18.00 s (18 of 20 trials woke)"
    assert latency_cell([], 20) == "no wake seen"


def test_the_stream_members_read_a_group_on_their_own_stream() -> None:
    keda, policies = stream_fleets(
        ["s-0"], "127.0.0.1:7000", "127.0.0.1:7001", Mode(30), Mode(15), 30
    )
    (trigger,) = keda[0]["spec"]["triggers"]
    assert trigger["type"] == "redis-streams"
    assert trigger["metadata"]["stream"] == stream_key("s-0") == "stream:s-0"
    assert trigger["metadata"]["consumerGroup"] == STREAM_GROUP
    (policy,) = policies
    parse_policy(policy)
    redis = policy["spec"]["metrics"][0]["redis"]
    assert redis == {
        "key": "stream:s-0",
        "type": "stream",
        "url": "redis://127.0.0.1:7001/0",
        "consumerGroup": STREAM_GROUP,
    }
    assert policy["spec"]["groups"][0]["target"]["kubernetes"]["name"] == "s-0"
