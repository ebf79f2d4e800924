"""GCE managed instance groups, zonal and regional, through google-api-python-client.

Observation is batched: one paginated list per zone or region per cycle, whatever the number of
groups. Writes happen only when the observed state differs from the change. Every mutation carries
a `requestId`, so a retried call is applied once, and waits for its Operation (the `wait` method
returns after ~2 minutes at most, done or not, so it is called in a loop).

Handoff (docs/concepts.md): on Wake, resize to the wake count and then create the group's
autoscaler (min, max, cool-down, CPU target); before Sleep, delete the autoscaler and only then
resize to 0. Delete rather than `mode: OFF`: a deleted autoscaler cannot linger with a stale
configuration or be mistaken for the user's own, and a new one is made from the current policy at
the next wake. The autoscaler exists exactly while the group is awake; `apply` restores that after
a crash between two steps (an awake group without one gets one, a group at 0 loses it).
"""

from __future__ import annotations

import random
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from autozero.policy.model import GCEAutoscalerHandoff, GCETarget
from autozero.targets.base import (
    Applied,
    Change,
    Observed,
    Step,
    TargetError,
    TargetForbidden,
    TargetNotFound,
    converge,
    plan,
)

AUTOSCALER_PREFIX = "autozero-"
COMPUTE_SCOPE = "https://www.googleapis.com/auth/compute"
_RETRYABLE_403 = {"rateLimitExceeded", "userRateLimitExceeded"}


def autoscaler_name(group: str) -> str:
    """The name of the autoscaler autozero makes for a group (names mark ownership)."""
    return (AUTOSCALER_PREFIX + group)[:63].rstrip("-")


@dataclass(frozen=True, slots=True)
class Where:
    project: str
    kind: str  # "zones" or "regions"
    location: str

    @classmethod
    def of(cls, target: GCETarget) -> Where:
        if target.zone:
            return cls(target.project, "zones", target.zone)
        return cls(target.project, "regions", target.region or "")

    def __str__(self) -> str:
        return f"projects/{self.project}/{self.kind}/{self.location}"


class GCEError(TargetError):
    """A Compute API error, with where it happened and the API's own status and reason."""

    def __init__(self, group: str, where: Where, status: int, reason: str, message: str) -> None:
        self.where, self.status, self.reason = where, status, reason
        super().__init__(group, f"{where}: HTTP {status} {reason}: {message}")

    @property
    def retryable(self) -> bool:  # type: ignore[override]
        return (
            self.reason == "unreachable"
            or self.status in (429, 500, 502, 503, 504)
            or (self.status == 403 and self.reason in _RETRYABLE_403)
            or (self.status == 409 and self.reason in ("operationInProgress", "resourceNotReady"))
        )


def _http_error(exc: Exception, group: str, where: Where) -> TargetError:
    status = int(getattr(getattr(exc, "resp", None), "status", 0) or 0)
    details = getattr(exc, "error_details", None)
    reason = details[0].get("reason", "") if isinstance(details, list) and details else ""
    message = str(getattr(exc, "reason", "") or exc)
    if status == 404:
        return TargetNotFound(group, f"{where}: {message}")
    if status == 403 and reason not in _RETRYABLE_403:
        return TargetForbidden(group, f"{where}: {message}")
    return GCEError(group, where, status, reason, message)


@dataclass
class Retry:
    """Jittered exponential backoff ("full jitter"), bounded in attempts."""

    attempts: int = 6
    base: float = 0.5
    cap: float = 8.0
    sleep: Callable[[float], None] = time.sleep
    rand: Callable[[], float] = random.random

    def delay(self, attempt: int) -> float:
        return float(min(self.cap, self.base * 2**attempt) * self.rand())


@dataclass
class Compute:
    """A compute v1 service with autozero's retry policy and operation waiting."""

    service: Any
    retry: Retry = field(default_factory=Retry)
    operation_timeout: float = 600.0
    calls: int = 0  # requests sent, for tests and metrics

    @classmethod
    def build(
        cls,
        *,
        endpoint: str | None = None,
        credentials: Any = None,
        service_account_info: Mapping[str, Any] | None = None,
        timeout: float = 30.0,
        retry: Retry | None = None,
    ) -> Compute:
        """ADC by default (Workload Identity in a cluster); a key from a Secret; or anonymous
        against an `endpoint` such as the emulator's. Credentials are never logged."""
        import google.auth
        import google_auth_httplib2
        import httplib2
        from google.auth.credentials import AnonymousCredentials
        from google.oauth2 import service_account
        from googleapiclient import discovery

        if credentials is None:
            if service_account_info is not None:
                credentials = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
                    dict(service_account_info), scopes=[COMPUTE_SCOPE]
                )
            elif endpoint is not None:
                credentials = AnonymousCredentials()  # type: ignore[no-untyped-call]
            else:
                credentials, _ = google.auth.default(scopes=[COMPUTE_SCOPE])
        http = google_auth_httplib2.AuthorizedHttp(credentials, http=httplib2.Http(timeout=timeout))
        service = discovery.build(
            "compute",
            "v1",
            http=http,
            static_discovery=True,
            cache_discovery=False,
            client_options={"api_endpoint": endpoint} if endpoint else None,
        )
        return cls(service, retry or Retry())

    def call(self, request: Any, group: str, where: Where) -> dict[str, Any]:
        """Execute `request`, retrying only what is retryable; typed errors otherwise."""
        from googleapiclient.errors import HttpError

        attempt = 0
        while True:
            self.calls += 1
            try:
                answer: dict[str, Any] = request.execute(num_retries=0)
                return answer
            except HttpError as exc:
                error = _http_error(exc, group, where)
            except (OSError, TimeoutError) as exc:  # connection refused, reset, timed out
                error = GCEError(group, where, 0, "unreachable", str(exc))
            attempt += 1
            if not error.retryable or attempt >= self.retry.attempts:
                raise error
            self.retry.sleep(self.retry.delay(attempt))

    def operations(self, where: Where) -> Any:
        return (
            self.service.zoneOperations()
            if where.kind == "zones"
            else (self.service.regionOperations())
        )

    def wait(self, operation: dict[str, Any], group: str, where: Where) -> dict[str, Any]:
        """Wait for an Operation to be DONE (in a loop: `wait` may return before), then check it."""
        deadline = time.monotonic() + self.operation_timeout
        scope = {"zone": where.location} if where.kind == "zones" else {"region": where.location}
        while operation.get("status") != "DONE":
            if time.monotonic() > deadline:
                raise GCEError(
                    group,
                    where,
                    504,
                    "operationTimeout",
                    f"operation {operation.get('name')} not done after "
                    f"{self.operation_timeout:.0f}s",
                )
            operation = self.call(
                self.operations(where).wait(
                    project=where.project, operation=operation["name"], **scope
                ),
                group,
                where,
            )
        if "error" in operation:
            errors = operation["error"].get("errors", [{}])
            raise GCEError(
                group,
                where,
                int(operation.get("httpErrorStatusCode", 500)),
                str(errors[0].get("code", "operationFailed")),
                str(errors[0].get("message", "operation failed")),
            )
        return operation


def _observed(item: Mapping[str, Any]) -> Observed:
    actions = item.get("currentActions", {})
    status = item.get("status", {})
    link = status.get("autoscaler")
    name = link.rsplit("/", 1)[1] if link else None
    return Observed(
        replicas=int(item.get("targetSize", 0)),
        ready=int(actions.get("none", 0)),
        stable=bool(status.get("isStable", True)),
        autoscaler=name,
        owned_autoscaler=bool(name and name.startswith(AUTOSCALER_PREFIX)),
    )


def observe_groups(
    compute: Compute, targets: Mapping[str, GCETarget], *, page_size: int = 500
) -> dict[str, Observed | TargetError]:
    """Observe many groups with one paginated list call per zone or region."""
    by_scope: dict[Where, dict[str, str]] = defaultdict(dict)  # where -> MIG name -> group name
    for group, target in targets.items():
        by_scope[Where.of(target)][target.instance_group_manager] = group
    out: dict[str, Observed | TargetError] = {}
    for where, wanted in by_scope.items():
        scope = {"zone": where.location} if where.kind == "zones" else {"region": where.location}
        collection = (
            compute.service.instanceGroupManagers()
            if where.kind == "zones"
            else (compute.service.regionInstanceGroupManagers())
        )
        found: dict[str, Observed] = {}
        try:
            request = collection.list(project=where.project, maxResults=page_size, **scope)
            while request is not None:
                page = compute.call(request, ",".join(sorted(wanted.values())), where)
                for item in page.get("items", []):
                    if item.get("name") in wanted:
                        found[item["name"]] = _observed(item)
                request = collection.list_next(request, page)
        except TargetError as error:
            for group in wanted.values():
                out[group] = error
            continue
        for mig, group in wanted.items():
            out[group] = found.get(mig) or TargetNotFound(
                group, f"{where}/instanceGroupManagers/{mig} was not found"
            )
    return out


@dataclass
class GCEGroup:
    """One managed instance group as a ScaleTarget."""

    name: str
    target: GCETarget
    compute: Compute

    @property
    def where(self) -> Where:
        return Where.of(self.target)

    def _scope(self) -> dict[str, str]:
        return (
            {"zone": self.where.location}
            if self.where.kind == "zones"
            else {"region": self.where.location}
        )

    def _managers(self) -> Any:
        service = self.compute.service
        return (
            service.instanceGroupManagers()
            if self.where.kind == "zones"
            else (service.regionInstanceGroupManagers())
        )

    def _autoscalers(self) -> Any:
        service = self.compute.service
        return (
            service.autoscalers() if self.where.kind == "zones" else (service.regionAutoscalers())
        )

    def _run(self, request: Any) -> dict[str, Any]:
        operation = self.compute.call(request, self.name, self.where)
        return self.compute.wait(operation, self.name, self.where)

    def observe(self) -> Observed:
        result = observe_groups(self.compute, {self.name: self.target})[self.name]
        if isinstance(result, TargetError):
            raise result
        return result

    def resize(self, size: int) -> None:
        self._run(
            self._managers().resize(
                project=self.target.project,
                instanceGroupManager=self.target.instance_group_manager,
                size=size,
                requestId=str(uuid.uuid4()),
                **self._scope(),
            )
        )

    def _policy(self, handoff: GCEAutoscalerHandoff) -> dict[str, Any]:
        policy: dict[str, Any] = {
            "mode": "ON",
            "minNumReplicas": handoff.min_replicas,
            "maxNumReplicas": handoff.max_replicas,
            "coolDownPeriodSec": int(handoff.cool_down_period.total_seconds()),
            "cpuUtilization": {"utilizationTarget": handoff.cpu_utilization_target},
        }
        if handoff.stabilization_period is not None:
            policy["stabilizationPeriodSec"] = int(handoff.stabilization_period.total_seconds())
        return policy

    def _self_link(self) -> str:
        group = self.compute.call(
            self._managers().get(
                project=self.target.project,
                instanceGroupManager=self.target.instance_group_manager,
                **self._scope(),
            ),
            self.name,
            self.where,
        )
        return str(group["selfLink"])

    def create_autoscaler(self, handoff: GCEAutoscalerHandoff) -> str:
        name = autoscaler_name(self.target.instance_group_manager)
        body = {
            "name": name,
            "target": self._self_link(),
            "autoscalingPolicy": self._policy(handoff),
        }
        try:
            self._run(
                self._autoscalers().insert(
                    project=self.target.project,
                    body=body,
                    requestId=str(uuid.uuid4()),
                    **self._scope(),
                )
            )
            return f"create autoscaler {name}"
        except GCEError as error:
            if error.status != 409:
                raise
        # Ours already exists (a run that crashed after creating it): make it match the policy.
        self._run(
            self._autoscalers().patch(
                project=self.target.project,
                autoscaler=name,
                body={"name": name, "autoscalingPolicy": body["autoscalingPolicy"]},
                requestId=str(uuid.uuid4()),
                **self._scope(),
            )
        )
        return f"update autoscaler {name}"

    def delete_autoscaler(self, name: str) -> None:
        self._run(
            self._autoscalers().delete(
                project=self.target.project,
                autoscaler=name,
                requestId=str(uuid.uuid4()),
                **self._scope(),
            )
        )

    def plan(self, change: Change, observed: Observed) -> tuple[Step, ...]:
        return plan(change, observed, handoff=isinstance(change.handoff, GCEAutoscalerHandoff))

    def apply(self, change: Change, observed: Observed) -> Applied:
        handoff = change.handoff if isinstance(change.handoff, GCEAutoscalerHandoff) else None

        def resize(was: int, to: int) -> str:
            self.resize(to)
            return f"resize {was} -> {to}"

        def delete(name: str) -> str:
            self.delete_autoscaler(name)
            return f"delete autoscaler {name}"

        def foreign(name: str) -> str:
            return (
                f"{self.where}/instanceGroupManagers/{self.target.instance_group_manager} "
                f"is autoscaled by {name}, which autozero did not create"
            )

        return converge(
            self.name,
            change,
            observed,
            handoff=handoff is not None,
            resize=resize,
            create_autoscaler=lambda: self.create_autoscaler(handoff) if handoff else "",
            delete_autoscaler=delete,
            foreign=foreign,
        )
