"""What differs between `autozero run` and the operator: where state lives, where reports go.

The runtime does everything else the same way for both: parse, tenancy checks, assembly, push
watches, informers, deadlines, reads, decisions and writes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from autozero.engine.state import GroupState
from autozero.policy.model import Policy
from autozero.runtime.assemble import Assembly
from autozero.runtime.life import PolicyKey
from autozero.runtime.report import CycleReport
from autozero.targets.kubernetes import Owner
from autozero.tenancy import Refusal

SecretResolver = Callable[[str, str], str]


class AccessUnknown(Exception):
    """The shell could not say whether a policy may act (an authorizer that did not answer):
    the policy is not served meanwhile, and is asked about again soon."""


class ReportFailed(Exception):
    """The shell could not record a pass (the apiserver did not take the status, or an Event).

    The pass's decisions and writes stand. `written`: whether the status itself was written (only
    the Events were lost, which are not sent again); if not, the runtime reports it again, with
    backoff, until it is."""

    def __init__(self, message: str, *, written: bool) -> None:
        super().__init__(message)
        self.written = written


class Shell(Protocol):
    """A shell's blocking methods run in worker threads; none is called for two passes of one
    policy at once."""

    #: Seconds between two `admit` calls for a running policy (RBAC can be revoked); None: once.
    recheck_seconds: float | None
    #: Whether `persist` does anything (a state file); the operator's state is in the status.
    persists: bool

    def secrets(self, namespace: str) -> SecretResolver:
        """Read a Secret's key in `namespace` (KeyError-free: a typed SourceConfigError)."""
        ...

    def owner(self, body: Mapping[str, Any]) -> Owner | None:
        """What owns the objects autozero creates for this policy (an HPA), if anything."""
        ...

    def inspect(self, key: PolicyKey, manifest: Mapping[str, Any]) -> None:
        """Look at the policy as it was stored, before it is parsed (the operator compares it
        with what the served CRD can hold)."""
        ...

    def restore(self, key: PolicyKey, body: Mapping[str, Any]) -> Mapping[str, GroupState]:
        """The engine state a restarted autozero resumes from."""
        ...

    def admit(self, policy: Policy, parts: Assembly) -> list[Refusal]:
        """What the policy may not do beyond the tenancy rules (the operator asks RBAC)."""
        ...

    def report(self, key: PolicyKey, body: Mapping[str, Any], report: CycleReport) -> None:
        """A pass decided some groups: say so (status and Events, or lines on stdout).
        ReportFailed when they could not be recorded."""
        ...

    def begin(
        self, key: PolicyKey, body: Mapping[str, Any], states: Mapping[str, GroupState]
    ) -> None:
        """A scale-out of several writes is about to start: keep the count it goes to (the
        groups' `finishing`) where a restart finds it. ReportFailed when it could not."""
        ...

    def persist(self, key: PolicyKey, states: Mapping[str, GroupState]) -> None:
        """Keep the state after a pass that changed it (a file), or nothing (the status)."""
        ...

    def unusable(
        self, key: PolicyKey, body: Mapping[str, Any], errors: list[str], reason: str
    ) -> None:
        """The policy cannot be served as it is: say why (a condition and an Event, or stderr)."""
        ...

    def forget(self, key: PolicyKey) -> None:
        """The policy is no longer served (deleted, or handed to another replica)."""
        ...
