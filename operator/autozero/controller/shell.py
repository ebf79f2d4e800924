"""The operator's shell over the runtime: state lives in the policy's status, reports go to the
status, Events and `/metrics`, and RBAC (SubjectAccessReview) bounds what a policy may do.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from autozero.controller.access import AccessReviewer
from autozero.controller.cluster import Cluster, EventDeduper, PolicyRef
from autozero.controller.served_schema import ServedSchema
from autozero.controller.status import (
    begun_status,
    build_status,
    condition,
    invalid_status,
    restore_states,
)
from autozero.engine.decision import Action
from autozero.engine.readings import Failure
from autozero.engine.state import GroupState
from autozero.policy.drift import applied_manifest, dropped_fields, outdated_crd_message
from autozero.policy.model import API_GROUP, API_VERSION, KIND, Policy
from autozero.runtime.assemble import Assembly
from autozero.runtime.errors import request_failure
from autozero.runtime.life import PolicyKey
from autozero.runtime.report import CycleReport
from autozero.runtime.shell import ReportFailed, SecretResolver
from autozero.targets.kubernetes import Owner
from autozero.tenancy import Refusal

log = logging.getLogger(__name__)
#: What a request to the apiserver raises when it fails: its answer, or no answer.
REQUEST_ERRORS = (ApiException, HTTPError, OSError)


def _packed(status: Mapping[str, Any]) -> str:
    return json.dumps(status, sort_keys=True, separators=(",", ":"))


def _ref(body: Mapping[str, Any]) -> PolicyRef:
    meta = body.get("metadata") or {}
    return PolicyRef(str(meta.get("namespace")), str(meta.get("name")), str(meta.get("uid", "")))


@dataclass
class OperatorShell:
    cluster: Cluster
    default_service_account: str | None = None  # for policies without serviceAccountName
    recheck_seconds: float | None = 300.0
    persists: bool = False
    # The status last written, as compact JSON: compared before every write, and a tenth of the
    # weight of the dicts for thousands of policies.
    statuses: dict[PolicyKey, str] = field(default_factory=dict)
    schema: ServedSchema | None = None  # what the served CRD lacks; None: not compared
    dropped: dict[PolicyKey, list[str]] = field(default_factory=dict)  # by an older CRD
    events: dict[PolicyKey, EventDeduper] = field(default_factory=dict)
    served_by: str | None = None  # a sharded replica's identity, said in status.servedBy

    def secrets(self, namespace: str) -> SecretResolver:
        return lambda name, key: self.cluster.secret(namespace, name, key)

    def owner(self, body: Mapping[str, Any]) -> Owner | None:
        ref = _ref(body)
        return Owner(f"{API_GROUP}/{API_VERSION}", KIND, ref.name, ref.uid)

    def inspect(self, key: PolicyKey, manifest: Mapping[str, Any]) -> None:
        """Which fields of this policy, as `kubectl apply` sent it, an older CRD dropped."""
        self.dropped.pop(key, None)
        if self.schema is None or not self.schema.missing():
            return
        applied = applied_manifest(manifest)
        if applied is not None:
            found = dropped_fields({"spec": applied.get("spec")}, {"spec": manifest.get("spec")})
            if found:
                self.dropped[key] = found

    def _crd_condition(
        self, key: PolicyKey, now: datetime, previous: Mapping[str, Any]
    ) -> dict[str, Any]:
        missing = self.schema.missing() if self.schema is not None else []
        note = outdated_crd_message(missing, self.dropped.get(key, ()))
        return condition(
            "CRDCurrent",
            note is None,
            "CRDOutdated" if note else "Current",
            note or "the served CRD holds every field this autozero knows",
            now,
            previous.get("conditions") or [],
        )

    def restore(self, key: PolicyKey, body: Mapping[str, Any]) -> Mapping[str, GroupState]:
        status = self._status(key, body)
        return restore_states(status)

    def admit(self, policy: Policy, parts: Assembly) -> list[Refusal]:
        """What the policy's ServiceAccount could not do itself (nothing when it has none)."""
        account = policy.service_account or self.default_service_account
        if account is None:
            return []
        return AccessReviewer(self.cluster.api).refusals(policy, account, parts.targets)

    def report(self, key: PolicyKey, body: Mapping[str, Any], report: CycleReport) -> None:
        ref = _ref(body)
        previous = self._status(key, body)
        status = build_status(
            report,
            report.states,
            generation=(body.get("metadata") or {}).get("generation"),
            paused=not report.acting,
            previous=previous,
        )
        status["conditions"].append(self._crd_condition(key, report.at, previous))
        try:
            written = self._write(key, ref, status)
        except REQUEST_ERRORS as exc:
            raise ReportFailed(
                f"status not written: {request_failure(exc)}", written=False
            ) from None
        if not written:  # the policy is gone (deleted during the pass): nothing to say
            return
        try:
            self._post_events(key, ref, report)
        except REQUEST_ERRORS as exc:
            raise ReportFailed(
                f"an Event not posted: {request_failure(exc)}", written=True
            ) from None

    def begin(
        self, key: PolicyKey, body: Mapping[str, Any], states: Mapping[str, GroupState]
    ) -> None:
        """The last status with the groups' `finishing` counts, before the writes start."""
        try:
            self._write(key, _ref(body), begun_status(self._status(key, body), states))
        except REQUEST_ERRORS as exc:
            raise ReportFailed(
                f"status not written before a scale-out: {request_failure(exc)}", written=False
            ) from None

    def persist(self, key: PolicyKey, states: Mapping[str, GroupState]) -> None:
        """Nothing: the durable state (idle since, last scale) is part of the status."""

    def unusable(
        self, key: PolicyKey, body: Mapping[str, Any], errors: list[str], reason: str
    ) -> None:
        ref = _ref(body)
        now = datetime.now(UTC)
        previous = self._status(key, body)
        status = invalid_status(
            errors,
            generation=(body.get("metadata") or {}).get("generation"),
            now=now,
            previous=previous,
            reason=reason,
        )
        status["conditions"].append(self._crd_condition(key, now, previous))
        message = "; ".join(errors)
        try:
            written = self._write(key, ref, status)
        except REQUEST_ERRORS as exc:
            raise ReportFailed(
                f"status not written: {request_failure(exc)}", written=False
            ) from None
        if not written:  # the policy is gone
            return
        deduper = self.events.setdefault(key, EventDeduper())
        if deduper.should_post("policy", reason, message):
            try:
                self.cluster.event(ref, reason=reason, message=message, warning=True)
            except REQUEST_ERRORS as exc:
                deduper.forget("policy")  # posted again next time
                raise ReportFailed(
                    f"an Event not posted: {request_failure(exc)}", written=True
                ) from None

    def forget(self, key: PolicyKey) -> None:
        self.statuses.pop(key, None)
        self.dropped.pop(key, None)
        self.events.pop(key, None)

    def _status(self, key: PolicyKey, body: Mapping[str, Any]) -> dict[str, Any]:
        if key not in self.statuses:
            self.statuses[key] = _packed(dict(body.get("status") or {}))
        status: dict[str, Any] = json.loads(self.statuses[key])
        return status

    def _write(self, key: PolicyKey, ref: PolicyRef, status: dict[str, Any]) -> bool:
        """Patch the status subresource, only when it changed; False when the policy is gone."""
        if self.served_by is not None:
            status["servedBy"] = self.served_by
        packed = _packed(status)
        if packed != self.statuses.get(key):
            if not self.cluster.patch_status(ref, status):
                return False
            self.statuses[key] = packed
        return True

    def _post_events(self, key: PolicyKey, ref: PolicyRef, report: CycleReport) -> None:
        deduper = self.events.setdefault(key, EventDeduper())
        deduper.forget("policy")
        for group in report.fresh():
            label = f"group:{group.group}"
            error = group.error
            if error is not None:
                if deduper.should_post(label, error.event_reason, str(error)):
                    self.cluster.event(
                        ref, reason=error.event_reason, message=str(error), warning=error.failure
                    )
                continue
            decision = group.decision
            if decision is not None and decision.action is not Action.HOLD:
                deduper.forget(label)
                verb = "Would" if not group.acted else ""
                steps = "; ".join(group.applied.steps) if group.applied else ""
                pool = f": {group.applied.pool}" if group.applied and group.applied.pool else ""
                message = (
                    f"{group.group}: {decision.current} -> {decision.target}: "
                    f"{decision.message}{pool}" + (f" [{steps}]" if steps else "")
                )
                self.cluster.event(ref, reason=f"{verb}{decision.action.value}", message=message)
        if not report.read:
            return
        for metric, reading in report.readings.items():
            label = f"metric:{metric}"
            if isinstance(reading, Failure):
                if deduper.should_post(label, "SourceFailed", reading.kind):
                    self.cluster.event(
                        ref,
                        reason="SourceFailed",
                        message=f"{metric}: {reading.message}",
                        warning=True,
                    )
            elif deduper.forget(label):
                self.cluster.event(
                    ref, reason="SourceRecovered", message=f"{metric} can be read again"
                )
