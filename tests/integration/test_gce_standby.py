"""The GCE target's standby pool against the emulator, through the real google-api-python-client:
sleep into the pool, wake from it, wake larger than it, a pool VM lost, faults while resuming, a
crash between two writes, and the autoscaler handoff around it all."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from autozero.targets.base import Change, Observed, SleepWithdrawn, Standby
from autozero.targets.compute import Compute, Retry
from autozero.targets.gce import GCEAutoscalerHandoff, GCEGroup, GCETarget, autoscaler_name
from gce_emulator import EmulatorServer
from testground.gce import create_mig
from testground.process import wait_for

P, ZONE, REGION = "acme", "europe-west1-c", "europe-west1"
POOL = Standby(size=2)
HANDOFF = GCEAutoscalerHandoff(
    min_replicas=1,
    max_replicas=6,
    cool_down_period=timedelta(seconds=180),
    cpu_utilization_target=0.8,
)


def client(emulator: EmulatorServer, attempts: int = 6) -> Compute:
    return Compute.build(
        endpoint=emulator.api_endpoint, retry=Retry(attempts=attempts, base=0.01, cap=0.05)
    )


def make(emulator: EmulatorServer, target: GCETarget) -> GCEGroup:
    compute = client(emulator)
    create_mig(
        compute.service, P, target.instance_group_manager, zone=target.zone, region=target.region
    )
    return GCEGroup(target.instance_group_manager, target, compute)


def vms(group: GCEGroup) -> dict[str, str]:
    """Each VM's name and status."""
    return {row["name"]: row["instanceStatus"] for row in group.managed_instances()}


def settled(group: GCEGroup, running: int, pooled: int, status: str = "SUSPENDED") -> Observed:
    """Wait until the group has `running` VMs up and `pooled` in `status`, nothing under way."""

    def done() -> Observed | None:
        seen = group.observe()
        counts = sorted(vms(group).values())
        wanted = sorted(["RUNNING"] * running + [status] * pooled)
        return seen if seen.stable and counts == wanted else None

    return wait_for(done, timeout=30, interval=0.05)


def pooled(group: GCEGroup, status: str = "SUSPENDED") -> set[str]:
    return {name for name, state in vms(group).items() if state == status}


@pytest.mark.parametrize(
    ("target", "status", "verbs"),
    [
        pytest.param(
            GCETarget(P, "warm", zone=ZONE, standby=POOL),
            "SUSPENDED",
            ("suspend", "resume"),
            id="zonal-suspend",
        ),
        pytest.param(
            GCETarget(P, "warm", region=REGION, standby=Standby(size=2, stopped=True)),
            "TERMINATED",
            ("stop", "start"),
            id="regional-stop",
        ),
    ],
)
def test_sleep_into_the_pool_and_wake_from_it(
    gce_emulator: EmulatorServer, target: GCETarget, status: str, verbs: tuple[str, str]
) -> None:
    group = make(gce_emulator, target)
    assert group.apply(Change(3), group.observe()).steps == ("resize 0 -> 3",)
    awake = settled(group, 3, 0, status)
    first = set(vms(group))

    slept = group.apply(Change(0), awake)
    assert slept.steps == (f"{verbs[0]} 2 of 2 VMs (running 3 -> 1)", "resize 1 -> 0")
    kind = "stopped" if status == "TERMINATED" else "suspended"
    past = {"suspend": "suspended", "resume": "resumed", "stop": "stopped", "start": "started"}
    assert slept.pool == f"{past[verbs[0]]} 2 into the pool (2 {kind}), deleted 1"
    asleep = settled(group, 0, 2, status)
    assert (asleep.replicas, asleep.suspended + asleep.stopped) == (0, 2)
    kept = pooled(group, status)
    assert kept < first  # the pool holds VMs that ran, not new ones

    woke = group.apply(Change(2), asleep)
    assert woke.steps == (f"{verbs[1]} 2 of 2 VMs (running 0 -> 2)",)
    assert woke.pool == f"{past[verbs[1]]} 2 from the {kind} pool (0 left)"
    settled(group, 2, 0, status)
    assert set(vms(group)) == kept  # the same VMs, none created


def test_a_wake_larger_than_the_pool_resumes_it_then_creates_the_rest(
    gce_emulator: EmulatorServer,
) -> None:
    group = make(gce_emulator, GCETarget(P, "warm", zone=ZONE, standby=POOL))
    group.apply(Change(2), group.observe())
    group.apply(Change(0), settled(group, 2, 0))
    asleep = settled(group, 0, 2)
    kept = pooled(group)
    woke = group.apply(Change(5), asleep)
    assert woke.steps == ("resume 2 of 2 VMs (running 0 -> 2)", "resize 2 -> 5")
    assert woke.pool == "resumed 2 from the suspended pool (0 left), created 3"
    settled(group, 5, 0)
    assert kept < set(vms(group))


def test_the_handoff_wraps_the_pool(gce_emulator: EmulatorServer) -> None:
    group = make(gce_emulator, GCETarget(P, "warm", zone=ZONE, standby=POOL))
    gce_emulator.control(
        "cpu", {"project": P, "location": ZONE, "group": "warm", "utilization": 0.8}
    )
    group.apply(Change(3, HANDOFF), group.observe())
    awake = settled(group, 3, 0)
    assert awake.autoscaler == autoscaler_name("warm")
    slept = group.apply(Change(0, HANDOFF), awake)
    assert slept.steps == (
        f"delete autoscaler {autoscaler_name('warm')}",
        "suspend 2 of 2 VMs (running 3 -> 1)",
        "resize 1 -> 0",
    )
    asleep = settled(group, 0, 2)
    assert asleep.autoscaler is None
    woke = group.apply(Change(3, HANDOFF), asleep)
    assert woke.steps == (
        "resume 2 of 2 VMs (running 0 -> 2)",
        "resize 2 -> 3",
        f"create autoscaler {autoscaler_name('warm')}",
    )
    assert settled(group, 3, 0).autoscaler == autoscaler_name("warm")


def test_a_pool_vm_deleted_underneath_is_replaced_by_a_new_one(
    gce_emulator: EmulatorServer,
) -> None:
    group = make(gce_emulator, GCETarget(P, "warm", zone=ZONE, standby=POOL))
    group.apply(Change(2), group.observe())
    group.apply(Change(0), settled(group, 2, 0))
    asleep = settled(group, 0, 2)
    lost, survivor = sorted(pooled(group))
    # The group recreates the lost VM; slowly here, so the wake finds it still booting.
    gce_emulator.control("settings", {"instanceBootSeconds": 30})
    gce_emulator.control(
        "delete-instance", {"project": P, "location": ZONE, "group": "warm", "instance": lost}
    )
    wait_for(lambda: lost not in vms(group), timeout=10, interval=0.05)
    woke = group.apply(Change(2), asleep)
    assert woke.steps == ("resume 1 of 2 VMs (running 0 -> 1)", "resize 1 -> 2")
    assert woke.pool == "resumed 1 from the suspended pool (1 left), created 1"
    seen = group.observe()
    assert (seen.replicas, seen.suspended) == (2, 1)  # the pool still wants its replacement
    assert vms(group)[survivor] in ("STAGING", "RUNNING")
    gce_emulator.control("settings", {"instanceBootSeconds": 0.2})
    settled(group, 2, 1)


def test_a_wake_from_the_pool_through_thirty_percent_429_and_503(
    gce_emulator: EmulatorServer,
) -> None:
    group = make(gce_emulator, GCETarget(P, "warm", zone=ZONE, standby=Standby(size=3)))
    group.apply(Change(3), group.observe())
    group.apply(Change(0), settled(group, 3, 0))
    asleep = settled(group, 0, 3)
    kept = pooled(group)
    gce_emulator.control("requests", method="DELETE")
    gce_emulator.control("faults", {"rate": 0.3, "codes": [429, 503], "seed": 4})
    patient = GCEGroup("warm", group.target, client(gce_emulator, attempts=12))
    woke = patient.apply(Change(4), asleep)
    gce_emulator.control("faults", {"rate": 0.0})
    assert woke.steps == ("resume 3 of 3 VMs (running 0 -> 3)", "resize 3 -> 4")
    settled(group, 4, 0)
    assert kept < set(vms(group))
    log = gce_emulator.control("requests", method="GET")["requests"]
    resumes = [r["status"] for r in log if r["api"] == "instanceGroupManagers.resumeInstances"]
    assert resumes[-1] == 200
    assert resumes.count(200) == 1  # retried with the same requestId, applied once
    assert {r["status"] for r in log} & {429, 503}


@pytest.mark.parametrize("stopped", [False, True], ids=["suspend", "stop"])
@pytest.mark.parametrize(
    "work", ["work came: jobs pending=1", None], ids=["work-came-during-the-backoff", "still-idle"]
)
def test_a_sleeps_suspend_refused_asks_the_sources_again_before_it_is_sent_again(
    gce_emulator: EmulatorServer, stopped: bool, work: str | None
) -> None:
    """As a sleep's resize: a suspended VM's job would resume on wake, a stopped one's would not,
    so neither is sent again after a refusal unless the sources, read again, still say idle."""
    group = make(gce_emulator, GCETarget(P, "warm", zone=ZONE, standby=Standby(2, stopped)))
    group.apply(Change(3), group.observe())
    awake = settled(group, 3, 0)
    verb = "stop" if stopped else "suspend"
    asked: list[str] = []

    def recheck() -> str | None:
        asked.append(verb)
        gce_emulator.control("faults", {})  # the burst is over by the next try
        return work

    gce_emulator.control("requests", method="DELETE")
    api = f"instanceGroupManagers.{verb}Instances"
    gce_emulator.control("faults", {"rate": 1.0, "codes": [503], "apis": [api]})
    try:
        if work:
            with pytest.raises(SleepWithdrawn) as raised:
                group.apply(Change(0), awake, recheck)
            assert f"the sleep's {verb} of 2 VMs failed (HTTP 503" in str(raised.value)
            assert f"{work}; left at 3" in str(raised.value)
        else:
            slept = group.apply(Change(0), awake, recheck)
            assert slept.steps == (f"{verb} 2 of 2 VMs (running 3 -> 1)", "resize 1 -> 0")
    finally:
        gce_emulator.control("faults", {})
    # Once after the refusal (not before the first try); still idle, once more before the resize.
    assert len(asked) == (1 if work else 2)
    sent = [
        r for r in gce_emulator.control("requests", method="GET")["requests"] if r["api"] == api
    ]
    assert [r["status"] for r in sent] == ([503] if work else [503, 200])
    assert len({r["query"] for r in sent}) == 1  # one requestId: one decision
    if work:
        assert sorted(vms(group).values()) == ["RUNNING"] * 3
    else:
        settled(group, 0, 2, "TERMINATED" if stopped else "SUSPENDED")


def test_a_crash_between_suspend_and_resize_is_finished_by_the_next_cycle(
    gce_emulator: EmulatorServer,
) -> None:
    target = GCETarget(P, "warm", zone=ZONE, standby=POOL)
    group = make(gce_emulator, target)
    group.apply(Change(4), group.observe())
    settled(group, 4, 0)
    group.to_pool(4, 2)  # the operator dies here, before resizing the rest to 0
    restarted = GCEGroup("warm", target, client(gce_emulator))
    seen = restarted.observe()
    assert (seen.replicas, seen.suspended) == (2, 2)
    finished = restarted.apply(Change(0), seen)
    assert (finished.steps, finished.pool) == (("resize 2 -> 0",), "")
    settled(restarted, 0, 2)


def test_a_crash_between_resume_and_resize_is_finished_by_the_next_cycle(
    gce_emulator: EmulatorServer,
) -> None:
    target = GCETarget(P, "warm", zone=ZONE, standby=POOL)
    group = make(gce_emulator, target)
    group.apply(Change(2), group.observe())
    group.apply(Change(0), settled(group, 2, 0))
    settled(group, 0, 2)
    group.from_pool(0, 2)  # the operator dies here, before resizing to 4
    restarted = GCEGroup("warm", target, client(gce_emulator))
    seen = restarted.observe()
    assert (seen.replicas, seen.suspended) == (2, 0)
    assert restarted.apply(Change(4), seen).steps == ("resize 2 -> 4",)
    settled(restarted, 4, 0)


def test_the_pool_settings_are_written_once(gce_emulator: EmulatorServer) -> None:
    target = GCETarget(P, "warm", zone=ZONE, standby=Standby(size=1, initial_delay=45))
    group = make(gce_emulator, target)
    first = group.apply(Change(0), group.observe())
    assert first.steps == ("set pool: initial delay 45s, suspended 0 -> 0",)
    again = group.observe()
    assert again.standby_delay == 45
    assert group.apply(Change(0), again).steps == ()
    smaller = dataclasses.replace(target, standby=Standby(size=0, initial_delay=45))
    assert GCEGroup("warm", smaller, group.compute).plan(Change(0), again) == ()


def test_without_standby_sleep_deletes_as_before(gce_emulator: EmulatorServer) -> None:
    group = make(gce_emulator, GCETarget(P, "cold", zone=ZONE))
    group.apply(Change(2), group.observe())
    slept = group.apply(Change(0), settled(group, 2, 0))
    assert (slept.steps, slept.pool) == (("resize 2 -> 0",), "")
    settled(group, 0, 0)
    assert group.observe().suspended == 0


def test_vms_still_booting_at_sleep_are_replaced_in_the_pool(
    gce_emulator: EmulatorServer,
) -> None:
    """One VM runs, two are still booting when the group sleeps with room for two in the pool:
    the running one is suspended; a booting one cannot be (the API takes running VMs only), so
    the pool's target is raised by the room left and the group makes a new VM for it, while the
    resize deletes the booting ones. The pool ends as full as if they had finished booting."""
    group = make(gce_emulator, GCETarget(P, "warm", zone=ZONE, standby=POOL))
    group.apply(Change(1), group.observe())
    settled(group, 1, 0)
    (ran,) = vms(group)
    # Long enough a boot that the two are still booting when the group sleeps, just after.
    gce_emulator.control("settings", {"instanceBootSeconds": 5})
    group.apply(Change(3), group.observe())
    booting = {name for name, status in vms(group).items() if status != "RUNNING"}
    assert len(booting) == 2
    assert {vms(group)[n] for n in booting} <= {"PROVISIONING", "STAGING"}
    slept = group.apply(Change(0), group.observe())
    assert slept.steps == (
        "suspend 1 of 2 VMs (running 3 -> 2); pool 1 -> 2 for 1 still booting",
        "resize 2 -> 0",
    )
    assert slept.pool == (
        "suspended 1 into the pool, 1 new for it in place of VMs still booting (2 suspended), "
        "deleted 2"
    )
    asleep = settled(group, 0, 2)
    assert (asleep.replicas, asleep.suspended) == (0, 2)
    kept = pooled(group)
    assert ran in kept  # the one that ran...
    assert not kept & booting  # ... and a new one


def test_a_vm_still_booting_is_refused_by_suspend(gce_emulator: EmulatorServer) -> None:
    """Why autozero does not suspend a booting VM: the API (and the emulator) refuse it."""
    from googleapiclient.errors import HttpError

    group = make(gce_emulator, GCETarget(P, "warm", zone=ZONE, standby=POOL))
    gce_emulator.control("settings", {"instanceBootSeconds": 30})
    group.apply(Change(1), group.observe())
    (row,) = group.managed_instances()
    assert row["instanceStatus"] in ("PROVISIONING", "STAGING")
    request = group.compute.service.instanceGroupManagers().suspendInstances(
        project=P, zone=ZONE, instanceGroupManager="warm", body={"instances": [row["instance"]]}
    )
    with pytest.raises(HttpError) as refused:
        request.execute()
    gce_emulator.control("settings", {"instanceBootSeconds": 0.2})
    assert refused.value.resp.status == 400
    assert "only RUNNING instances can be" in str(refused.value)
