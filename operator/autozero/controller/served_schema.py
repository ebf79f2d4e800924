"""What the served ScalingPolicy CRD lacks of this autozero's own, read at most once a minute.

Helm installs a chart's crds/ once and never upgrades them, and the apiserver silently prunes the
fields its stored CRD does not know. The chart now applies its CRD on upgrade, but a cluster may
still run a newer operator over an older CRD (crds.install=false, a CRD applied by hand): each
policy then says so in a condition rather than being served without the fields it asked for.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from autozero.policy.drift import missing_fields
from autozero.policy.model import API_GROUP
from autozero.policy.schema import crd
from autozero.runtime.kubeapi import get_json

log = logging.getLogger(__name__)
CRD_NAME = f"scalingpolicies.{API_GROUP}"


class ServedSchema:
    def __init__(
        self, api: Any, *, ttl: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.api, self.ttl, self.clock = api, ttl, clock
        self._missing: list[str] = []
        self._read_at: float | None = None
        self._said_unreadable = False

    def missing(self) -> list[str]:
        """The paths this autozero knows that the served CRD lacks ([] when it cannot be read:
        not knowing is no reason to hold a policy)."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        now = self.clock()
        if self._read_at is not None and now - self._read_at < self.ttl:
            return self._missing
        self._read_at = now
        try:
            # A list by name: the chart grants list (kopf's need), not get, on CRDs.
            found = (
                get_json(
                    self.api,
                    "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                    [("fieldSelector", f"metadata.name={CRD_NAME}")],
                ).get("items")
                or []
            )
        except (ApiException, HTTPError, ValueError) as exc:  # RBAC, the apiserver away: say it
            # once and keep the last answer
            if not self._said_unreadable:
                log.warning("cannot read the served CRD %s to compare it: %s", CRD_NAME, exc)
                self._said_unreadable = True
            return self._missing
        self._said_unreadable = False
        self._missing = missing_fields(crd(), found[0]) if found else []
        return self._missing
