"""The operator's Events, as the apiserver keeps them: a sleep autozero withdrew because work came
is a Normal `SleepWithdrawn`, a target that failed a Warning `TargetError`."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from autozero.controller.cluster import Cluster
from autozero.controller.shell import OperatorShell
from autozero.engine.decision import Action, Decision, Reason
from autozero.runtime.report import CycleReport, GroupReport
from autozero.targets.base import SleepWithdrawn, TargetError
from kubernetes import client as k8s
from support.engine import T0
from support.manifests import one_group
from testground.kube import KubeCluster

DEPLOYMENT = {"kubernetes": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "workers"}}
CRD = Path(__file__).resolve().parents[2] / "crds" / "scalingpolicies.autozero.dev.yaml"


@pytest.mark.parametrize(
    ("error", "reason", "kind"),
    [
        pytest.param(
            SleepWithdrawn("workers", "the sleep stopped before its last step: work came"),
            "SleepWithdrawn",
            "Normal",
            id="withdrawn",
        ),
        pytest.param(
            TargetError("workers", "HTTP 503 backendError"), "TargetError", "Warning", id="failed"
        ),
    ],
)
def test_a_withdrawn_sleep_is_a_normal_event_and_a_failure_a_warning(
    kube: KubeCluster, kube_api: Any, error: TargetError, reason: str, kind: str
) -> None:
    kube.kubectl_run("apply", "-f", str(CRD))
    kube.wait_established("scalingpolicies.autozero.dev")
    namespace = f"e-{uuid.uuid4().hex[:8]}"
    k8s.CoreV1Api(kube_api).create_namespace(
        k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=namespace))
    )
    manifest = one_group(DEPLOYMENT, namespace=namespace, group="workers")
    body = k8s.CustomObjectsApi(kube_api).create_namespaced_custom_object(
        "autozero.dev", "v1alpha1", namespace, "scalingpolicies", manifest
    )
    sleep = Decision("workers", T0, "default", 1, 0, Action.SLEEP, Reason.IDLE, "idle 3s")
    report = CycleReport(
        "nightly",
        T0,
        (GroupReport("workers", sleep, error=error, acted=True),),
        {},
        evaluated=frozenset({"workers"}),
    )
    OperatorShell(Cluster(kube_api)).report((namespace, "nightly"), body, report)
    events = k8s.CoreV1Api(kube_api).list_namespaced_event(namespace).items
    assert [(e.reason, e.type, e.message) for e in events] == [(reason, kind, str(error))]
