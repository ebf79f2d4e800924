"""A sharded replica: kopf's policy events in, the Runtime's share of them out.

Every replica watches every policy but keeps only its key (by slot: what the hashing needs); it
hands the Runtime the policies of the slots it serves. A slot it takes over is served from a
fresh list of its policies' namespaces (`read`), read after the slot became ours, so that no
policy is built from a manifest older than the watch; the watch's events for a served slot go
to the Runtime directly. Each round (every `timings.period`) it lists its
group's Leases, lets `sharding.fence.plan` say what to release, acquire and claim, releases first,
renews its Lease with its claims, and then serves what it acquired. The Runtime asks `may_serve`
before every write, so a replica whose renewals fail stops writing at the renew deadline even
when a round is stuck in a call (each call has its own timeout too).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from autozero.controller.cluster import PolicyListFailed
from autozero.controller.members import LeaseMembers, MembershipError
from autozero.runtime.life import PolicyKey
from autozero.runtime.loop import Runtime, key_of
from autozero.runtime.metrics import Metrics
from autozero.sharding.fence import Peer, Timings, fresh, may_serve, observe, plan, stale
from autozero.sharding.ring import slot_of

log = logging.getLogger(__name__)


class Shards:
    def __init__(
        self,
        members: LeaseMembers,
        timings: Timings,
        metrics: Metrics,
        read: Callable[[str], list[dict[str, Any]]],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.members, self.timings, self.metrics, self.clock = members, timings, metrics, clock
        self.read = read  # the policies of one namespace (Cluster.policies)
        self.identity = members.identity
        self.runtime: Runtime | None = None
        self.by_slot: dict[int, set[PolicyKey]] = {}  # every policy seen: its key only
        self._reads: set[asyncio.Task[None]] = set()
        self.serving: frozenset[int] = frozenset()
        self.releasing: frozenset[int] = frozenset()  # no longer served, passes still ending
        self._releases: set[asyncio.Task[None]] = set()
        self.renewed: float | None = None  # when the last successful renewal was sent
        self.peers: dict[str, Peer] = {}
        self._stopping = asyncio.Event()
        # Lease calls never queue behind the policies' blocking calls in the default pool.
        self._calls = ThreadPoolExecutor(max_workers=1, thread_name_prefix="autozero-lease")

    # The fence and the feed.

    def may_serve(self, key: PolicyKey) -> bool:
        return may_serve(slot_of(key), self.serving, self.renewed, self.clock(), self.timings)

    def seen(self, body: Mapping[str, Any]) -> None:
        """A policy was added or changed: kept, and served when its slot is ours."""
        key = key_of(body)
        slot = slot_of(key)
        self.by_slot.setdefault(slot, set()).add(key)
        if slot in self.serving and self.runtime is not None:
            self.runtime.serve(body)

    async def deleted(self, key: PolicyKey) -> None:
        self.by_slot.get(slot_of(key), set()).discard(key)
        if self.runtime is not None:
            await self.runtime.forget(key)

    # The rounds.

    async def run(self, runtime: Runtime) -> None:
        """Take part until `stop`, then hand every slot over and delete the Lease."""
        self.runtime = runtime
        try:
            while not self._stopping.is_set():
                # Free slots just claimed are served after the next list: make it soon.
                soon = await self.round()
                pause = self.timings.period / 8 if soon else self.timings.period
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), pause)
        finally:
            self._release(self.serving)
            await self.settled()
            try:
                await self._in_thread(self.members.release)
                log.info("released lease %s: its slots move now", self.members.name)
            except MembershipError as exc:
                log.warning("could not delete lease %s (it expires instead): %s", exc.what, exc)
            self._calls.shutdown(wait=False)

    async def settled(self) -> None:
        """Return once the hand-overs and take-overs under way have ended."""
        if self._releases or self._reads:
            await asyncio.wait(self._releases | self._reads)

    def stop(self) -> None:
        self._stopping.set()

    async def round(self) -> bool:
        """One round; True when it published claims on free slots (the next may come soon)."""
        try:
            listed = await self._in_thread(self.members.list)
        except MembershipError as exc:
            log.warning("sharding: %s", exc)
            self._fence()
            return False
        now = self.clock()
        ours = next((m for m in listed if m.identity == self.identity), None)
        published = ours.claims if ours is not None and not ours.released else frozenset()
        self.peers = observe(self.peers, (m for m in listed if m.identity != self.identity), now)
        step = plan(
            self.identity, self.serving, published, self.peers, now, self.renewed, self.timings
        )
        self._release(step.release)
        if self._releases:  # most hand-overs end at once: publish without them this round
            await asyncio.wait(self._releases, timeout=self.timings.period / 2)
        sent = self.clock()
        published_now = False
        try:
            # A slot still being handed over stays claimed until its last pass has ended.
            claims = step.claims | self.releasing
            await self._in_thread(self.members.renew, claims, datetime.now(UTC))
            self.renewed = sent
            published_now = bool(step.free - published)
        except MembershipError as exc:
            log.warning("sharding: %s", exc)
        await self._remove_stale(now)
        # A slot that comes back while its hand-over still runs waits for the next round.
        acquire = step.acquire - self.releasing if self.renewed is not None else frozenset()
        if acquire and self.may_serve_slots():
            self._acquire(acquire)
        self._fence()
        self.metrics.shard_policies.labels(self.identity).set(self._served_count())
        return published_now

    async def _remove_stale(self, now: float) -> None:
        for peer in stale(self.peers, now, self.timings):
            try:
                await self._in_thread(self.members.remove, peer.name, peer.version)
            except MembershipError as exc:
                log.warning("sharding: %s", exc)
                continue
            log.info("sharding: removed the silent lease %s of %s", peer.name, peer.identity)
            self.peers.pop(peer.identity, None)

    def may_serve_slots(self) -> bool:
        return fresh(self.renewed, self.clock(), self.timings)

    def _fence(self) -> None:
        """Not renewed within the deadline: serve nothing (the Runtime's fence already refuses
        every write; this also stops its reads and timers)."""
        if self.serving and not self.may_serve_slots():
            log.error(
                "sharding: lease %s not renewed for %gs: serving none of its %d slots",
                self.members.name,
                self.timings.renew_deadline,
                len(self.serving),
            )
            self._release(self.serving)

    def _acquire(self, slots: frozenset[int]) -> None:
        self.serving |= slots
        keys = [key for slot in slots for key in self.by_slot.get(slot, ())]
        log.info("sharding: serving %d more slots (%d policies)", len(slots), len(keys))
        self.metrics.shard_rebalances.labels(self.identity, "acquired").inc()
        if keys:
            task = asyncio.get_running_loop().create_task(self._take_over(slots, keys))
            self._reads.add(task)
            task.add_done_callback(self._reads.discard)

    async def _take_over(self, slots: frozenset[int], keys: Collection[PolicyKey]) -> None:
        """Read the manifests of the policies of `slots` (one list per namespace) and serve
        those still ours. Retried each round until it succeeds or the slots are gone: a slot
        whose policies could not be read is served by nobody meanwhile, so the failure is loud."""
        namespaces = sorted({namespace for namespace, _ in keys})
        while slots & self.serving and not self._stopping.is_set():
            try:
                bodies = await asyncio.to_thread(self._read_all, namespaces)
            except PolicyListFailed as exc:
                log.error("sharding: cannot serve the slots taken over yet: %s", exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self.timings.period)
                continue
            self._serve_read(bodies)
            return

    def _read_all(self, namespaces: list[str]) -> list[dict[str, Any]]:
        return [body for namespace in namespaces for body in self.read(namespace)]

    def _serve_read(self, bodies: list[dict[str, Any]]) -> None:
        """Serve what was read, for the slots still ours. A policy the watch has not shown us
        yet (created meanwhile) or has shown deleted is skipped: its event serves or forgets it.
        One the Runtime already has came by the watch while reading, and stays as it came."""
        assert self.runtime is not None
        for body in bodies:
            key = key_of(body)
            slot = slot_of(key)
            if slot not in self.serving or key not in self.by_slot.get(slot, ()):
                continue
            if key not in self.runtime.slots:
                self.runtime.serve(body)

    def _release(self, slots: frozenset[int]) -> None:
        """Stop serving these slots now (the fence refuses their writes from here on), and hand
        their policies back to the Runtime in a task: waiting for a pass under way (a slow read)
        must not hold up the renewals. Until it ends, the slots stay in the published claims."""
        if not slots:
            return
        self.serving -= slots
        self.releasing |= slots
        keys = [key for slot in slots for key in self.by_slot.get(slot, ())]
        log.info("sharding: handing over %d slots (%d policies)", len(slots), len(keys))
        self.metrics.shard_rebalances.labels(self.identity, "released").inc()
        task = asyncio.get_running_loop().create_task(self._hand_back(slots, keys))
        self._releases.add(task)
        task.add_done_callback(self._releases.discard)

    async def _hand_back(self, slots: frozenset[int], keys: list[PolicyKey]) -> None:
        try:
            if self.runtime is not None:
                await self.runtime.release(keys)
        finally:
            self.releasing -= slots

    def _served_count(self) -> int:
        return sum(len(self.by_slot.get(slot, ())) for slot in self.serving)

    async def _in_thread(self, call: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._calls, call, *args)
