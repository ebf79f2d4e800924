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


class PolicyListFailed(Exception):
    """The policies of a namespace could not be listed (a sharded replica taking slots over)."""

    def __init__(self, namespace: str, detail: str) -> None:
        super().__init__(f"listing the ScalingPolicies of namespace {namespace}: {detail}")
        self.namespace = namespace


@dataclass
class Cluster:
    api: Any  # kubernetes.client.ApiClient

    def policies(self, namespace: str, page: int = 500) -> list[dict[str, Any]]:
        """Every ScalingPolicy of `namespace`, as plain dicts, a page at a time. A sharded
        replica keeps only the keys of policies it does not serve, and reads the manifests of
        those it takes over here."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        from autozero.runtime.kubeapi import collection_path, get_json

        path = collection_path(API_GROUP, API_VERSION, PLURAL, namespace)
        out: list[dict[str, Any]] = []
        token = ""
        while True:
            query: list[tuple[str, str | int | bool]] = [("limit", page)]
            if token:
                query.append(("continue", token))
            try:
                answer = get_json(self.api, path, query, timeout=TIMEOUT * 3)
            except (ApiException, HTTPError, OSError, ValueError) as exc:
                raise PolicyListFailed(namespace, str(exc).strip()) from exc
            for item in answer.get("items") or ():
                item.setdefault("apiVersion", f"{API_GROUP}/{API_VERSION}")
                item.setdefault("kind", KIND)
                out.append(item)
            token = str((answer.get("metadata") or {}).get("continue") or "")
            if not token:
                return out

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
