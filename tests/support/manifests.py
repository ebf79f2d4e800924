"""A valid ScalingPolicy that touches most fields, and helpers to break it one field at a time."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

import yaml

BASE_YAML = """
apiVersion: autozero.dev/v1alpha1
kind: ScalingPolicy
metadata: {name: base}
spec:
  pollingInterval: 15s
  metrics:
    - name: backlog
      mrq:
        queue: bids
        redis: {urlFrom: {secretKeyRef: {name: mrq, key: redis-url}}}
    - name: jobs
      redis: {url: "redis://redis:6379/0", key: jobs}
    - name: invoices
      rabbitmq: {managementUrl: "http://rabbitmq:15672", queue: invoices}
    - name: cpu
      prometheus: {serverAddress: "http://prometheus:9090", query: "avg(cpu)"}
  groups:
    - name: bids
      target: {gce: {project: p, zone: europe-west1-c, instanceGroupManager: bids-mig}}
      capacity: {minimum: 0, maximum: 10, default: 1}
      activation: {metric: backlog, idleFor: 30m}
      handoff:
        gceAutoscaler: {minReplicas: 1, maxReplicas: 10, coolDownPeriod: 180s,
                        cpuUtilizationTarget: 0.8}
      fallback: {failureThreshold: 3, replicas: 2}
    - name: web
      target: {kubernetes: {apiVersion: apps/v1, kind: Deployment, name: web}}
      capacity: {minimum: 1, maximum: 5}
      profiles:
        - name: default
          rules:
            - metric: jobs
              operator: GreaterThan
              threshold: 10
              action: {direction: Increase, value: 1, cooldown: 5m}
        - name: office
          recurrence: {timeZone: Europe/Paris, days: [Mon, Fri], hours: [8], duration: 10h}
          capacity: {minimum: 2, maximum: 5, default: 2}
"""

BASE: dict[str, Any] = yaml.safe_load(BASE_YAML)
DELETE = object()
_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _steps(path: str) -> list[str | int]:
    return [name if name else int(index) for name, index in _STEP.findall(path)]


def mutate(changes: dict[str, Any], base: dict[str, Any] | None = None) -> dict[str, Any]:
    """A deep copy of `base` with each `path: value` set (DELETE removes the field)."""
    manifest = copy.deepcopy(base or BASE)
    for path, value in changes.items():
        *parents, last = _steps(path)
        node: Any = manifest
        for step in parents:
            node = node[step]
        if value is DELETE:
            del node[last]
        else:
            node[last] = value
    return manifest


def with_(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    manifest = copy.deepcopy(BASE)
    change(manifest)
    return manifest


def one_group(
    target: dict[str, Any],
    *,
    name: str = "nightly",
    namespace: str = "team-a",
    group: str = "bids",
    **spec: Any,
) -> dict[str, Any]:
    """A ScalingPolicy of one group driving `target` (`{"gce": {...}}`, `{"kubernetes": {...}}`),
    capacity 1-3, and any other `spec` fields given."""
    return {
        "apiVersion": "autozero.dev/v1alpha1",
        "kind": "ScalingPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            **spec,
            "groups": [{"name": group, "target": target, "capacity": {"minimum": 1, "maximum": 3}}],
        },
    }


#: A zonal GCE target in project `acme`, as a policy's group names it.
GCE_BIDS: dict[str, Any] = {
    "gce": {"project": "acme", "zone": "europe-west1-c", "instanceGroupManager": "bids"}
}
