"""The chaos campaign's judge (benchmarks/chaos_invariants.py) on hand-made evidence: the groups
told apart in each log, and the invariants judged per group."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from chaos_invariants import (
    Evidence,
    Resize,
    audit_resizes,
    converged,
    emulator_resizes,
    judge,
)
from chaos_report import Fault, Report


def evidence(**fields: Any) -> Evidence:
    defaults: dict[str, Any] = {
        "jobs": {},
        "events": [],
        "resizes": [],
        "reads_failed": [],
        "samples": [],
        "evaluations": [],
        "calls": [],
        "serving": {"operator": 0.0},
    }
    return Evidence(**(defaults | fields))


def invariants(found: Evidence) -> list[str]:
    report = Report(seed=0)
    judge(found, report)
    return [v.invariant for v in report.violations]


@pytest.mark.parametrize(
    ("failed", "group", "violated"),
    [
        pytest.param(frozenset({"sts"}), "sts", True, id="rabbitmq-restart-sts-scaled-down"),
        pytest.param(frozenset({"sts"}), "dep", False, id="rabbitmq-restart-dep-scaled-down"),
        pytest.param(frozenset({"dep", "mig-run"}), "mig-run", True, id="redis-cut-mig-run"),
        pytest.param(frozenset({"dep", "mig-run"}), "sts", False, id="redis-cut-sts"),
    ],
)
def test_a_scale_down_is_judged_against_its_own_groups_failing_reads(
    failed: frozenset[str], group: str, violated: bool
) -> None:
    resizes = [Resize(1.0, group, 2, "autozero", "up"), Resize(12.0, group, 1, "autozero", "down")]
    found = invariants(evidence(resizes=resizes, reads_failed=[(10.0, 11.5, failed)]))
    assert ("no scale-down during a failing read" in found) is violated


def test_the_audit_log_tells_the_workloads_and_the_writers_apart() -> None:
    def line(resource: str, agent: str, replicas: int) -> str:
        return json.dumps(
            {
                "stage": "ResponseComplete",
                "verb": "patch",
                "responseStatus": {"code": 200},
                "requestObject": {"spec": {"replicas": replicas}},
                "objectRef": {"resource": resource, "subresource": "scale", "name": "x"},
                "requestReceivedTimestamp": "2026-11-30T12:00:00.000000Z",
                "userAgent": agent,
            }
        )

    found = audit_resizes(
        [
            line("deployments", "autozero/0.1 (operator)", 1),
            line("statefulsets", "autozero/0.1 (operator)", 2),
            line("deployments", "chaos-campaign", 3),
            line("deployments", "kube-controller-manager/v1.31.0 (linux/amd64)", 2),
        ]
    )
    assert [(r.group, r.actor, r.size) for r in found] == [
        ("dep", "autozero", 1),
        ("sts", "autozero", 2),
        ("dep", "hand", 3),
        ("dep", "controller", 2),
    ]


@pytest.mark.parametrize(
    ("sizes", "ok"),
    [
        pytest.param({"hpa": 1, "dep": 1}, True, id="awake-with-its-hpa"),
        pytest.param({"hpa": 0, "dep": 0}, True, id="asleep-without"),
        pytest.param({"hpa": 0, "dep": 1}, False, id="awake-hpa-missing"),
        pytest.param({"hpa": 1, "dep": 0}, False, id="asleep-hpa-left"),
        pytest.param({"autoscaler": 1, "mig": 0}, False, id="asleep-gce-autoscaler-left"),
    ],
)
def test_convergence_wants_each_handoff_exactly_while_its_group_is_awake(
    sizes: dict[str, int], ok: bool
) -> None:
    groups = {"mig": 0, "dep": 0, "sts": 0, "mig-run": 0}
    assert converged(groups | sizes, dict.fromkeys(groups, 0)) is ok


def test_a_duplicated_resize_is_one_migs_two_resizes_to_one_size() -> None:
    def call(group: str, size: int, at: float) -> dict[str, Any]:
        return {
            "api": "instanceGroupManagers.resize",
            "status": 200,
            "path": f"/compute/v1/projects/p/zones/z/instanceGroupManagers/{group}/resize",
            "query": f"size={size}&requestId=r{at}",
            "at": at,
        }

    resizes = emulator_resizes(
        [call("mig", 1, 1.0), call("mig-run", 1, 2.0), call("mig-run", 1, 3.0)], lambda _: False
    )
    assert [r.group for r in resizes] == ["mig", "mig-run", "mig-run"]
    assert invariants(evidence(resizes=resizes)) == ["no duplicated resize"]


def test_a_redelivered_job_counts_once_processed_and_each_run_is_judged() -> None:
    """RabbitMQ redelivers a job whose ack a broker restart lost: it runs twice, and a scale to 0
    while its second run runs is a violation though its first run had ended."""
    job = "sts/abc"
    events = [
        {"event": "start", "job": job, "worker": "sts-1", "at": 1.0},
        {"event": "end", "job": job, "worker": "sts-1", "at": 2.0},
        {"event": "start", "job": job, "worker": "sts-2", "at": 3.0},
        {"event": "end", "job": job, "worker": "sts-2", "at": 5.0},
    ]
    quiet = evidence(jobs={job: "sts"}, events=events)
    assert invariants(quiet) == []
    zero = Resize(4.0, "sts", 0, "autozero", "to 0")
    assert invariants(evidence(jobs={job: "sts"}, events=events, resizes=[zero])) == [
        "never 0 while a job runs"
    ]


@pytest.mark.parametrize(
    ("resizes", "calls", "violated"),
    [
        pytest.param([], [], ["no policy starved"], id="nothing-written-meanwhile-is-starved"),
        pytest.param(
            [Resize(11.5, "mig", 0, "autozero", "emulator: resize size=0")],
            [],
            [],
            id="its-own-resize-meanwhile-is-busy",
        ),
        pytest.param(
            [],
            [{"api": "autoscalers.delete", "at": 11.0}],
            [],
            id="its-own-autoscaler-deletion-meanwhile-is-busy",
        ),
        pytest.param(
            [Resize(11.5, "dep", 0, "autozero", "audit: replicas=0")],
            [],
            ["no policy starved"],
            id="another-groups-write-does-not-count",
        ),
    ],
)
def test_a_late_evaluation_is_starvation_unless_the_policy_was_writing(
    resizes: list[Resize], calls: list[dict[str, Any]], violated: list[str]
) -> None:
    scrapes = [
        (at, "operator", {"chaos/gce": last, "chaos/dep": at, "chaos/sts": at})
        for at, last in [(9.0, 9.0), (10.0, 10.0), (12.5, 10.0)]  # gce 2.5 s old at 12.5
    ]
    found = evidence(evaluations=scrapes, resizes=resizes, calls=calls)
    assert invariants(found) == violated


def job_run(job: str, start: float, end: float | None) -> list[dict[str, Any]]:
    found = [{"job": job, "worker": "w-1", "event": "start", "at": start}]
    if end is not None:
        found.append({"job": job, "worker": "w-1", "event": "end", "at": end})
    return found


@pytest.mark.parametrize(
    ("group", "shown_at", "end", "violated"),
    [
        pytest.param("sts", None, 12.0, False, id="sts-job-its-source-never-showed"),
        pytest.param("sts", 9.6, 12.0, False, id="sts-job-shown-within-one-read-of-the-write"),
        pytest.param("sts", 8.5, 12.0, True, id="sts-job-shown-in-time"),
        pytest.param("sts", None, None, True, id="sts-job-cut-short"),
        pytest.param("dep", None, 12.0, True, id="dep-source-without-lag"),
    ],
)
def test_a_scale_to_0_under_a_job_is_excused_only_if_its_lagging_source_could_not_show_it(
    group: str, shown_at: float | None, end: float | None, violated: bool
) -> None:
    """The management API shows a job taken from RabbitMQ late: a scale to 0 at 10.0 under a
    job begun at 8.0 breaks invariant 1 only if the API showed work in time for the policy's
    next read (before 10.0 - 1.5), or if the job never finished."""
    seen = [(at, 0) for at in (8.0, 8.5, 9.0, 9.6)]
    if shown_at is not None:
        seen = [(at, 1 if at == shown_at else n) for at, n in seen]
    resizes = [Resize(1.0, group, 1, "autozero", "up"), Resize(10.0, group, 0, "autozero", "0")]
    report = Report(seed=0)
    judge(
        evidence(events=job_run(f"{group}/a", 8.0, end), resizes=resizes, seen={"sts": seen}),
        report,
    )
    found = [v.invariant for v in report.violations]
    assert ("never 0 while a job runs" in found) is violated
    counted = report.evidence["scaled to 0 under a job begun within its source's lag (it finished)"]
    assert counted == (0 if violated or group != "sts" else 1)


@pytest.mark.parametrize(
    ("converged_at", "violated"),
    [
        pytest.param(22.5, False, id="within-3-intervals-of-the-later-serving-again"),
        pytest.param(23.5, True, id="after-them"),
    ],
)
def test_a_fault_judged_with_the_next_keeps_its_own_end(
    converged_at: float, violated: bool
) -> None:
    """A sharded replica killed at 5 has its policies served again at 20 (its Lease); a second
    fault from 10 to 12 does not make the first one's groups due at 15."""
    groups = dict.fromkeys(("mig", "dep", "sts", "mig-run"), 1)
    samples = [
        (at, groups | {"dep": int(at >= converged_at)}, dict.fromkeys(groups, 1))
        for at in [x / 2 for x in range(10, 60)]
    ]
    report = Report(seed=0)
    report.faults = [
        Fault("operator-sigkill", 5.0, ended=6.0, serving_again=20.0),
        Fault("policy-edit", 10.0, ended=12.0, serving_again=12.0),
    ]
    judge(evidence(samples=samples), report)
    found = [v.invariant for v in report.violations]
    assert ("converged within 3 intervals" in found) is violated
    assert report.faults[0].judged_with_next


def pool_call(verb: str, at: float, group: str = "mig-run") -> dict[str, Any]:
    return {
        "api": f"instanceGroupManagers.{verb}Instances",
        "method": "POST",
        "status": 200,
        "path": f"/compute/v1/projects/p/zones/z/instanceGroupManagers/{group}/{verb}Instances",
        "query": f"requestId=r{at}",
        "at": at,
    }


def resize_call(size: int, at: float, group: str = "mig-run") -> dict[str, Any]:
    return {
        "api": "instanceGroupManagers.resize",
        "method": "POST",
        "status": 200,
        "path": f"/compute/v1/projects/p/zones/z/instanceGroupManagers/{group}/resize",
        "query": f"size={size}&requestId=r{at}",
        "at": at,
    }


@pytest.mark.parametrize("verb", ["suspend", "stop"])
def test_a_move_into_the_pool_is_the_group_going_to_0_under_a_job(verb: str) -> None:
    """`--standby`: a sleep whose pool takes every VM sends no resize at all; suspending or
    stopping VMs under a running job breaks invariant 1 as a resize to 0 would."""
    calls = [resize_call(2, 1.0), pool_call(verb, 10.0)]
    moves = emulator_resizes(calls, lambda _: False)
    assert [(r.size, r.pool) for r in moves] == [(2, False), (0, True)]
    under_a_job = evidence(resizes=moves, events=job_run("mig-run/a", 9.0, 12.0))
    assert invariants(under_a_job) == ["never 0 while a job runs"]
    assert invariants(evidence(resizes=moves, events=job_run("mig-run/a", 7.0, 9.5))) == []


def test_a_pool_move_then_the_resize_to_0_is_no_duplicate_and_is_judged_against_failing_reads() -> (
    None
):
    """Suspend 2 of 3, then resize 1 -> 0: one sleep, not two resizes to one size; during a
    failing read both are scale-downs from 3."""
    moves = emulator_resizes(
        [resize_call(3, 1.0), pool_call("suspend", 10.0), resize_call(0, 10.5)], lambda _: False
    )
    assert invariants(evidence(resizes=moves)) == []
    failing = [(9.0, 10.2, frozenset({"mig-run"}))]
    assert (
        invariants(evidence(resizes=moves, reads_failed=failing))
        == ["no scale-down during a failing read"] * 2
    )


def test_a_pools_writes_are_the_policy_served_not_starved() -> None:
    """A pass waiting for its resume operations is busy, not starved (the runner's `run`)."""
    scrapes = [(at, "runner", {"chaos/run": last}) for at, last in [(9.0, 9.0), (12.5, 10.0)]]
    found = evidence(evaluations=scrapes, serving={"operator": 0.0, "runner": 0.0})
    assert invariants(found) == ["no policy starved"]
    busy = evidence(
        evaluations=scrapes,
        serving={"operator": 0.0, "runner": 0.0},
        calls=[pool_call("resume", 11.0)],
    )
    assert invariants(busy) == []


def test_a_wake_by_resize_after_sleeps_through_the_pool_is_no_duplicate() -> None:
    """Chaos, seed 24 --standby: woken to 1 by a resize, then asleep into the pool and woken
    from it (resumes, no resize) until the pool was empty: the next resize to 1 is a new wake."""
    calls = [resize_call(1, 1.0), pool_call("suspend", 5.0), resize_call(1, 9.0)]
    assert invariants(evidence(resizes=emulator_resizes(calls, lambda _: False))) == []
    twice = [resize_call(1, 1.0), resize_call(1, 9.0)]
    assert invariants(evidence(resizes=emulator_resizes(twice, lambda _: False))) == [
        "no duplicated resize"
    ]
