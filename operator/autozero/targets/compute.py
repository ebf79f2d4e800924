"""The Compute Engine API as autozero calls it: retries, operations, and typed errors.

Every mutation carries a `requestId`, so a retried call is applied once, and waits for its
Operation (the `wait` method returns after ~2 minutes at most, done or not, so it is called in a
loop). The client library is imported when a client is built, not with this module.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from autozero.targets.base import TargetError, TargetForbidden, TargetNotFound

COMPUTE_SCOPE = "https://www.googleapis.com/auth/compute"
_RETRYABLE_403 = {"rateLimitExceeded", "userRateLimitExceeded"}


@dataclass(frozen=True, slots=True)
class Where:
    project: str
    kind: str  # "zones" or "regions"
    location: str

    @classmethod
    def of(cls, project: str, zone: str | None, region: str | None) -> Where:
        """A zonal group's zone, else a regional group's region."""
        if zone:
            return cls(project, "zones", zone)
        return cls(project, "regions", region or "")

    @property
    def scope(self) -> dict[str, str]:
        """The location as the API's methods take it (`zone=` or `region=`)."""
        return {"zone": self.location} if self.kind == "zones" else {"region": self.location}

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

    @classmethod
    def within(cls, interval: float) -> Retry:
        """A policy's retries: no delay longer than its polling interval (nor the default cap).
        A pass waits on its calls, and the next pass asks again anyway: a delay drawn during a
        burst of 429/503 then outlives the burst by at most one interval, not by eight seconds
        (the chaos campaign saw a wake held 3.3 s past the burst at a 1 s interval)."""
        return cls(cap=min(cls.cap, max(cls.base, interval)))


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

    def call(
        self,
        request: Any,
        group: str,
        where: Where,
        *,
        before_retry: Callable[[TargetError], None] | None = None,
    ) -> dict[str, Any]:
        """Execute `request`, retrying only what is retryable; typed errors otherwise.
        `before_retry` is asked after each backoff delay, before the request is sent again, and
        may raise to stop there: a write decided on reads made before the first try may no
        longer be wanted once the delays have passed."""
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
            if before_retry is not None:
                before_retry(error)

    def operations(self, where: Where) -> Any:
        return (
            self.service.zoneOperations()
            if where.kind == "zones"
            else (self.service.regionOperations())
        )

    def wait(self, operation: dict[str, Any], group: str, where: Where) -> dict[str, Any]:
        """Wait for an Operation to be DONE (in a loop: `wait` may return before), then check it."""
        deadline = time.monotonic() + self.operation_timeout
        scope = where.scope
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
