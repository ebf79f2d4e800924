"""The GCE target against the Compute Engine emulator, through the real google-api-python-client."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from autozero.targets.base import Change, SleepWithdrawn, TargetConflict, TargetNotFound
from autozero.targets.compute import Compute, Retry
from autozero.targets.gce import (
    GCEAutoscalerHandoff,
    GCEGroup,
    GCETarget,
    autoscaler_name,
    observe_groups,
)
from gce_emulator import EmulatorServer
from testground.pki import gce_service_account_key

P = "acme"
HANDOFF = GCEAutoscalerHandoff(
    min_replicas=1,
    max_replicas=6,
    cool_down_period=timedelta(seconds=180),
    cpu_utilization_target=0.8,
)


def fast_compute(emulator: EmulatorServer, attempts: int = 6) -> Compute:
    return Compute.build(
        endpoint=emulator.api_endpoint, retry=Retry(attempts=attempts, base=0.01, cap=0.05)
    )


def create_migs(compute: Compute, where: dict[str, str], names: list[str], size: int = 0) -> None:
    regional = "region" in where
    collection = (
        compute.service.regionInstanceGroupManagers()
        if regional
        else compute.service.instanceGroupManagers()
    )
    operations = []
    for name in names:
        operations.append(
            collection.insert(
                project=P,
                body={
                    "name": name,
                    "instanceTemplate": "global/instanceTemplates/t",
                    "targetSize": size,
                },
                **where,
            ).execute()
        )
    deadline = time.monotonic() + 30
    for op in operations:
        while op["status"] != "DONE" and time.monotonic() < deadline:
            ops = (
                compute.service.regionOperations() if regional else compute.service.zoneOperations()
            )
            op = ops.wait(project=P, operation=op["name"], **where).execute()


@pytest.fixture
def compute(gce_emulator: EmulatorServer) -> Compute:
    return fast_compute(gce_emulator)


@pytest.mark.parametrize(
    "target",
    [
        pytest.param(GCETarget(P, "bids", zone="europe-west1-c"), id="zonal"),
        pytest.param(GCETarget(P, "bids", region="europe-west1"), id="regional"),
    ],
)
def test_wake_and_sleep_with_autoscaler_handoff(
    gce_emulator: EmulatorServer, compute: Compute, target: GCETarget
) -> None:
    where = {"zone": target.zone} if target.zone else {"region": target.region}
    create_migs(compute, where, ["bids"])  # type: ignore[arg-type]
    # CPU exactly at the autoscaler's target: it keeps the size it is handed.
    gce_emulator.control(
        "cpu",
        {
            "project": P,
            "kind": "zones" if target.zone else "regions",
            "location": target.location,
            "group": "bids",
            "utilization": 0.8,
        },
    )
    group = GCEGroup("bids", target, compute)
    asleep = group.observe()
    assert (asleep.replicas, asleep.autoscaler) == (0, None)

    woke = group.apply(Change(2, HANDOFF), asleep)
    assert woke.steps == ("resize 0 -> 2", f"create autoscaler {autoscaler_name('bids')}")
    awake = group.observe()
    assert awake.replicas == 2
    assert awake.autoscaler == autoscaler_name("bids")
    assert awake.owned_autoscaler
    kind = compute.service.autoscalers() if target.zone else compute.service.regionAutoscalers()
    policy = kind.get(project=P, autoscaler=autoscaler_name("bids"), **where).execute()[
        "autoscalingPolicy"
    ]
    assert policy["minNumReplicas"] == 1
    assert policy["maxNumReplicas"] == 6
    assert policy["coolDownPeriodSec"] == 180
    assert policy["cpuUtilization"] == {"utilizationTarget": 0.8}

    # While awake, holding writes nothing: the autoscaler owns the count.
    assert group.apply(Change(awake.replicas, HANDOFF), awake).steps == ()

    slept = group.apply(Change(0, HANDOFF), group.observe())
    assert slept.steps[0] == f"delete autoscaler {autoscaler_name('bids')}"
    assert slept.steps[1].startswith("resize ")
    final = group.observe()
    assert (final.replicas, final.autoscaler) == (0, None)


def test_a_crash_between_delete_and_resize_converges(compute: Compute) -> None:
    target = GCETarget(P, "bids", zone="europe-west1-c")
    create_migs(compute, {"zone": "europe-west1-c"}, ["bids"])
    first = GCEGroup("bids", target, compute)
    first.apply(Change(3, HANDOFF), first.observe())
    # The operator dies after deleting the autoscaler, before resizing to 0.
    first.delete_autoscaler(autoscaler_name("bids"))
    restarted = GCEGroup("bids", target, fast_compute_from(compute))
    seen = restarted.observe()
    assert seen.autoscaler is None
    assert seen.replicas >= 1  # whatever the autoscaler had made it
    assert restarted.apply(Change(0, HANDOFF), seen).steps == (f"resize {seen.replicas} -> 0",)
    assert restarted.observe().replicas == 0


def test_a_crash_between_resize_and_autoscaler_converges(compute: Compute) -> None:
    target = GCETarget(P, "bids", zone="europe-west1-c")
    create_migs(compute, {"zone": "europe-west1-c"}, ["bids"])
    first = GCEGroup("bids", target, compute)
    first.resize(2)  # the operator dies here, before creating the autoscaler
    restarted = GCEGroup("bids", target, fast_compute_from(compute))
    seen = restarted.observe()
    assert (seen.replicas, seen.autoscaler) == (2, None)
    # The next cycle holds at 2 (awake); applying the hold restores the missing autoscaler.
    assert restarted.apply(Change(2, HANDOFF), seen).steps == (
        f"create autoscaler {autoscaler_name('bids')}",
    )
    assert restarted.observe().autoscaler == autoscaler_name("bids")


def fast_compute_from(compute: Compute) -> Compute:
    """A fresh client, as a restarted operator would build."""
    endpoint = compute.service._baseUrl
    return Compute.build(endpoint=endpoint, retry=Retry(attempts=6, base=0.01, cap=0.05))


def test_converges_through_thirty_percent_injected_faults(
    gce_emulator: EmulatorServer, compute: Compute
) -> None:
    target = GCETarget(P, "bids", zone="europe-west1-c")
    create_migs(compute, {"zone": "europe-west1-c"}, ["bids"])
    gce_emulator.control("faults", {"rate": 0.3, "codes": [403, 429, 503], "seed": 7})
    patient = fast_compute(gce_emulator, attempts=12)
    group = GCEGroup("bids", target, patient)
    group.apply(Change(4, HANDOFF), group.observe())
    group.apply(Change(0, HANDOFF), group.observe())
    gce_emulator.control("faults", {"rate": 0.0})
    final = group.observe()
    assert (final.replicas, final.autoscaler) == (0, None)
    log = gce_emulator.control("requests", method="GET")["requests"]
    statuses = {r["status"] for r in log}
    assert statuses >= {200, 503}
    assert statuses & {403, 429}


def test_non_retryable_errors_are_typed_and_not_retried(compute: Compute) -> None:
    group = GCEGroup("ghost", GCETarget(P, "ghost", zone="europe-west1-c"), compute)
    with pytest.raises(TargetNotFound) as raised:
        group.observe()
    assert "projects/acme/zones/europe-west1-c/instanceGroupManagers/ghost" in str(raised.value)
    before = compute.calls
    with pytest.raises(TargetNotFound):
        group.resize(1)
    assert compute.calls == before + 1  # a 404 is not retried


def test_a_foreign_autoscaler_is_a_conflict(compute: Compute) -> None:
    target = GCETarget(P, "bids", zone="europe-west1-c")
    create_migs(compute, {"zone": "europe-west1-c"}, ["bids"], size=1)
    link = (
        compute.service.instanceGroupManagers()
        .get(project=P, zone="europe-west1-c", instanceGroupManager="bids")
        .execute()["selfLink"]
    )
    op = (
        compute.service.autoscalers()
        .insert(
            project=P,
            zone="europe-west1-c",
            body={
                "name": "theirs",
                "target": link,
                "autoscalingPolicy": {"minNumReplicas": 1, "maxNumReplicas": 3},
            },
        )
        .execute()
    )
    compute.wait(op, "bids", GCEGroup("bids", target, compute).where)
    group = GCEGroup("bids", target, compute)
    with pytest.raises(TargetConflict, match="autoscaled by theirs"):
        group.apply(Change(0, HANDOFF), group.observe())


def test_pagination_over_more_groups_than_a_page(compute: Compute) -> None:
    names = [f"g{n:02d}" for n in range(25)]
    create_migs(compute, {"zone": "europe-west1-c"}, names)
    targets = {name: GCETarget(P, name, zone="europe-west1-c") for name in names}
    seen = observe_groups(compute, targets, page_size=10)
    assert set(seen) == set(names)
    assert all(not isinstance(v, Exception) and v.replicas == 0 for v in seen.values())


def test_an_idle_cycle_over_50_groups_in_3_zones_lists_once_per_zone_and_writes_nothing(
    gce_emulator: EmulatorServer, compute: Compute
) -> None:
    zones = ["europe-west1-b", "europe-west1-c", "europe-west1-d"]
    targets: dict[str, GCETarget] = {}
    for n in range(50):
        zone = zones[n % 3]
        targets[f"g{n:02d}"] = GCETarget(P, f"g{n:02d}", zone=zone)
    for zone in zones:
        create_migs(compute, {"zone": zone}, [n for n, t in targets.items() if t.zone == zone])
    gce_emulator.control("requests", method="DELETE")

    seen = observe_groups(compute, targets)
    groups = [GCEGroup(name, target, compute) for name, target in targets.items()]
    applied = [g.apply(Change(0), seen[g.name]) for g in groups]  # type: ignore[arg-type]

    assert not any(a.wrote for a in applied)
    log = gce_emulator.control("requests", method="GET")["requests"]
    lists = [r for r in log if r["api"] == "instanceGroupManagers.list"]
    assert len(lists) == 3
    assert {r["path"].split("/")[6] for r in lists} == set(zones)
    assert [r for r in log if r["method"] != "GET"] == []


def test_a_service_account_key_from_a_secret_authenticates(gce_emulator: EmulatorServer) -> None:
    """A key as a tenant would store it in a Secret, its token_uri pointing at the emulator."""
    email = "scaler@acme.iam.gserviceaccount.com"
    info = gce_service_account_key(f"{gce_emulator.url}/token", email, P)
    compute = Compute.build(
        endpoint=gce_emulator.api_endpoint,
        service_account_info=info,
        retry=Retry(attempts=2, base=0.01),
    )
    create_migs(compute, {"zone": "europe-west1-c"}, ["bids"])
    assert GCEGroup("bids", GCETarget(P, "bids", zone="europe-west1-c"), compute).observe()
    answer = gce_emulator.control("requests", method="GET")
    assert answer["tokensIssued"][0] == email
    assert {r["auth"] for r in answer["requests"]} == {"bearer"}
    assert {r["principal"] for r in answer["requests"]} == {email}


def test_anonymous_against_an_endpoint_sends_no_credentials(
    gce_emulator: EmulatorServer, compute: Compute
) -> None:
    create_migs(compute, {"zone": "europe-west1-c"}, ["bids"])
    log = gce_emulator.control("requests", method="GET")["requests"]
    assert {r["auth"] for r in log} == {"none"}
    assert {r["principal"] for r in log} == {"anonymous"}


@pytest.mark.parametrize(
    ("work", "withdrawn"),
    [
        pytest.param("work came: jobs pending=1", True, id="work-came-during-the-backoff"),
        pytest.param(None, False, id="still-idle"),
    ],
)
def test_a_sleeps_resize_refused_asks_the_sources_again_before_it_is_sent_again(
    gce_emulator: EmulatorServer, compute: Compute, work: str | None, withdrawn: bool
) -> None:
    """Chaos campaign, seed 23 --handoff: a sleep's resize to 0, refused twice (503, 429), was
    sent a third time 1.3 s after the reads it was decided on, and landed 0.17 s after a job had
    started on the group's machine. Between tries the sources are read again: work came, the
    sleep is withdrawn; still idle, the same request (its requestId) is sent again."""
    target = GCETarget(P, "bids", zone="europe-west1-c")
    create_migs(compute, {"zone": "europe-west1-c"}, ["bids"], size=1)
    group = GCEGroup("bids", target, compute)
    seen = group.observe()
    asked: list[float] = []

    def recheck() -> str | None:
        asked.append(time.monotonic())
        gce_emulator.control("faults", {})  # the burst is over by the next try
        return work

    gce_emulator.control("faults", {"rate": 1.0, "codes": [503]})
    try:
        if withdrawn:
            with pytest.raises(SleepWithdrawn) as raised:
                group.apply(Change(0), seen, recheck)
            assert "the sleep's resize to 0 failed (HTTP 503" in str(raised.value)
            assert "work came: jobs pending=1; left at 1" in str(raised.value)
        else:
            assert group.apply(Change(0), seen, recheck).steps == ("resize 1 -> 0",)
    finally:
        gce_emulator.control("faults", {})
    assert len(asked) == 1  # once, after the refusal: not before the first try
    resizes = [
        r for r in gce_emulator.control("requests", method="GET")["requests"]
        if r["api"] == "instanceGroupManagers.resize"
    ]  # fmt: skip
    assert len(resizes) == (1 if withdrawn else 2)
    assert len({r["query"] for r in resizes}) == 1  # one requestId: one decision
    assert group.observe().replicas == (1 if withdrawn else 0)
