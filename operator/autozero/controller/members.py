"""Membership of a sharded operator: each replica's own coordination.k8s.io/v1 Lease.

A replica renews its Lease (holder, duration, renew time, and the slots it claims in an
annotation) and lists its group's Leases by label; `autozero.sharding.fence` decides from those
lists what it may serve. Every call has a timeout, and any failure (the apiserver's answer or no
answer) is a `MembershipError`: the caller counts it as a renewal missed, never as a crash.
"""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime
from typing import Any

from autozero.controller.election import lease_api
from autozero.sharding.fence import Listed
from autozero.sharding.ring import SLOTS

GROUP_LABEL = "autozero.dev/shard-group"
CLAIMS_ANNOTATION = "autozero.dev/claimed-slots"
CALL_TIMEOUT = 3.0  # seconds; a round (list, renew) must fit well inside the renew deadline


class MembershipError(Exception):
    """A Lease call failed: `what` says which, `detail` why (status 0: no answer)."""

    def __init__(self, what: str, detail: str, *, status: int = 0) -> None:
        self.what, self.detail, self.status = what, detail, status
        super().__init__(f"{what}: {detail}")


def encode_claims(claims: frozenset[int], slots: int = SLOTS) -> str:
    """The claimed slots as a bitmap in base64: 172 characters for 1,024 slots."""
    bits = bytearray((slots + 7) // 8)
    for slot in claims:
        bits[slot // 8] |= 1 << (slot % 8)
    return base64.b64encode(bytes(bits)).decode()


def decode_claims(text: str | None, slots: int = SLOTS) -> frozenset[int]:
    if not text:
        return frozenset()
    bits = base64.b64decode(text)
    return frozenset(s for s in range(min(slots, len(bits) * 8)) if bits[s // 8] >> (s % 8) & 1)


def lease_name(group: str, identity: str) -> str:
    """A DNS-1123 name for a member's Lease (identities are pod names, or host-pid)."""
    clean = re.sub(r"[^a-z0-9-]+", "-", f"{group}-{identity}".lower()).strip("-")
    return clean[:253].rstrip("-")


def _micro_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaseMembers:
    """The Leases of one shard group in one namespace, as seen and written by `identity`."""

    def __init__(
        self,
        api: Any,
        namespace: str,
        group: str,
        identity: str,
        *,
        lease_seconds: int,
        timeout: float = CALL_TIMEOUT,
    ) -> None:
        # Calls tried once: retries would stretch the timeout that must bound a round fourfold.
        self.leases = lease_api(api)
        self.namespace, self.group, self.identity = namespace, group, identity
        self.name = lease_name(group, identity)
        self.lease_seconds, self.timeout = lease_seconds, timeout

    def list(self) -> list[Listed]:
        """The group's Leases, ours included (a consistent read: it sees every write before it)."""
        found = self._call(
            "list Leases",
            self.leases.list_namespaced_lease,
            self.namespace,
            label_selector=f"{GROUP_LABEL}={self.group}",
        )
        members: list[Listed] = []
        for lease in found.items:
            holder = lease.spec.holder_identity if lease.spec else None
            annotations = lease.metadata.annotations or {}
            members.append(
                Listed(
                    identity=holder or lease.metadata.name,
                    claims=decode_claims(annotations.get(CLAIMS_ANNOTATION)),
                    version=str(lease.metadata.resource_version),
                    released=not holder,
                    name=lease.metadata.name,
                )
            )
        return members

    def renew(self, claims: frozenset[int], now: datetime) -> None:
        """Renew our Lease with these claims, creating it when it is missing."""
        spec: dict[str, Any] = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": self.lease_seconds,
            "renewTime": _micro_time(now),
        }
        body = {
            "metadata": {
                "name": self.name,
                "labels": {GROUP_LABEL: self.group},
                "annotations": {CLAIMS_ANNOTATION: encode_claims(claims)},
            },
            "spec": spec,
        }
        try:
            self._call(
                f"renew Lease {self.namespace}/{self.name}",
                self.leases.patch_namespaced_lease,
                self.name,
                self.namespace,
                body,
            )
        except MembershipError as exc:
            if exc.status != 404:
                raise
            spec["acquireTime"] = spec["renewTime"]
            self._call(
                f"create Lease {self.namespace}/{self.name}",
                self.leases.create_namespaced_lease,
                self.namespace,
                body,
            )

    def release(self) -> None:
        """Delete our Lease on a clean shutdown: the others need not wait for it to expire."""
        try:
            self._call(
                f"delete Lease {self.namespace}/{self.name}",
                self.leases.delete_namespaced_lease,
                self.name,
                self.namespace,
            )
        except MembershipError as exc:
            if exc.status != 404:
                raise

    def remove(self, name: str, version: str) -> None:
        """Delete another member's silent Lease, only if it is still the version we saw."""
        from kubernetes import client

        try:
            self._call(
                f"delete silent Lease {self.namespace}/{name}",
                self.leases.delete_namespaced_lease,
                name,
                self.namespace,
                body=client.V1DeleteOptions(
                    preconditions=client.V1Preconditions(resource_version=version)
                ),
            )
        except MembershipError as exc:
            if exc.status not in (404, 409):  # gone already, or renewed meanwhile
                raise

    def _call(self, what: str, call: Any, *args: Any, **kwargs: Any) -> Any:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            return call(*args, _request_timeout=self.timeout, **kwargs)
        except ApiException as exc:
            raise MembershipError(what, str(exc.reason), status=exc.status or 0) from exc
        except (HTTPError, OSError) as exc:
            raise MembershipError(what, f"apiserver unreachable: {exc}") from exc
