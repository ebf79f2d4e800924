"""Sharded replicas over real Leases (the test apiserver), driven round by round with a clock of
our own: the hand-over rules as the replicas apply them through the API, not as a table."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from autozero.controller.members import (
    LeaseMembers,
    MembershipError,
    decode_claims,
    encode_claims,
)
from autozero.controller.sharded import Shards
from autozero.runtime.life import PolicyKey
from autozero.runtime.loop import key_of
from autozero.runtime.metrics import Metrics
from autozero.sharding.fence import Timings, may_serve
from autozero.sharding.ring import SLOTS
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from support.broken_server import resetting_server
from testground.kube import KubeCluster, TcpRelay

T = Timings(lease=15.0, renew_deadline=10.0, period=2.0)
ALL = frozenset(range(SLOTS))
POLICIES = [
    {"metadata": {"namespace": f"team-{n % 7}", "name": f"policy-{n}"}, "spec": {}}
    for n in range(300)
]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Served:
    """The Runtime's side of the seam: which policies it was told to serve."""

    def __init__(self) -> None:
        self.keys: set[PolicyKey] = set()
        self.bodies: dict[PolicyKey, Mapping[str, Any]] = {}

    def serve(self, body: Mapping[str, Any]) -> None:
        self.keys.add(key_of(body))
        self.bodies[key_of(body)] = body

    async def release(self, keys: Collection[PolicyKey]) -> None:
        self.keys -= set(keys)

    async def forget(self, key: PolicyKey) -> None:
        self.keys.discard(key)

    @property
    def slots(self) -> set[PolicyKey]:
        return self.keys


def read(namespace: str) -> list[dict[str, Any]]:
    """The policies of a namespace, as the apiserver would list them."""
    return [p for p in POLICIES if p["metadata"]["namespace"] == namespace]


@pytest.fixture
def lease_namespace(kube_api: Any) -> str:
    name = f"shard-{uuid.uuid4().hex[:6]}"
    k8s.CoreV1Api(kube_api).create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name)))
    return name


def replica(kube_api: Any, namespace: str, identity: str, clock: Clock) -> tuple[Shards, Served]:
    members = LeaseMembers(kube_api, namespace, "test", identity, lease_seconds=15)
    shards = Shards(members, T, Metrics(), read, clock=clock)
    served = Served()
    shards.runtime = served  # type: ignore[assignment]
    for body in POLICIES:
        shards.seen(body)
    return shards, served


def acting(replica: Shards) -> frozenset[int]:
    """The slots whose writes the replica's fence lets through now: a replica that stopped
    renewing (killed, or cut off and still running) counts until its own deadline."""
    return frozenset(
        s
        for s in replica.serving
        if may_serve(s, replica.serving, replica.renewed, replica.clock(), T)
    )


def lease_names(api: Any, namespace: str) -> set[str]:
    return {
        lease.metadata.name
        for lease in k8s.CoordinationV1Api(api).list_namespaced_lease(namespace).items
    }


def no_slot_twice(*replicas: Shards) -> None:
    for n, one in enumerate(replicas):
        for other in replicas[n + 1 :]:
            assert not acting(one) & acting(other), (one.identity, other.identity)


def test_replicas_split_the_slots_and_hand_them_over(kube_api: Any, lease_namespace: str) -> None:
    asyncio.run(_scenario(kube_api, lease_namespace))


async def _scenario(kube_api: Any, namespace: str) -> None:
    clock = Clock()
    (a, a_runtime), (b, b_runtime) = (
        replica(kube_api, namespace, name, clock) for name in ("replica-a", "replica-b")
    )

    async def rounds(*replicas: Shards, count: int = 1) -> None:
        for _ in range(count):
            for one in replicas:
                await one.round()
                no_slot_twice(a, b, c)
                await one.settled()
            clock.now += T.period

    c, _ = replica(kube_api, namespace, "replica-c", clock)
    await rounds(a, b, count=3)
    assert a.serving | b.serving == ALL
    assert 0.45 * SLOTS < len(a.serving) < 0.55 * SLOTS
    assert a_runtime.keys | b_runtime.keys == {key_of(p) for p in POLICIES}
    assert not a_runtime.keys & b_runtime.keys

    # c joins: a and b each hand over a third of their share, then c serves it.
    await rounds(a, b, c, count=3)
    assert a.serving | b.serving | c.serving == ALL
    assert all(0.3 * SLOTS < len(r.serving) < 0.37 * SLOTS for r in (a, b, c))

    # c stops renewing (killed, or cut off while it runs on): nobody takes its slots while its
    # lease may still be live, and it stops writing before anyone does.
    orphaned = c.serving
    last_renewal = clock.now
    while clock.now < last_renewal + T.lease - T.period:
        await rounds(a, b)
        assert not (a.serving | b.serving) & orphaned
    assert "test-replica-c" in lease_names(kube_api, namespace)  # still live: kept
    await rounds(a, b, count=3)
    assert a.serving | b.serving == ALL
    assert a_runtime.keys | b_runtime.keys == {key_of(p) for p in POLICIES}
    # Silent for a lease time: removed, so a replica starting now need not wait a lease time on it.
    assert "test-replica-c" not in lease_names(kube_api, namespace)

    # b shuts down cleanly: it serves nothing, deletes its lease, and a takes over at once.
    b.stop()
    await b.run(b_runtime)  # type: ignore[arg-type]
    assert b.serving == frozenset()
    assert b_runtime.keys == set()
    assert lease_names(kube_api, namespace) == {"test-replica-a"}
    await rounds(a, count=2)  # claim, then see the claim listed with nobody else's
    assert a.serving == ALL
    assert len(a_runtime.keys) == len(POLICIES)


def test_a_replica_that_cannot_list_or_renew_serves_nothing_by_its_deadline(
    kube: KubeCluster, lease_namespace: str, tmp_path: Path
) -> None:
    relay = TcpRelay(int(kube.server.rsplit(":", 1)[1]))
    relayed = kube.relayed_kubeconfig(relay, tmp_path / "relayed.kubeconfig")
    api = k8s_config.new_client_from_config(config_file=str(relayed))

    async def scenario() -> None:
        clock = Clock()
        a, a_runtime = replica(api, lease_namespace, "replica-a", clock)
        for _ in range(2):
            await a.round()
            clock.now += T.period
        assert a.serving == ALL
        key = key_of(POLICIES[0])
        assert a.may_serve(key)
        relay.cut()  # every call now fails
        while clock.now < 1000.0 + T.period + T.renew_deadline - T.period:
            await a.round()
            clock.now += T.period
        assert a.serving == ALL  # renewals failed, but the deadline is not reached yet
        clock.now += T.period
        assert not a.may_serve(key)  # the fence, before any round ran
        await a.round()
        assert a.serving == frozenset()
        await a.settled()
        assert a_runtime.keys == set()

    try:
        asyncio.run(scenario())
    finally:
        api.close()
        relay.close()


def test_claims_round_trip_through_the_annotation() -> None:
    claims = frozenset({0, 7, 8, 511, SLOTS - 1})
    text = encode_claims(claims)
    assert len(text) == 172
    assert decode_claims(text) == claims
    assert decode_claims(None) == frozenset()


def test_a_replica_keeps_only_keys_and_serves_what_it_takes_over_from_a_fresh_read(
    kube_api: Any, lease_namespace: str
) -> None:
    """A replica keeps nothing of the policies it does not serve but their keys; the policies of
    the slots it takes over are read after the slot became its own, so a change made while it did
    not serve them is seen, and a policy deleted meanwhile is not served."""
    changed = {**POLICIES[1], "spec": {"pollingInterval": "30s"}}
    latest = {key_of(p): p for p in POLICIES} | {key_of(changed): changed}
    del latest[key_of(POLICIES[2])]  # deleted; its event is still on its way

    def fresh_read(namespace: str) -> list[dict[str, Any]]:
        return [p for p in latest.values() if p["metadata"]["namespace"] == namespace]

    async def scenario() -> None:
        clock = Clock()
        members = LeaseMembers(kube_api, lease_namespace, "test", "replica-a", lease_seconds=15)
        a = Shards(members, T, Metrics(), fresh_read, clock=clock)
        served = Served()
        a.runtime = served  # type: ignore[assignment]
        for body in POLICIES:  # as the watch showed them before the slots were ours
            a.seen(body)
        for _ in range(2):
            await a.round()
            await a.settled()
            clock.now += T.period
        assert a.serving == ALL
        assert served.bodies[key_of(changed)] == changed  # before: the manifest seen earlier
        assert key_of(POLICIES[2]) not in served.keys  # before: served from what was kept
        assert served.keys == set(latest)

    asyncio.run(scenario())


class SlowRelease(Served):
    """A Runtime whose hand-over waits for a pass that will not end until told."""

    def __init__(self) -> None:
        super().__init__()
        self.finish = asyncio.Event()

    async def release(self, keys: Collection[PolicyKey]) -> None:
        await self.finish.wait()
        await super().release(keys)


def test_a_slow_hand_over_holds_no_renewal_and_keeps_its_slots_claimed(
    kube_api: Any, lease_namespace: str
) -> None:
    async def scenario() -> None:
        clock = Clock()
        a, _ = replica(kube_api, lease_namespace, "replica-a", clock)
        slow = SlowRelease()
        a.runtime = slow  # type: ignore[assignment]
        for _ in range(2):
            await a.round()
            clock.now += T.period
        assert a.serving == ALL
        b, b_runtime = replica(kube_api, lease_namespace, "replica-b", clock)
        for _ in range(4):
            for one in (b, a):
                before = one.renewed
                await asyncio.wait_for(one.round(), 30)  # before the fix: hung on a's hand-over
                assert one.renewed != before  # renewed, though a's hand-over hangs
            clock.now += T.period
            assert not a.serving & b.serving
        assert a.releasing  # still claimed: b waits
        assert not b.serving & a.releasing
        slow.finish.set()
        await a.settled()
        for _ in range(2):
            for one in (a, b):
                await one.round()
            clock.now += T.period
        assert a.serving | b.serving == ALL
        assert not a.serving & b.serving
        await b.settled()
        assert b_runtime.keys

    asyncio.run(scenario())


def test_a_lease_call_is_tried_once_so_its_timeout_bounds_it() -> None:
    """The client retries a failed request three times by default, which would make a 3 s
    timeout 12 s, past the renew deadline: each Lease call gets one try."""
    with resetting_server() as server:
        config = k8s.Configuration()
        config.host = server.url
        members = LeaseMembers(k8s.ApiClient(config), "default", "test", "a", lease_seconds=15)
        with pytest.raises(MembershipError, match="list Leases: apiserver unreachable"):
            members.list()
        with pytest.raises(MembershipError, match="renew Lease default/test-a"):
            members.renew(frozenset({1}), datetime.now(UTC))
    assert server.accepted == 2
