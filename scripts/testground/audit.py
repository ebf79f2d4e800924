"""Read the test apiserver's JSON audit log: which client sent which requests in a time window.

`apiserver_request_total` counts requests by verb and resource but not by client; the audit log
names the user (and user agent) of each, so two operators on one apiserver can be told apart.
Start the cluster with `start_cluster(audit_policy=...)`; the policy decides what is logged.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class AuditedRequest:
    """One request as the audit log saw it (its first logged stage)."""

    audit_id: str
    user: str
    user_agent: str
    verb: str
    resource: str  # [group/]resource[/subresource] (no group: core), or the non-resource URL
    namespace: str
    code: int | None  # None while a long-running request (a watch) is still streaming
    received: dt.datetime
    stage: str


class AuditLog:
    """A JSON audit log file written by kube-apiserver (`--audit-log-format=json`, no rotation).

    Take a `mark()` when a window starts and pass it to `requests()` when it ends: the requests the
    apiserver received from then on, each counted once (a watch when it starts streaming, as
    ResponseStarted; any other request when it completes)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def mark(self) -> tuple[int, dt.datetime]:
        """Where the log ends now, and the time: the start of a window."""
        size = self.path.stat().st_size if self.path.exists() else 0
        return size, dt.datetime.now(dt.UTC)

    def requests(self, mark: tuple[int, dt.datetime]) -> list[AuditedRequest]:
        offset, since = mark
        seen: set[str] = set()
        found: list[AuditedRequest] = []
        for event in self._events(offset):
            request = _request(event)
            if request is None or request.audit_id in seen or request.received < since:
                continue
            seen.add(request.audit_id)
            found.append(request)
        return found

    def _events(self, offset: int) -> Iterator[dict[str, object]]:
        with self.path.open("rb") as log:
            log.seek(offset)
            for line in log:
                if not line.endswith(b"\n"):
                    return  # an event still being written: it belongs to the next read
                yield json.loads(line)


def _request(event: dict[str, object]) -> AuditedRequest | None:
    if event.get("kind") != "Event" or event.get("stage") not in (
        "ResponseStarted",
        "ResponseComplete",
    ):
        return None
    user = event.get("user") or {}
    ref = event.get("objectRef") or {}
    status = event.get("responseStatus") or {}
    if not (isinstance(user, dict) and isinstance(ref, dict) and isinstance(status, dict)):
        raise ValueError(f"not an audit.k8s.io/v1 Event: {event.get('auditID')}")
    if ref:
        parts = (ref.get("apiGroup"), ref.get("resource"), ref.get("subresource"))
        resource = "/".join(str(part) for part in parts if part)
    else:
        resource = str(event.get("requestURI", "")).split("?", 1)[0]
    code = status.get("code")
    return AuditedRequest(
        audit_id=str(event["auditID"]),
        user=str(user.get("username", "")),
        user_agent=str(event.get("userAgent", "")),
        verb=str(event.get("verb", "")),
        resource=resource,
        namespace=str(ref.get("namespace", "")),
        code=int(code) if isinstance(code, int) and event["stage"] == "ResponseComplete" else None,
        received=_timestamp(str(event["requestReceivedTimestamp"])),
        stage=str(event["stage"]),
    )


def _timestamp(text: str) -> dt.datetime:
    """RFC 3339 with microseconds, as the apiserver writes them (`...T12:00:00.123456Z`)."""
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def count_by(requests: list[AuditedRequest], *fields: str) -> Counter[tuple[str, ...]]:
    """How many requests per combination of `fields` (e.g. "user", "verb", "resource")."""
    return Counter(tuple(str(getattr(r, f)) for f in fields) for r in requests)


__all__ = ["AuditLog", "AuditedRequest", "count_by"]
