"""Compute API errors in the real wire shape: {"error": {"code", "message", "errors": [...]}}."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, domain: str = "global") -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.domain = domain

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "code": self.code,
                "message": self.message,
                "errors": [{"domain": self.domain, "reason": self.reason, "message": self.message}],
            }
        }

    def operation_errors(self) -> dict[str, Any]:
        """The `error` member of a failed Operation."""
        return {"errors": [{"code": self.reason.upper(), "message": self.message}]}


def not_found(resource: str) -> ApiError:
    return ApiError(404, "notFound", f"The resource '{resource}' was not found")


def already_exists(resource: str) -> ApiError:
    return ApiError(409, "alreadyExists", f"The resource '{resource}' already exists")


def invalid(message: str) -> ApiError:
    return ApiError(400, "invalid", message)


def condition_not_met(message: str) -> ApiError:
    return ApiError(412, "conditionNotMet", message)


def rate_limited(project: str) -> ApiError:
    return ApiError(
        403,
        "rateLimitExceeded",
        f"Quota exceeded for quota metric 'Queries' and limit 'Queries per minute' of service "
        f"'compute.googleapis.com' for consumer 'project_number:{project}'.",
        domain="usageLimits",
    )


FAULTS: dict[int, Callable[[str], ApiError]] = {
    403: lambda project: rate_limited(project),
    429: lambda _: ApiError(429, "rateLimitExceeded", "Too many requests", "usageLimits"),
    500: lambda _: ApiError(500, "backendError", "Internal error. Please try again."),
    503: lambda _: ApiError(503, "backendError", "The service is currently unavailable."),
}
