"""Why an informer cannot list or watch its resource, as typed errors that carry the context.

An informer never gives up: after any of these it backs off and tries again. The type says what a
person must do about it (nothing, fix RBAC, install a CRD), so the runtime can turn it into a
condition on the policies that need the informer, or fall back to one `/scale` GET per group.
"""

from __future__ import annotations

import json

from urllib3.exceptions import HTTPError


class InformerError(Exception):
    """An informer's list, watch or discovery failed. `what` names the resource and scope."""

    #: Expected to clear on its own (an apiserver restart, a timeout); the others need a person.
    transient = False

    def __init__(self, what: str, detail: str, *, status: int = 0) -> None:
        self.what, self.detail, self.status = what, detail, status
        super().__init__(f"{what}: {detail}")


class InformerUnavailable(InformerError):
    """The apiserver could not be reached or answered 429/5xx: retried with backoff."""

    transient = True


class InformerForbidden(InformerError):
    """401/403: the operator may not list or watch the resource (RBAC, an expired token)."""


class InformerNotFound(InformerError):
    """The API serves no such group/version/kind (a CRD not installed, a typo)."""


class NotScalable(InformerError):
    """The kind has no `/scale` subresource, or cannot be listed and watched."""


class ReplicaPathsUnknown(InformerError):
    """The kind has `/scale` but is neither built in nor a CRD (an aggregated API), so where its
    replica counts live is unknown: read `/scale` with GETs instead."""


def from_exception(what: str, exc: Exception) -> InformerError:
    """The typed error for a failed request (`ApiException`, urllib3 or socket errors)."""
    if isinstance(exc, InformerError):
        return exc
    if isinstance(exc, HTTPError | OSError):  # refused, reset, timed out, TLS
        return InformerUnavailable(what, f"{type(exc).__name__}: {exc}")
    status = int(getattr(exc, "status", 0) or 0)
    reason = _message(exc)
    if status in (401, 403):
        return InformerForbidden(what, f"forbidden: HTTP {status} {reason}", status=status)
    if status == 404:
        return InformerNotFound(what, f"not found: HTTP {status} {reason}", status=status)
    if status in (0, 429) or status >= 500:
        return InformerUnavailable(what, f"HTTP {status} {reason}", status=status)
    return InformerError(what, f"HTTP {status} {reason}", status=status)


def request_failure(exc: Exception) -> str:
    """One line for a failed apiserver request: its HTTP status and the apiserver's sentence, or
    the connection error."""
    if isinstance(exc, HTTPError | OSError):
        return f"{type(exc).__name__}: {exc}"
    return f"HTTP {int(getattr(exc, 'status', 0) or 0)} {_message(exc)}"


def _message(exc: Exception) -> str:
    """The apiserver's own sentence (a Status body's `message`) when there is one: it says which
    user may not do what, where."""
    body = getattr(exc, "body", None)
    if body:
        try:
            message = json.loads(body).get("message")
        except (ValueError, AttributeError):
            message = None
        if isinstance(message, str) and message:
            return message
    return str(getattr(exc, "reason", "") or exc)
