"""The operator's start waits until the apiserver's discovery serves its resource (kopf resolves
what it serves once, at start): a CRD applied a moment later is waited for, a missing one only
for the bound."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

from autozero.controller.discovery import wait_until_served
from testground.kube import KubeCluster


def crd(group: str) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"gadgets.{group}"},
        "spec": {
            "group": group,
            "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": {"type": "object"}},
                }
            ],
        },
    }


def test_a_crd_applied_while_it_waits_is_waited_for(kube: KubeCluster, kube_api: Any) -> None:
    import yaml

    group = f"g{uuid.uuid4().hex[:8]}.example.dev"
    answer: list[bool] = []
    waiting = threading.Thread(
        target=lambda: answer.append(wait_until_served(kube_api, group, "v1", "gadgets"))
    )
    waiting.start()
    time.sleep(1.5)  # discovery does not list the group yet: it waits
    assert waiting.is_alive()
    try:
        kube.kubectl_run("apply", "-f", "-", input_text=yaml.safe_dump(crd(group)))
        waiting.join(timeout=30)
        assert answer == [True]
    finally:
        kube.kubectl_run("delete", "crd", f"gadgets.{group}", "--wait=false")


def test_a_crd_never_served_is_waited_for_no_longer_than_the_bound(kube_api: Any) -> None:
    assert not wait_until_served(kube_api, "absent.example.dev", "v1", "gadgets", bound=1.0)
