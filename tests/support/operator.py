"""Shared by the end-to-end tests: the operator as a process, and what it reports."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from typing import Any

from kubernetes import client as k8s


def start_operator(log: Any, args: list[str]) -> subprocess.Popen[bytes]:
    """`autozero operator ARGS` as its own process, its output in `log`."""
    return subprocess.Popen(
        [sys.executable, "-m", "autozero.cli", "operator", *args],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def scale_of(kube_api: Any, namespace: str, name: str = "worker") -> int:
    """A Deployment's replicas, as its /scale says."""
    scale = k8s.AppsV1Api(kube_api).read_namespaced_deployment_scale(name, namespace)
    return int(scale.spec.replicas or 0)


def http_get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return str(response.read().decode())
    except OSError:
        return None


def status_of(kube_api: Any, namespace: str, name: str = "queue-workers") -> dict[str, Any]:
    body = k8s.CustomObjectsApi(kube_api).get_namespaced_custom_object(
        "autozero.dev", "v1alpha1", namespace, "scalingpolicies", name
    )
    return dict(body.get("status") or {})


def events_of(kube_api: Any, namespace: str) -> list[tuple[str, str]]:
    events = k8s.CoreV1Api(kube_api).list_namespaced_event(namespace).items
    return [(e.reason, e.message) for e in events if e.involved_object.kind == "ScalingPolicy"]


def condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in status.get("conditions", []) if c["type"] == kind)
