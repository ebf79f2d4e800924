"""Smoke tests: the control plane is a real Kubernetes with RBAC on, reached by its real clients."""

from __future__ import annotations

import json
import subprocess
import uuid

import pytest
from kubernetes import client as k8s_client
from kubernetes.client.rest import ApiException
from kubernetes.config import new_client_from_config
from testground.audit import AuditLog, count_by
from testground.kube import KubeCluster, create_worker_deployment, start_cluster
from testground.process import processes_in_group, wait_for
from testground.tools import VERSIONS, go_tools


@pytest.fixture
def namespace(kube_api: k8s_client.ApiClient) -> str:
    name = f"smoke-{uuid.uuid4().hex[:8]}"
    k8s_client.CoreV1Api(kube_api).create_namespace(
        k8s_client.V1Namespace(metadata=k8s_client.V1ObjectMeta(name=name))
    )
    return name


def test_apiserver_reports_the_pinned_release(kube_api: k8s_client.ApiClient) -> None:
    info = k8s_client.VersionApi(kube_api).get_code()
    assert info.git_version == VERSIONS["KUBERNETES_VERSION"]


def test_configmap_through_the_python_client_and_kubectl(
    kube: KubeCluster, kube_api: k8s_client.ApiClient, namespace: str
) -> None:
    core = k8s_client.CoreV1Api(kube_api)
    core.create_namespaced_config_map(
        namespace,
        k8s_client.V1ConfigMap(
            metadata=k8s_client.V1ObjectMeta(name="written-by-python"), data={"queue": "bids"}
        ),
    )
    out = kube.kubectl_run("get", "configmap", "written-by-python", "-n", namespace, "-o", "json")
    assert json.loads(out.stdout)["data"] == {"queue": "bids"}

    kube.kubectl_run(
        "create", "configmap", "written-by-kubectl", "-n", namespace, "--from-literal=size=3"
    )
    assert core.read_namespaced_config_map("written-by-kubectl", namespace).data == {"size": "3"}


def test_kubectl_is_the_pinned_release(kube: KubeCluster) -> None:
    out = kube.kubectl_run("version", "-o", "json")
    versions = json.loads(out.stdout)
    assert versions["clientVersion"]["gitVersion"] == VERSIONS["KUBERNETES_VERSION"]
    assert versions["serverVersion"]["gitVersion"] == VERSIONS["KUBERNETES_VERSION"]


def test_deployment_gets_a_replicaset_and_scales(
    kube_api: k8s_client.ApiClient, namespace: str
) -> None:
    apps = k8s_client.AppsV1Api(kube_api)
    create_worker_deployment(kube_api, namespace)
    replica_sets = wait_for(
        lambda: apps.list_namespaced_replica_set(namespace, label_selector="app=worker").items,
        timeout=60,
    )
    assert replica_sets[0].metadata.owner_references[0].name == "worker"

    # The /scale subresource: what autozero reads and writes.
    apps.patch_namespaced_deployment_scale("worker", namespace, {"spec": {"replicas": 3}})
    scale = apps.read_namespaced_deployment_scale("worker", namespace)
    assert scale.spec.replicas == 3
    wait_for(
        lambda: (
            apps.list_namespaced_replica_set(namespace, label_selector="app=worker")
            .items[0]
            .spec.replicas
            == 3
        ),
        timeout=60,
    )


def test_rbac_is_enforced(kube: KubeCluster, namespace: str) -> None:
    stranger = kube.kubeconfig_for("stranger")
    api = new_client_from_config(config_file=str(stranger))
    try:
        with pytest.raises(ApiException) as denied:
            k8s_client.CoreV1Api(api).list_namespaced_config_map(namespace)
        assert denied.value.status == 403
    finally:
        api.close()
    answer = kube.kubectl_run(
        "auth", "can-i", "list", "configmaps", "-n", namespace, kubeconfig=stranger, check=False
    )
    assert answer.stdout.strip() == "no"

    kube.kubectl_run(
        "create",
        "rolebinding",
        "stranger-view",
        "-n",
        namespace,
        "--clusterrole=view",
        "--user=stranger",
    )
    answer = kube.kubectl_run(
        "auth", "can-i", "list", "configmaps", "-n", namespace, kubeconfig=stranger, check=False
    )
    assert answer.stdout.strip() == "yes"


def test_helm_is_the_pinned_release() -> None:
    out = subprocess.run(
        [str(go_tools().helm), "version", "--short"], capture_output=True, text=True, check=True
    )
    assert out.stdout.startswith(VERSIONS["HELM_VERSION"])


def test_stopping_the_cluster_leaves_no_process(tmp_path_factory: pytest.TempPathFactory) -> None:
    cluster = start_cluster(tmp_path_factory.mktemp("kube-stop"))
    groups = [cluster.etcd.process.pid, cluster.apiserver.pid, cluster.controller_manager.pid]
    assert all(processes_in_group(g) for g in groups)
    cluster.stop()
    assert [pid for g in groups for pid in processes_in_group(g)] == []


AUDIT_METADATA = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
"""


def test_the_audit_log_tells_two_clients_apart(tmp_path_factory: pytest.TempPathFactory) -> None:
    cluster = start_cluster(
        tmp_path_factory.mktemp("kube-audit"), controller_manager=False, audit_policy=AUDIT_METADATA
    )
    try:
        assert cluster.audit_log is not None
        log = AuditLog(cluster.audit_log)
        mark = log.mark()
        for agent, reads in (("reader-one", 3), ("reader-two", 1)):
            api = new_client_from_config(config_file=str(cluster.kubeconfig))
            api.user_agent = agent
            for _ in range(reads):
                k8s_client.CoreV1Api(api).list_namespaced_config_map("default")
            with pytest.raises(ApiException):
                k8s_client.CoreV1Api(api).read_namespaced_config_map("absent", "default")
            api.close()
        counts = wait_for(
            lambda: (
                c
                if (c := count_by(log.requests(mark), "user_agent", "verb", "resource", "code"))[
                    ("reader-two", "get", "configmaps", "404")
                ]
                else None
            )
        )
        assert counts[("reader-one", "list", "configmaps", "200")] == 3
        assert counts[("reader-two", "list", "configmaps", "200")] == 1
        assert counts[("reader-one", "get", "configmaps", "404")] == 1
        assert {r.user for r in log.requests(mark) if r.user_agent.startswith("reader-")} == {
            "autozero-admin"
        }
        later = log.requests(log.mark())  # a window opened now holds none of them
        assert [r for r in later if r.user_agent.startswith("reader-")] == []
    finally:
        cluster.stop()
