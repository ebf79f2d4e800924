"""What `make demo DEMO_ARGS=--node` prints when its Helm install times out: the node's
conditions, every Pod's state and the latest Events, read from a real apiserver (a Helm timeout
says none of it; a CI run's said only "context deadline exceeded")."""

from __future__ import annotations

import uuid

from testground.demo_node import NodeDemo
from testground.kube import KubeCluster


def test_a_helm_timeout_is_told_with_the_node_and_the_pods(kube: KubeCluster) -> None:
    namespace = f"diag-{uuid.uuid4().hex[:8]}"
    kube.kubectl_run("create", "namespace", namespace)
    kube.kubectl_run(
        "run", "operator-like", "-n", namespace, "--image=autozero:never-pulled", "--restart=Never"
    )
    demo = NodeDemo.__new__(NodeDemo)  # the diagnosis needs the cluster only, not a node
    demo.kube = kube
    try:
        told = demo._why_not_running()
    finally:
        kube.kubectl_run("delete", "namespace", namespace, "--wait=false")
    lines = told.splitlines()
    assert lines[0].startswith("the node: ")  # no node registered here: nothing after it
    assert any(
        namespace in line and "operator-like" in line and "Pending" in line for line in lines
    ), told
    assert "NAMESPACE" in told  # kubectl's header: the Pods' table, as a user would read it
