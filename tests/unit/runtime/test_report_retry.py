"""A pass the shell could not record (the apiserver did not take the status) is recorded again,
with backoff, before any later pass; its writes are not made twice; an Event lost is not retried.

The runtime runs for real (its loop, timers and threads) over the in-process `tally` source and
`memory` target of tests/support/throwaway_kinds.py, behind a shell that fails on demand."""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from autozero.engine.state import GroupState
from autozero.policy.model import Policy
from autozero.runtime.assemble import Assembly, RuntimeConfig
from autozero.runtime.life import PolicyKey
from autozero.runtime.loop import Runtime
from autozero.runtime.metrics import Metrics
from autozero.runtime.report import CycleReport
from autozero.runtime.shell import ReportFailed, SecretResolver
from autozero.sources.registry import SOURCES
from autozero.targets.registry import TARGETS
from autozero.tenancy import Refusal
from support import throwaway_kinds as throwaway

MANIFEST: dict[str, Any] = {
    "apiVersion": "autozero.dev/v1alpha1",
    "kind": "ScalingPolicy",
    "metadata": {"name": "p", "namespace": "ns", "uid": "u", "generation": 1},
    "spec": {
        "pollingInterval": "1s",
        "metrics": [{"name": "backlog", "tally": {"counter": "jobs"}}],
        "groups": [
            {
                "name": "workers",
                "target": {"memory": {"name": "w", "zone": "a"}},
                "capacity": {"minimum": 0, "maximum": 4, "default": 2},
                "activation": {"metric": "backlog", "idleFor": "1h"},
            }
        ],
    },
}


class FlakyShell:
    """The operator's shell as the runtime sees it, whose status writes fail `failures` times."""

    recheck_seconds = None
    persists = False

    def __init__(
        self, failures: int, *, events_lost: bool = False, unreachable_builds: int = 0
    ) -> None:
        self.failures, self.events_lost = failures, events_lost
        self.unreachable_builds = unreachable_builds
        self.attempts: list[CycleReport] = []
        self.recorded: list[CycleReport] = []

    def secrets(self, namespace: str) -> SecretResolver:
        return lambda name, key: ""

    def owner(self, body: Mapping[str, Any]) -> None:
        return None

    def inspect(self, key: PolicyKey, manifest: Mapping[str, Any]) -> None:
        if self.unreachable_builds:  # the apiserver timed out while its schema was fetched
            self.unreachable_builds -= 1
            raise ConnectionError("read timed out")

    def restore(self, key: PolicyKey, body: Mapping[str, Any]) -> Mapping[str, GroupState]:
        return {}

    def admit(self, policy: Policy, parts: Assembly) -> list[Refusal]:
        return []

    def report(self, key: PolicyKey, body: Mapping[str, Any], report: CycleReport) -> None:
        self.attempts.append(report)
        if self.failures:
            self.failures -= 1
            raise ReportFailed(
                "status not written: HTTP 503 the apiserver is restarting", written=False
            )
        self.recorded.append(report)
        if self.events_lost:
            raise ReportFailed("an Event not posted: HTTP 503", written=True)

    def begin(
        self, key: PolicyKey, body: Mapping[str, Any], states: Mapping[str, GroupState]
    ) -> None:
        pass

    def persist(self, key: PolicyKey, states: Mapping[str, GroupState]) -> None:
        pass

    def unusable(
        self, key: PolicyKey, body: Mapping[str, Any], errors: list[str], reason: str
    ) -> None:
        raise AssertionError(f"unusable: {reason}: {errors}")

    def forget(self, key: PolicyKey) -> None:
        pass


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setitem(SOURCES, throwaway.SOURCE.key, throwaway.SOURCE)
    monkeypatch.setitem(TARGETS, throwaway.TARGET.key, throwaway.TARGET)
    throwaway.reset()
    yield
    throwaway.reset()


async def serve_until(
    shell: FlakyShell, done: Any, *, timeout: float = 10.0, retry_after: float = 0.0
) -> Runtime:
    runtime = Runtime(shell, RuntimeConfig(), Metrics(), cluster_wide=False)
    runtime.report_retry = 0.05
    runtime.serve(copy.deepcopy(MANIFEST))
    if retry_after:
        runtime.slots[("ns", "p")].retry_after = retry_after
    serving = asyncio.get_running_loop().create_task(runtime.run())
    try:
        async with asyncio.timeout(timeout):
            while not done():
                await asyncio.sleep(0.02)
    finally:
        runtime.stop()
        await serving
    return runtime


def wakes(reports: list[CycleReport]) -> list[str]:
    return [
        f"{g.group} {g.decision.action.value}"
        for r in reports
        for g in r.fresh()
        if g.decision is not None and g.decision.action.value != "Hold"
    ]


def test_a_pass_whose_status_was_not_written_is_recorded_again(
    registered: None, caplog: pytest.LogCaptureFixture
) -> None:
    throwaway.COUNTS["jobs"] = 5
    shell = FlakyShell(failures=3)
    with caplog.at_level(logging.WARNING, logger="autozero.runtime.loop"):
        asyncio.run(serve_until(shell, lambda: shell.recorded))
    assert throwaway.REPLICAS == {"w": 2}
    assert wakes(shell.recorded) == ["workers Wake"]  # the wake, recorded at the fourth try
    # Three failures then the record; a poll's pass in between may try once more, never skip it.
    assert len(shell.attempts) >= 4
    first = shell.attempts[0]  # the wake's pass: tried until recorded, before any later one
    assert all(a is first for a in shell.attempts[:4])
    assert shell.recorded[0] is first
    retries = [r.getMessage() for r in caplog.records]
    said = "ns/p: status not written: HTTP 503 the apiserver is restarting; recorded again in"
    assert retries[:3] == [f"{said} 0.05 s", f"{said} 0.1 s", f"{said} 0.2 s"]  # with backoff
    assert all(r.startswith(said) for r in retries)
    assert not [r for r in caplog.records if r.exc_info]  # one line each, no traceback


def test_a_lost_event_is_said_once_and_not_retried(
    registered: None, caplog: pytest.LogCaptureFixture
) -> None:
    throwaway.COUNTS["jobs"] = 5
    shell = FlakyShell(failures=0, events_lost=True)
    with caplog.at_level(logging.WARNING, logger="autozero.runtime.loop"):
        asyncio.run(serve_until(shell, lambda: shell.recorded))
    assert wakes(shell.attempts) == ["workers Wake"]
    assert [r.getMessage() for r in caplog.records] == ["ns/p: an Event not posted: HTTP 503"]


def test_a_build_that_fails_unforeseen_is_tried_again(
    registered: None, caplog: pytest.LogCaptureFixture
) -> None:
    throwaway.COUNTS["jobs"] = 5
    shell = FlakyShell(failures=0, unreachable_builds=2)
    with caplog.at_level(logging.WARNING, logger="autozero.runtime.loop"):
        asyncio.run(serve_until(shell, lambda: shell.recorded, retry_after=0.05))
    assert throwaway.REPLICAS == {"w": 2}
    assert wakes(shell.recorded) == ["workers Wake"]
    said = "ns/p: not built: ConnectionError: read timed out; tried again in 0.05 s"
    assert [r.getMessage() for r in caplog.records] == [said, said]
    assert not [r for r in caplog.records if r.exc_info]  # a connection error: no traceback
