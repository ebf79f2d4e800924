"""The runtime: serves a set of policies, evaluating each group on change, not on every tick.

One asyncio loop schedules everything; blocking calls (reads, live observations, writes, the
shell's reports) run in worker threads. What wakes a policy:
- its poll: every `pollingInterval`, aligned on multiples of it so that all the policies with one
  interval are read together, one round trip per server (`sources.registry.read_many`);
- a push source seeing work, or its decision's deadline: a fresh read of its own sources;
- a watched workload or HPA changing: no read, its groups see the new count from the cache.
Each policy has one pass at a time; what arrives meanwhile is merged into its next pass.

The set of policies is given (`serve`, `forget`): the operator feeds it from its watch of
ScalingPolicies, `autozero run` from a file, and a sharded operator each replica its share
(`release` hands a share back). A sharded replica also passes a `fence`, asked before every write:
a pass it refuses writes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from urllib3.exceptions import HTTPError

from autozero.engine.activation import why_not_idle
from autozero.engine.readings import Observation
from autozero.engine.state import GroupState
from autozero.policy.errors import PolicyInvalid
from autozero.policy.parse import parse_policy
from autozero.runtime.assemble import Assembly, assemble
from autozero.runtime.assemble import RuntimeConfig as RuntimeConfig  # the shells import it here
from autozero.runtime.cluster_cache import ClusterCache
from autozero.runtime.heap import Heap
from autozero.runtime.life import Pass, PolicyKey, PolicyLife, Write
from autozero.runtime.metrics import Metrics
from autozero.runtime.report import CycleReport
from autozero.runtime.shell import AccessUnknown, ReportFailed, Shell
from autozero.runtime.timers import TimerKind, Timers
from autozero.sources.base import PushSource, SourceError, Watch
from autozero.sources.registry import read_many
from autozero.targets.base import (
    Applied,
    Observed,
    Recheck,
    SleepWithdrawn,
    TargetConfigError,
    TargetError,
)
from autozero.targets.kind import Refusal
from autozero.tenancy import refusals

log = logging.getLogger(__name__)

SHUTDOWN_GRACE = 10.0  # seconds the passes under way get to finish when the runtime stops
STOP_WATCHES_WITHIN = 2.0  # seconds the watches get to stop, after the grace, when it stops
POLL_SLICE = 50  # policies passed in a row before other work gets the loop


_META_KEYS = ("name", "namespace", "uid", "generation", "annotations")
#: Passes kept while the shell cannot record them (the oldest are dropped, with their history).
UNREPORTED_KEPT = 16
REPORT_RETRY_MAX = 30.0  # seconds between two tries to record a pass, at most


@dataclass
class _Slot:
    """A served policy: its manifest, its life once built, and what its next pass must do.

    The manifest is kept as compact JSON, parsed again only to rebuild the policy: as Python
    dicts, a thousand manifests with their statuses weigh tens of MiB."""

    meta: dict[str, Any]
    packed: str  # the manifest without metadata and status
    status: dict[str, Any] | None = None  # as served first, until the shell has restored it
    life: PolicyLife | None = None
    watches: list[Watch] = field(default_factory=list)
    states: Mapping[str, GroupState] | None = None  # kept across a rebuild
    task: asyncio.Task[None] | None = None
    want: bool = False
    want_read: bool = False
    fresh: dict[str, Observation] | None = None
    fresh_began: float = 0.0  # when the newest of `fresh`'s reads began (time.monotonic)
    # Reads begun before this are older than one the policy has acted on (a sleep's recheck):
    # a poll made before the recheck and handed over after it would undo what it saw.
    read_floor: float = 0.0
    force: set[str] = field(default_factory=set)
    retry_after: float = 30.0
    unreported: list[CycleReport] = field(default_factory=list)  # passes the shell did not take
    report_delay: float = 0.0  # the next retry's delay while reports fail

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> _Slot:
        status = body.get("status")
        return cls(_meta(body), _pack(body), dict(status) if status else None)

    def update(self, body: Mapping[str, Any]) -> bool:
        """Keep the new manifest; True when its spec or its annotations changed."""
        meta, packed = _meta(body), _pack(body)
        changed = (packed, meta.get("annotations")) != (self.packed, self.meta.get("annotations"))
        self.meta, self.packed = meta, packed
        return changed

    def offer(self, read: dict[str, Observation], began: float) -> bool:
        """Keep a read for the next pass (per metric, the later-begun read wins); False, and
        nothing kept, when it began before `read_floor`."""
        if began < self.read_floor:
            return False
        if self.fresh is None or began >= self.fresh_began:
            self.fresh, self.fresh_began = {**(self.fresh or {}), **read}, began
        else:
            self.fresh = {**read, **self.fresh}
        return True

    def acted_on(self, read: dict[str, Observation], began: float) -> None:
        """A read the policy acted on outside a pass (a sleep's recheck): older ones are
        dropped, and the next pass decides on it."""
        self.read_floor = max(self.read_floor, began)
        if self.fresh is not None and self.fresh_began < began:
            self.fresh = None
        self.offer(read, began)
        self.want = True

    @property
    def body(self) -> dict[str, Any]:
        """What a shell needs of the manifest: its metadata (and its status, until restored)."""
        return {"metadata": self.meta} | ({"status": self.status} if self.status else {})

    def manifest(self) -> dict[str, Any]:
        return {**json.loads(self.packed), "metadata": self.meta}


def _meta(body: Mapping[str, Any]) -> dict[str, Any]:
    meta = body.get("metadata") or {}
    return {k: meta[k] for k in _META_KEYS if k in meta}


def _pack(body: Mapping[str, Any]) -> str:
    rest = {k: v for k, v in body.items() if k not in ("metadata", "status")}
    return json.dumps(rest, sort_keys=True, separators=(",", ":"))


class Fenced(Exception):
    """The fence refused a policy's writes: this replica may no longer serve it."""


def stale_after(life: PolicyLife) -> float:
    """Seconds after which a pass's reads are too old to decide on: one polling interval."""
    return life.policy.polling_interval.total_seconds()


def key_of(body: Mapping[str, Any]) -> PolicyKey:
    meta = body.get("metadata") or {}
    return str(meta.get("namespace") or "default"), str(meta.get("name") or "")


class Runtime:
    def __init__(
        self,
        shell: Shell,
        config: RuntimeConfig,
        metrics: Metrics,
        *,
        cluster_wide: bool = True,
        active: bool = True,
        clock: Callable[[], float] = time.time,
        fence: Callable[[PolicyKey], bool] | None = None,
        shutdown_grace: float = SHUTDOWN_GRACE,
    ) -> None:
        self.shell, self.config, self.metrics = shell, config, metrics
        self.shutdown_grace = shutdown_grace  # seconds the passes under way get when it stops
        # Kubernetes groups are observed from watches (informers), shared by every policy.
        self.cluster: ClusterCache | None = None
        if config.kube_api is not None:
            self.cluster = ClusterCache(
                config.kube_api,
                cluster_wide=cluster_wide,
                on_group_changed=self.target_changed,
            )
            metrics.cache_size.count = self.cluster.counts
        self.active = active  # False for a follower: it knows every policy and acts on none
        self.clock = clock
        self.report_retry = 2.0  # seconds before a pass the shell could not record is tried again
        self.fence = fence  # None: this replica may always write
        self.slots: dict[PolicyKey, _Slot] = {}
        self.timers: Timers[PolicyKey] = Timers()
        self._kick = asyncio.Event()
        self._polls: set[PolicyKey] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._building = 0  # builds under way
        self.heap = Heap()
        self.passes = 0  # passes made, for tests and benchmarks
        self.decisions = 0  # groups decided

    # The set of policies served.

    def serve(self, body: Mapping[str, Any]) -> None:
        """Serve this policy (new), or its new version (rebuilt if its spec or annotations
        changed; a status-only change, often our own write, changes nothing)."""
        key = key_of(body)
        slot = self.slots.get(key)
        if slot is None:
            self.slots[key] = _Slot.of(body)
            if self.active:
                self._schedule(key, TimerKind.BUILD, 0.0)
            return
        if slot.update(body) and self.active:
            self._schedule(key, TimerKind.BUILD, 0.0)

    async def forget(self, key: PolicyKey) -> None:
        """Stop serving a policy (deleted, or no longer ours)."""
        slot = self.slots.pop(key, None)
        if slot is None:
            return
        self.timers.cancel(key)
        self._polls.discard(key)
        self._stop_watches(slot)
        if self.cluster is not None:
            await asyncio.to_thread(self.cluster.detach, key)
        if slot.task is not None:
            slot.task.cancel()
        self.metrics.forget(*key)
        await asyncio.to_thread(self.shell.forget, key)

    async def release(self, keys: Collection[PolicyKey]) -> None:
        """Stop serving these policies (their slot moved to another replica), and return only
        once no pass of theirs is under way: a write half sent would land after the hand-over."""
        released = [(key, slot) for key in keys if (slot := self.slots.pop(key, None)) is not None]
        for key, slot in released:
            self.timers.cancel(key)
            self._polls.discard(key)
            self._stop_watches(slot)
        passes = [slot.task for _, slot in released if slot.task is not None]
        if passes:
            await asyncio.wait(passes, timeout=self.shutdown_grace)
        for key, slot in released:
            if slot.task is not None:
                slot.task.cancel()
            self.shell.forget(key)
        keys = [key for key, _ in released]
        if self.cluster is not None and keys:
            await asyncio.to_thread(self._detach_all, keys)
        self.metrics.forget_all(keys)

    def _detach_all(self, keys: Collection[PolicyKey]) -> None:
        assert self.cluster is not None
        for key in keys:
            self.cluster.detach(key)

    def _may_write(self, key: PolicyKey) -> bool:
        return self.fence is None or self.fence(key)

    def activate(self) -> None:
        """This replica became the leader: build and serve every policy it knows."""
        self.active = True
        for key in self.slots:
            self._schedule(key, TimerKind.BUILD, 0.0)

    # Triggers, from any thread.

    def pushed(self, key: PolicyKey) -> None:
        """Work may have arrived for a policy (a push source): read it now."""
        self._call(self._request, key, read=True)

    def target_changed(self, key: PolicyKey, group: str) -> None:  # noqa: ARG002
        """A group's workload or HPA changed in the cache: a pass without reads decides it (its
        observed count differs from its last decision's)."""
        self._call(self._request, key)

    def _call(self, function: Callable[..., None], *args: Any, **kwargs: Any) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        loop.call_soon_threadsafe(lambda: function(*args, **kwargs))

    # The loop.

    async def run(self) -> None:
        """Serve until `stop`."""
        self._loop = asyncio.get_running_loop()
        try:
            while not self._stopping:
                self._kick.clear()
                for key, kind in self.timers.pop_due(self.clock()):
                    self._fire(key, kind)
                if self._polls:
                    keys, self._polls = self._polls, set()
                    self._spawn(self._poll(keys))
                settle = self.heap.due() if self._building == 0 else None  # after the batch
                if settle is not None and self.clock() >= settle:
                    self.heap.settle()
                    settle = None
                due = min(
                    (t for t in (self.timers.next_due(), settle) if t is not None), default=None
                )
                timeout = None if due is None else max(0.0, due - self.clock())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._kick.wait(), timeout)
        finally:
            await self._shutdown()

    async def once(self) -> list[CycleReport]:
        """Build every policy, read and decide every group once, and stop (`run --once`)."""
        self._loop = asyncio.get_running_loop()
        reports: list[CycleReport] = []
        try:
            for key in list(self.slots):
                if await self._build(key, watch=False):
                    slot = self.slots[key]
                    assert slot.life is not None
                    read = await asyncio.to_thread(self._read_policy, slot.life)
                    reports.append(await self._pass(key, slot, read, set(slot.life.cells)))
        finally:
            await self._shutdown()
        return reports

    def stop(self) -> None:
        """Stop `run` (from the loop's thread; from another, use `stop_threadsafe`)."""
        self._stopping = True
        self._kick.set()

    def stop_threadsafe(self) -> None:
        self._call(self.stop)

    async def _shutdown(self) -> None:
        """Let the passes under way finish, for `shutdown_grace` at most (a write half made is
        repaired next time anyway, but its state would not be saved), then stop everything. No
        pass starts meanwhile. A call that has not returned by then is left to its thread: the
        runtime does not wait for it (an apiserver that accepts and never answers would hold
        the exit past the Pod's grace period, and SIGKILL would then lose what the grace saved)."""
        self._stopping = True
        passes = [slot.task for slot in self.slots.values() if slot.task is not None]
        if passes:
            _, late = await asyncio.wait(passes, timeout=self.shutdown_grace)
            if late:
                log.warning(
                    "%d passes still waiting for an answer after %g s: stopped without them",
                    len(late),
                    self.shutdown_grace,
                )
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for slot in self.slots.values():
            self._stop_watches(slot)
        if self.cluster is not None:
            stopping = asyncio.ensure_future(asyncio.to_thread(self.cluster.stop))
            if not (await asyncio.wait([stopping], timeout=STOP_WATCHES_WITHIN))[0]:
                log.warning("the watches did not stop within %g s", STOP_WATCHES_WITHIN)

    def _spawn(self, coroutine: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _schedule(self, key: PolicyKey, kind: TimerKind, delay: float) -> None:
        self._at(key, kind, self.clock() + delay)

    def _at(self, key: PolicyKey, kind: TimerKind, due: float) -> None:
        """Set a timer, and wake the loop so that it sleeps until the earliest one."""
        self.timers.set(key, kind, due)
        self._kick.set()

    def _fire(self, key: PolicyKey, kind: TimerKind) -> None:
        slot = self.slots.get(key)
        if slot is None:
            return
        match kind:
            case TimerKind.BUILD:
                self._spawn(self._build_or_retry(key))
            case TimerKind.POLL if slot.life is not None:
                self._polls.add(key)
                self._arm_poll(key, slot.life)
            case TimerKind.DEADLINE:
                self._request(key, read=True)
            case TimerKind.RECHECK:
                self._spawn(self._recheck(key))
            case TimerKind.REPORT if slot.task is None:
                slot.task = self._spawn(self._drain(key, slot))
            case TimerKind.REPORT:  # a pass is running: ask again once it is done
                self._schedule(key, TimerKind.REPORT, 1.0)
            case _:
                pass

    def _arm_poll(self, key: PolicyKey, life: PolicyLife) -> None:
        """The next poll, on the next multiple of the interval: policies sharing an interval are
        read together."""
        interval = max(1.0, life.policy.polling_interval.total_seconds())
        now = self.clock()
        self._at(key, TimerKind.POLL, (math.floor(now / interval) + 1) * interval)

    def _request(
        self,
        key: PolicyKey,
        *,
        read: bool = False,
        fresh: dict[str, Observation] | None = None,
        began: float = 0.0,
        force: Collection[str] = (),
    ) -> None:
        """Ask for a pass: with `read`, one that reads the sources; with `fresh`, one on these
        reads (begun at `began`), unless the policy has acted on a later one."""
        slot = self.slots.get(key)
        if slot is None or slot.life is None or not self.active or self._stopping:
            return
        if fresh is not None and not slot.offer(fresh, began):
            return
        slot.want = True
        slot.want_read = slot.want_read or read
        slot.force.update(force)
        if slot.task is None:
            slot.task = self._spawn(self._drain(key, slot))

    async def _drain(
        self,
        key: PolicyKey,
        slot: _Slot,
        planned: tuple[PolicyLife, Pass, float] | None = None,
    ) -> None:
        """Run the policy's passes, one at a time, until nothing more is wanted (beginning with
        the rest of a pass already planned, if given)."""
        try:
            if slot.unreported:
                await self._report(key, slot)
            if planned is not None:
                try:
                    await self._complete(key, slot, *planned)
                except asyncio.CancelledError:
                    raise
                except Fenced:
                    log.info("%s/%s: no longer ours: the pass writes nothing", *key)
                    return
                except Exception:  # a pass with fresh reads, later: never left undecided
                    log.exception("%s/%s: pass failed; tried again in %g s", *key, slot.retry_after)
                    self._schedule(key, TimerKind.DEADLINE, slot.retry_after)
            while (
                slot.want
                and slot.life is not None
                and self.slots.get(key) is slot
                and not self._stopping
            ):
                fresh, read_now, force = slot.fresh, slot.want_read, slot.force
                slot.want, slot.want_read, slot.fresh, slot.force = False, False, None, set()
                life = slot.life
                try:
                    if read_now and fresh is None:
                        fresh = await asyncio.to_thread(self._read_policy, life)
                    await self._pass(key, slot, fresh, force)
                except asyncio.CancelledError:
                    raise
                except Fenced:
                    log.info("%s/%s: no longer ours: the pass writes nothing", *key)
                    return
                except Exception:  # a pass with fresh reads, later: never left undecided
                    log.exception("%s/%s: pass failed; tried again in %g s", *key, slot.retry_after)
                    self._schedule(key, TimerKind.DEADLINE, slot.retry_after)
        finally:
            slot.task = None

    async def _poll(self, keys: Collection[PolicyKey]) -> None:
        """Read the sources of every policy due, one batch per server, and hand each its reads."""
        lives = [
            (key, slot.life)
            for key in keys
            if (slot := self.slots.get(key)) is not None and slot.life is not None
        ]
        wanted = [
            (key, metric, life.parts.sources[metric])
            for key, life in lives
            for metric in sorted(life.metrics())
        ]
        began = time.monotonic()
        try:
            results = await asyncio.to_thread(read_many, [source for _, _, source in wanted])
        except Exception:
            log.exception("batched read of %d sources failed", len(wanted))
            return
        by_policy: dict[PolicyKey, dict[str, Observation]] = {key: {} for key, _ in lives}
        for (key, metric, _), result in zip(wanted, results, strict=True):
            by_policy[key][metric] = result
        for n, (key, read) in enumerate(by_policy.items()):
            slot = self.slots.get(key)
            if slot is None or not self.active or began < slot.read_floor:
                continue  # (older than a read the policy acted on meanwhile: dropped)
            if not self._quietly(key, slot, read):
                self._request(key, fresh=read, began=began)
            if n % POLL_SLICE == POLL_SLICE - 1:
                await asyncio.sleep(0)  # a push or a watch event need not wait for the rest

    @staticmethod
    def _read_policy(life: PolicyLife) -> dict[str, Observation]:
        metrics = sorted(life.metrics())
        results = read_many([life.parts.sources[m] for m in metrics])
        return dict(zip(metrics, results, strict=True))

    def _cached(self, life: PolicyLife) -> tuple[dict[str, Observed | TargetError], list[str]]:
        """Every group's target as the watches know it, and the groups they cannot answer for."""
        observed: dict[str, Observed | TargetError] = {}
        live: list[str] = []
        watched = life.parts.watched
        for name in life.cells:
            followed = watched.get(name)
            cached = (
                self.cluster.lookup(followed)
                if self.cluster is not None and followed is not None
                else None
            )
            if cached is None:
                live.append(name)
            else:
                observed[name] = cached
        return observed, live

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    async def _pass(
        self,
        key: PolicyKey,
        slot: _Slot,
        read: Mapping[str, Observation] | None,
        force: Collection[str],
    ) -> CycleReport:
        life = slot.life
        assert life is not None
        started = time.monotonic()
        observed, live = self._cached(life)
        if live:
            observed.update(await asyncio.to_thread(life.parts.observe_live, live))
            if time.monotonic() - started > stale_after(life):
                # The target was slow to answer (a throttled or slow Compute API): a decision on
                # the reads made before it (this pass's, or the last poll's for a pass on a
                # deadline) might put a group to sleep under work that came since.
                read = await asyncio.to_thread(self._read_policy, life)
        done = life.plan(self._now(), observed, read=read, force=force)
        return await self._complete(key, slot, life, done, started)

    def _quietly(self, key: PolicyKey, slot: _Slot, read: Mapping[str, Observation]) -> bool:
        """A polled policy's pass made right here, without a task or a thread, when it can be:
        nothing to ask the APIs and no pass under way. Most polls of a sleeping fleet end here,
        having only recorded the reads. Returns False when a task must make the pass."""
        life = slot.life
        if life is None or slot.task is not None or slot.want or self.shell.persists:
            return False
        started = time.monotonic()
        observed, live = self._cached(life)
        if live:
            return False
        done = life.plan(self._now(), observed, read=read)
        if done.writes or done.decided:  # the rest (writes, reports) in a task, as any pass
            slot.task = self._spawn(self._drain(key, slot, planned=(life, done, started)))
        else:
            self._finish(key, life, done, {}, started)
        return True

    async def _complete(
        self, key: PolicyKey, slot: _Slot, life: PolicyLife, done: Pass, started: float
    ) -> CycleReport:
        """Carry out a planned pass's writes, then report it (Fenced: the fence refused)."""
        results: dict[str, Applied | TargetError] = {}
        if (done.writes or done.decided) and not self._may_write(key):
            raise Fenced(key)
        if life.begins(done):
            try:
                await asyncio.to_thread(self.shell.begin, key, slot.body, life.states)
            except ReportFailed as exc:
                # The scale-out goes ahead: a crash before its last write would leave it half
                # done (as before `begin` existed); waiting on the status would delay a wake.
                log.warning("%s/%s: %s", *key, exc)
        if done.writes:
            rechecked: list[tuple[float, dict[str, Observation]]] = []
            outcomes = await asyncio.gather(
                *(
                    asyncio.to_thread(
                        self._write, key, write, self._idle_again(life, write, rechecked)
                    )
                    for write in done.writes
                )
            )
            results = dict(outcomes)
            if rechecked and any(isinstance(r, SleepWithdrawn) for r in results.values()):
                # Work came during the sleep: the next pass decides on what the recheck read,
                # not on a poll made before it (which would put the group to sleep again).
                began, read = max(rechecked, key=lambda made: made[0])
                slot.acted_on(read, began)
        report = self._finish(key, life, done, results, started)
        if report.evaluated:
            await self._report(key, slot, report)
        if self.shell.persists and (done.read or report.evaluated):
            await asyncio.to_thread(self.shell.persist, key, life.states)
        return report

    async def _report(self, key: PolicyKey, slot: _Slot, report: CycleReport | None = None) -> None:
        """Record passes through the shell, oldest first. One it could not record (the status
        was not written) is kept and recorded again, with backoff, before any later one: a
        status never skips a pass's decisions."""
        if report is not None:
            slot.unreported.append(report)
            del slot.unreported[:-UNREPORTED_KEPT]
        while slot.unreported:
            if not self._may_write(key):  # the policy is another replica's now: it reports
                slot.unreported.clear()
                break
            try:
                await asyncio.to_thread(self.shell.report, key, slot.body, slot.unreported[0])
            except ReportFailed as exc:
                if not exc.written:
                    delay = slot.report_delay or self.report_retry
                    log.warning("%s/%s: %s; recorded again in %g s", *key, exc, delay)
                    self._schedule(key, TimerKind.REPORT, delay)
                    slot.report_delay = min(REPORT_RETRY_MAX, delay * 2)
                    return
                log.warning("%s/%s: %s", *key, exc)  # the status is written; an Event is lost
            slot.unreported.pop(0)
        slot.report_delay = 0.0

    def _finish(
        self,
        key: PolicyKey,
        life: PolicyLife,
        done: Pass,
        results: Mapping[str, Applied | TargetError],
        started: float,
    ) -> CycleReport:
        problems = tuple(self.cluster.problems(life)) if self.cluster is not None else ()
        report = life.finish(done, results, problems)
        self.passes += 1
        self.decisions += len(report.evaluated)
        self.metrics.record(key[0], report, time.monotonic() - started)
        deadline = life.next_deadline()
        if deadline is None:
            self.timers.cancel(key, TimerKind.DEADLINE)
        else:
            self._at(key, TimerKind.DEADLINE, deadline)
        return report

    def _idle_again(
        self, life: PolicyLife, write: Write, made: list[tuple[float, dict[str, Observation]]]
    ) -> Recheck:
        """For a sleep of several steps: the group's sources read again (in the write's thread)
        before the step that takes its machines down; each read kept in `made`, with when it
        began."""
        spec = write.cell.group.engine

        def recheck() -> str | None:
            began = time.monotonic()
            read = self._read_policy(life)
            made.append((began, read))
            return why_not_idle(spec.activation, spec.metrics, read)

        return recheck

    @staticmethod
    def _write(
        key: PolicyKey, write: Write, recheck: Recheck | None = None
    ) -> tuple[str, Applied | TargetError]:
        try:
            return write.cell.name, write.cell.target.apply(write.change, write.observed, recheck)
        except TargetError as error:  # a sleep withdrawn because work came is no failure
            log.log(logging.WARNING if error.failure else logging.INFO, "%s/%s: %s", *key, error)
            return write.cell.name, error

    # Building a policy's life.

    async def _build_or_retry(self, key: PolicyKey) -> None:
        """Build the policy; if that fails in a way nobody foresaw (an apiserver that timed out
        while its schema, state or watches were fetched), say so and build it again later:
        a policy is never left unserved for good."""
        self._building += 1
        try:
            if await self._build(key):
                self.heap.built(self.clock())
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            slot = self.slots.get(key)
            if slot is None:
                return
            log.error(
                "%s/%s: not built: %s: %s; tried again in %g s",
                *key,
                type(exc).__name__,
                exc,
                slot.retry_after,
                exc_info=not isinstance(exc, OSError | HTTPError),  # no answer: no traceback
            )
            self._schedule(key, TimerKind.BUILD, slot.retry_after)
        finally:
            self._building -= 1
            if self._building == 0:
                self._kick.set()  # the loop may settle the heap once it has been quiet a moment

    async def _build(self, key: PolicyKey, *, watch: bool = True) -> bool:
        """Parse, check, assemble and start the policy; an unusable one is reported and tried
        again later (a missing Secret may be created meanwhile)."""
        slot = self.slots.get(key)
        if slot is None:
            return False
        if slot.life is not None:
            slot.states = slot.life.states
        self._retire(key, slot)
        body = slot.body
        manifest = slot.manifest()
        await asyncio.to_thread(self.shell.inspect, key, manifest)
        try:
            policy = await asyncio.to_thread(parse_policy, manifest)
        except PolicyInvalid as exc:  # tried again when the policy changes, not before
            await self._unusable(key, slot, [str(e) for e in exc.errors], "InvalidPolicy")
            return False
        slot.retry_after = min(30.0, max(5.0, policy.polling_interval.total_seconds()))
        refused = refusals(policy, self.config)
        if refused:  # before anything is built: no API call for a refused target
            return await self._refused(key, slot, refused)
        try:
            parts = await asyncio.to_thread(self._assemble, policy, body)
            refused = await asyncio.to_thread(self.shell.admit, policy, parts)
        except SourceError as exc:
            return await self._retry(key, slot, [str(exc)], "SourceConfigError")
        except TargetConfigError as exc:
            return await self._retry(key, slot, [str(exc)], "TargetConfigError")
        except AccessUnknown as exc:
            return await self._retry(key, slot, [str(exc)], "AccessReviewFailed")
        if refused:
            return await self._refused(key, slot, refused)
        if slot.states is None:
            slot.states = await asyncio.to_thread(self.shell.restore, key, body)
        slot.status = None  # the shell has what it needed of it
        if self.slots.get(key) is not slot:  # forgotten meanwhile
            return False
        life = PolicyLife.of(policy, parts, slot.states)
        slot.life = life
        self.metrics.invalid.labels(*key).set(0)
        if watch:
            slot.watches = await asyncio.to_thread(self._watch, key, parts)
            if self.cluster is not None:
                await asyncio.to_thread(self.cluster.attach, key, life)
            self._arm_poll(key, life)
            if self.shell.recheck_seconds is not None:
                self._schedule(key, TimerKind.RECHECK, self.shell.recheck_seconds)
            self._request(key, read=True, force=set(life.cells))
        return True

    def _assemble(self, policy: Any, body: Mapping[str, Any]) -> Assembly:
        return assemble(
            policy,
            resolve_secret=self.shell.secrets(policy.namespace),
            config=self.config,
            owner=self.shell.owner(body),
        )

    def _watch(self, key: PolicyKey, parts: Assembly) -> list[Watch]:
        watches: list[Watch] = []
        for source in parts.sources.values():
            if isinstance(source, PushSource):
                try:
                    watches.append(source.watch(lambda _metric: self.pushed(key)))
                except SourceError as exc:  # a source that cannot push is polled: say so
                    log.info("no push wake for %s: %s", source.metric, exc)
        return watches

    async def _recheck(self, key: PolicyKey) -> None:
        """Ask again whether the running policy may still act (RBAC can be revoked)."""
        slot = self.slots.get(key)
        if slot is None or slot.life is None or self.shell.recheck_seconds is None:
            return
        life = slot.life
        try:
            refused = await asyncio.to_thread(self.shell.admit, life.policy, life.parts)
        except AccessUnknown as exc:  # the last answer stands a while
            log.warning("%s/%s: %s", *key, exc)
            self._schedule(key, TimerKind.RECHECK, 30.0)
            return
        if refused:
            slot.states = life.states
            self._retire(key, slot)
            await self._refused(key, slot, refused)
            return
        self._schedule(key, TimerKind.RECHECK, self.shell.recheck_seconds)

    def _retire(self, key: PolicyKey, slot: _Slot) -> None:
        """Stop what a built life runs (its watches and timers); its state is kept aside."""
        self._stop_watches(slot)
        if self.cluster is not None and slot.life is not None:
            self.cluster.detach(key)
        slot.life = None
        for kind in (TimerKind.POLL, TimerKind.DEADLINE, TimerKind.RECHECK):
            self.timers.cancel(key, kind)

    def _stop_watches(self, slot: _Slot) -> None:
        for watch in slot.watches:
            watch.stop()
        slot.watches = []

    async def _refused(self, key: PolicyKey, slot: _Slot, refused: list[Refusal]) -> bool:
        # RBAC and allowlists change: asked again at the next try.
        return await self._retry(key, slot, [str(r) for r in refused], refused[0].reason)

    async def _retry(self, key: PolicyKey, slot: _Slot, errors: list[str], reason: str) -> bool:
        await self._unusable(key, slot, errors, reason)
        if self.slots.get(key) is slot:
            self._schedule(key, TimerKind.BUILD, slot.retry_after)
        return False

    async def _unusable(self, key: PolicyKey, slot: _Slot, errors: list[str], reason: str) -> None:
        self.metrics.invalid.labels(*key).set(1)
        if not self._may_write(key):
            return
        try:
            await asyncio.to_thread(self.shell.unusable, key, slot.body, errors, reason)
        except ReportFailed as exc:  # said again when the policy is next built
            log.warning("%s/%s: %s: %s", *key, reason, exc)
