"""A policy over the in-process `tally` source and `memory` target (throwaway_kinds), and the
operator's shell as the runtime sees it, failing on demand: the runtime's unit tests run its real
loop, timers and threads over them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from autozero.engine.state import GroupState
from autozero.policy.model import Policy
from autozero.runtime.assemble import Assembly
from autozero.runtime.life import PolicyKey
from autozero.runtime.report import CycleReport
from autozero.runtime.shell import ReportFailed, SecretResolver
from autozero.tenancy import Refusal

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
