"""One asyncio task per ScalingPolicy: evaluate every pollingInterval (or at once on pushed work),
then report in status, Events and metrics. A slow or broken policy only delays itself: each has
its own task, and its blocking calls run in worker threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from autozero.controller.access import AccessReviewer, AccessReviewFailed
from autozero.controller.cluster import Cluster, EventDeduper, PolicyRef
from autozero.controller.metrics import Metrics
from autozero.controller.status import build_status, invalid_status, restore_states
from autozero.engine.decision import Action
from autozero.engine.readings import Failure
from autozero.policy.errors import PolicyInvalid
from autozero.policy.model import Policy
from autozero.policy.parse import parse_policy
from autozero.reconcile import CycleReport, PolicyRunner, assemble
from autozero.sources.base import PushSource, SourceError, Watch
from autozero.targets.base import TargetConfigError
from autozero.targets.kubernetes import Owner
from autozero.tenancy import GCEAllowlist, Refusal, refusals

log = logging.getLogger(__name__)


@dataclass
class OperatorConfig:
    gce_endpoint: str | None = None
    gce_allow: GCEAllowlist = field(default_factory=GCEAllowlist)  # default: no project
    default_service_account: str | None = None  # policies without serviceAccountName use it
    access_recheck: float = 300.0  # seconds between SubjectAccessReviews of a running policy


@dataclass
class PolicyWorker:
    """Keeps one policy evaluated until stopped; rebuilt in place when the policy changes."""

    body: Mapping[str, Any]
    cluster: Cluster
    metrics: Metrics
    config: OperatorConfig
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    runner: PolicyRunner | None = None
    policy: Policy | None = None
    status: dict[str, Any] = field(default_factory=dict)
    events: EventDeduper = field(default_factory=EventDeduper)
    watches: list[Watch] = field(default_factory=list)
    loop: asyncio.AbstractEventLoop | None = None
    rebuild: bool = True
    access_due: float = 0.0  # monotonic time of the next SubjectAccessReview
    retry_after: float = 30.0  # seconds before an unusable policy is tried again

    @property
    def ref(self) -> PolicyRef:
        meta = self.body["metadata"]
        return PolicyRef(meta["namespace"], meta["name"], meta.get("uid", ""))

    def update(self, body: Mapping[str, Any]) -> None:
        """A new version of the policy: rebuild on the next cycle if the spec or paused changed."""
        old, new = self.body.get("metadata", {}), body.get("metadata", {})
        if (old.get("generation"), old.get("annotations")) != (
            new.get("generation"),
            new.get("annotations"),
        ):
            self.rebuild = True
            self.wake.set()
        self.body = body

    def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.status = dict(self.body.get("status") or {})
        self.task = asyncio.create_task(
            self._run(), name=f"policy:{self.ref.namespace}/{self.ref.name}"
        )

    async def stop(self) -> None:
        self._stop_watches()
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    def _stop_watches(self) -> None:
        for watch in self.watches:
            watch.stop()
        self.watches.clear()

    async def _run(self) -> None:
        while True:
            interval = 15.0
            try:
                interval = await self._cycle()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s/%s: cycle failed", self.ref.namespace, self.ref.name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=interval)
            self.wake.clear()

    async def _cycle(self) -> float:
        if self.rebuild or self.runner is None:  # an unusable policy (no runner) is retried
            ready = await asyncio.to_thread(self._build)
            if not ready:
                return self.retry_after
        elif time.monotonic() >= self.access_due and not await asyncio.to_thread(self._recheck):
            return self.retry_after
        assert self.runner is not None
        assert self.policy is not None
        started = time.monotonic()
        report = await asyncio.to_thread(self.runner.cycle, datetime.now(UTC))
        self.metrics.record(self.ref.namespace, report, time.monotonic() - started)
        await asyncio.to_thread(self._report, report)
        return self.policy.polling_interval.total_seconds()

    def _build(self) -> bool:
        """Parse the policy and make its runner; an unusable policy gets a condition and an
        Event, and is tried again later (a missing Secret may be created meanwhile)."""
        self.rebuild = False
        self._stop_watches()
        generation = self.body["metadata"].get("generation")
        try:
            self.retry_after = 30.0
            policy = parse_policy(dict(self.body))
            # A fix (a Secret, a RoleBinding) is noticed within a poll or two, not hammered.
            self.retry_after = min(30.0, max(5.0, policy.polling_interval.total_seconds()))
            refused = refusals(policy, self.config.gce_allow)
            if refused:  # before anything is built: no API call for a refused target
                self._refused(refused)
                return False
            owner = Owner("autozero.dev/v1alpha1", "ScalingPolicy", self.ref.name, self.ref.uid)
            runner = assemble(
                policy,
                resolve_secret=lambda name, key: self.cluster.secret(self.ref.namespace, name, key),
                gce_endpoint=self.config.gce_endpoint,
                kube_api=self.cluster.api,
                owner=owner,
            )
            refused = self._reviewed(policy, runner)
        except PolicyInvalid as exc:
            self._unusable([str(e) for e in exc.errors], "InvalidPolicy", generation)
            return False
        except SourceError as exc:  # a Secret may be created meanwhile: tried again
            self._unusable([str(exc)], "SourceConfigError", generation)
            return False
        except TargetConfigError as exc:
            self._unusable([str(exc)], "TargetConfigError", generation)
            return False
        except AccessReviewFailed as exc:
            self._unusable([str(exc)], "AccessReviewFailed", generation)
            return False
        if refused:  # RBAC may change: asked again at the next try
            self._refused(refused)
            return False
        previous = self.runner.states if self.runner else restore_states(self.status)
        runner.states.update(previous)
        self.policy, self.runner = policy, runner
        self.events.forget("policy")
        for source in runner.sources.values():
            if isinstance(source, PushSource):
                try:
                    self.watches.append(source.watch(self._pushed))
                except SourceError as exc:
                    log.info("no push wake for %s: %s", source.metric, exc)
        return True

    def _account(self, policy: Policy) -> str | None:
        return policy.service_account or self.config.default_service_account

    def _reviewed(self, policy: Policy, runner: PolicyRunner) -> list[Refusal]:
        """What the policy's ServiceAccount could not do itself (nothing when it has none)."""
        account = self._account(policy)
        self.access_due = time.monotonic() + self.config.access_recheck
        if account is None:
            return []
        return AccessReviewer(self.cluster.api).refusals(policy, account, runner.targets)

    def _recheck(self) -> bool:
        """Ask again whether the running policy may still act (RBAC can be revoked)."""
        assert self.policy is not None
        assert self.runner is not None
        try:
            refused = self._reviewed(self.policy, self.runner)
        except AccessReviewFailed as exc:
            log.warning("%s/%s: %s", self.ref.namespace, self.ref.name, exc)
            self.access_due = time.monotonic() + 30.0  # the last answer stands until then
            return True
        if refused:
            self._stop_watches()
            self._refused(refused)
            return False
        return True

    def _refused(self, refused: list[Refusal]) -> None:
        generation = self.body["metadata"].get("generation")
        self._unusable([str(r) for r in refused], refused[0].reason, generation)

    def _pushed(self, _metric: str) -> None:
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self.wake.set)

    def _unusable(self, errors: list[str], reason: str, generation: Any) -> None:
        self.policy = self.runner = None
        self.metrics.invalid.labels(self.ref.namespace, self.ref.name).set(1)
        status = invalid_status(
            errors,
            generation=generation,
            now=datetime.now(UTC),
            previous=self.status,
            reason=reason,
        )
        self._write(status)
        message = "; ".join(errors)
        if self.events.should_post("policy", reason, message):
            self.cluster.event(self.ref, reason=reason, message=message, warning=True)

    def _write(self, status: dict[str, Any]) -> None:
        if status != self.status:
            self.cluster.patch_status(self.ref, status)
            self.status = status

    def _report(self, report: CycleReport) -> None:
        assert self.runner is not None
        assert self.policy is not None
        status = build_status(
            report,
            self.runner.states,
            generation=self.body["metadata"].get("generation"),
            paused=not self.runner.acting,
            previous=self.status,
        )
        self._write(status)
        for group in report.groups:
            key = f"group:{group.group}"
            if group.error is not None:
                if self.events.should_post(key, "TargetError", str(group.error)):
                    self.cluster.event(
                        self.ref, reason="TargetError", message=str(group.error), warning=True
                    )
                continue
            decision = group.decision
            if decision is not None and decision.action is not Action.HOLD:
                self.events.forget(key)
                verb = "Would" if not group.acted else ""
                steps = "; ".join(group.applied.steps) if group.applied else ""
                message = (
                    f"{group.group}: {decision.current} -> {decision.target}: "
                    f"{decision.message}" + (f" [{steps}]" if steps else "")
                )
                self.cluster.event(
                    self.ref, reason=f"{verb}{decision.action.value}", message=message
                )
        for metric, reading in report.readings.items():
            key = f"metric:{metric}"
            if isinstance(reading, Failure):
                if self.events.should_post(key, "SourceFailed", reading.kind):
                    self.cluster.event(
                        self.ref,
                        reason="SourceFailed",
                        message=f"{metric}: {reading.message}",
                        warning=True,
                    )
            elif self.events.forget(key):
                self.cluster.event(
                    self.ref, reason="SourceRecovered", message=f"{metric} can be read again"
                )


class Workers:
    """Every policy the operator serves, by namespace and name."""

    def __init__(
        self, cluster: Cluster, metrics: Metrics, config: OperatorConfig, *, active: bool = True
    ) -> None:
        self.cluster, self.metrics, self.config = cluster, metrics, config
        self.workers: dict[tuple[str, str], PolicyWorker] = {}
        self.active = active  # False for a follower: it knows every policy and acts on none

    def seen(self, body: Mapping[str, Any]) -> None:
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        worker = self.workers.get(key)
        if worker is None:
            worker = PolicyWorker(body, self.cluster, self.metrics, self.config)
            self.workers[key] = worker
            if self.active:
                worker.start()
        else:
            worker.update(body)

    def activate(self) -> None:
        """This replica became the leader: start acting on every policy it knows."""
        self.active = True
        for worker in self.workers.values():
            if worker.task is None:
                worker.start()

    async def gone(self, namespace: str, name: str) -> None:
        worker = self.workers.pop((namespace, name), None)
        if worker is not None:
            await worker.stop()
            self.metrics.forget(namespace, name)

    async def stop_all(self) -> None:
        """Stop every worker at once, so shutdown takes one worker's time, not the sum."""
        await asyncio.gather(*(self.gone(*key) for key in list(self.workers)))
