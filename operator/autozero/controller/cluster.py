"""The operator's calls to the apiserver: the policy's status, its Events, its namespace's Secrets.

Blocking kubernetes-client calls, made from worker threads; every call has a timeout. Status is
written as a merge patch of the status subresource only, and only when it changed, so the
operator never writes a policy's spec, labels or annotations (GitOps tools see no drift).
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from autozero.policy.model import API_GROUP, API_VERSION, KIND
from autozero.secrets import (
    SecretForbidden,
    SecretKeyMissing,
    SecretLookupFailed,
    SecretNotFound,
    SecretUnavailable,
)

log = logging.getLogger(__name__)
PLURAL = "scalingpolicies"
TIMEOUT = 10


@dataclass
class PolicyRef:
    namespace: str
    name: str
    uid: str

    def involved(self) -> dict[str, str]:
        return {
            "apiVersion": f"{API_GROUP}/{API_VERSION}",
            "kind": KIND,
            "namespace": self.namespace,
            "name": self.name,
            "uid": self.uid,
        }


@dataclass
class Cluster:
    api: Any  # kubernetes.client.ApiClient

    def patch_status(self, ref: PolicyRef, status: Mapping[str, Any]) -> bool:
        """Patch the status; False when the policy is gone (deleted while its pass ran: its
        deletion reaches the operator next, there is nothing to report on)."""
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        try:
            client.CustomObjectsApi(self.api).patch_namespaced_custom_object_status(
                API_GROUP,
                API_VERSION,
                ref.namespace,
                PLURAL,
                ref.name,
                {"status": dict(status)},
                _request_timeout=TIMEOUT,
            )
        except ApiException as exc:
            if exc.status == 404:
                log.info("%s/%s: deleted before its status was written", ref.namespace, ref.name)
                return False
            raise
        return True

    def secret(self, namespace: str, name: str, key: str) -> str:
        """One key of one Secret of the policy's own namespace (never another's).

        SecretUnavailable keeps what the apiserver said: 404 is SecretNotFound, 401/403
        SecretForbidden (naming the RBAC rule missing), anything else, or no answer at all,
        SecretLookupFailed, which the worker tries again."""
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError  # connection refused, reset, timed out

        where = f"secret {namespace}/{name}"
        try:
            secret = client.CoreV1Api(self.api).read_namespaced_secret(
                name, namespace, _request_timeout=TIMEOUT
            )
        except ApiException as exc:
            status = int(exc.status or 0)
            if status == 404:
                raise SecretNotFound(namespace, name, key, f"{where} not found") from exc
            if status in (401, 403):
                raise SecretForbidden(
                    namespace,
                    name,
                    key,
                    f"{where}: forbidden (HTTP {status}): the operator's ServiceAccount needs "
                    f"'get' on 'secrets' in namespace {namespace} (the chart's RBAC grants it)",
                ) from exc
            raise SecretLookupFailed(
                namespace,
                name,
                key,
                f"{where}: the apiserver answered HTTP {status} {exc.reason}; tried again",
            ) from exc
        except HTTPError as exc:
            raise SecretLookupFailed(
                namespace, name, key, f"{where}: the apiserver did not answer ({exc}); tried again"
            ) from exc
        data = secret.data or {}
        if key not in data:
            raise SecretKeyMissing(namespace, name, key, f"{where} has no key {key!r}")
        try:
            return base64.b64decode(data[key]).decode()
        except ValueError:  # not base64, or not UTF-8 (a binary key file)
            raise SecretUnavailable(
                namespace, name, key, f"{where} key {key!r} is not UTF-8 text"
            ) from None

    def event(self, ref: PolicyRef, *, reason: str, message: str, warning: bool = False) -> None:
        from kubernetes import client

        now = datetime.now(UTC)
        body = client.CoreV1Event(
            metadata=client.V1ObjectMeta(generate_name=f"{ref.name}.", namespace=ref.namespace),
            involved_object=client.V1ObjectReference(
                api_version=f"{API_GROUP}/{API_VERSION}",
                kind=KIND,
                namespace=ref.namespace,
                name=ref.name,
                uid=ref.uid,
            ),
            reason=reason,
            message=message[:1024],
            type="Warning" if warning else "Normal",
            source=client.V1EventSource(component="autozero"),
            first_timestamp=now,
            last_timestamp=now,
            count=1,
            reporting_component="autozero",
            reporting_instance="autozero",
        )
        client.CoreV1Api(self.api).create_namespaced_event(
            ref.namespace, body, _request_timeout=TIMEOUT
        )


@dataclass
class EventDeduper:
    """Posts an Event only when what it says changes, so a source failing every 15 s makes one
    Event when it starts failing and one when it recovers, not an Event storm."""

    last: dict[str, tuple[str, str]] = field(default_factory=dict)

    def should_post(self, key: str, reason: str, message: str) -> bool:
        if self.last.get(key) == (reason, message):
            return False
        self.last[key] = (reason, message)
        return True

    def forget(self, key: str) -> bool:
        return self.last.pop(key, None) is not None
