"""The operator reads a policy's Secret from the apiserver and says which failure it met: not
found, key missing, forbidden (naming the RBAC rule), or the apiserver's own trouble (retried)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from autozero.controller.cluster import Cluster
from autozero.secrets import (
    SecretForbidden,
    SecretKeyMissing,
    SecretLookupFailed,
    SecretNotFound,
    SecretUnavailable,
)
from autozero.sources.base import Context, SourceConfigError, SourceUnreachable
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from support.broken_server import resetting_server, status_server
from testground.kube import KubeCluster, create_secret


@pytest.fixture
def namespace(kube_api: Any) -> str:
    name = f"s-{uuid.uuid4().hex[:8]}"
    k8s.CoreV1Api(kube_api).create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name)))
    create_secret(kube_api, name, "queue", {"url": "redis://queue:6379/0"})
    return name


def url_from(cluster: Cluster, namespace: str, secret: str, key: str) -> str:
    """What a source does with `urlFrom`: the message a user sees comes from here."""
    context = Context(lambda n, k: cluster.secret(namespace, n, k), namespace=namespace)
    ref = {"secretKeyRef": {"name": secret, "key": key}}
    return context.value({"urlFrom": ref}, "url", "backlog")


def test_the_key_is_read(kube_api: Any, namespace: str) -> None:
    assert url_from(Cluster(kube_api), namespace, "queue", "url") == "redis://queue:6379/0"


@pytest.mark.parametrize(
    ("secret", "key", "error", "message"),
    [
        pytest.param("ghost", "url", SecretNotFound, "secret {ns}/ghost not found", id="no-secret"),
        pytest.param(
            "queue", "password", SecretKeyMissing, "secret {ns}/queue has no key 'password'",
            id="no-key",
        ),
    ],
)  # fmt: skip
def test_not_found_and_key_missing_are_told_apart(
    kube_api: Any,
    namespace: str,
    secret: str,
    key: str,
    error: type[SecretUnavailable],
    message: str,
) -> None:
    cluster = Cluster(kube_api)
    with pytest.raises(error) as raised:
        cluster.secret(namespace, secret, key)
    assert str(raised.value) == message.format(ns=namespace)
    assert not raised.value.retryable
    with pytest.raises(SourceConfigError) as config_error:
        url_from(cluster, namespace, secret, key)
    assert str(config_error.value) == f"backlog (url): {message.format(ns=namespace)}"


def test_forbidden_names_the_rbac_rule_missing(kube: KubeCluster, namespace: str) -> None:
    """A ServiceAccount without `get secrets` there: not 'does not exist', but what to grant."""
    nobody = k8s_config.new_client_from_config(config_file=str(kube.kubeconfig_for("nobody")))
    with pytest.raises(SecretForbidden) as raised:
        Cluster(nobody).secret(namespace, "queue", "url")
    assert str(raised.value) == (
        f"secret {namespace}/queue: forbidden (HTTP 403): the operator's ServiceAccount needs "
        f"'get' on 'secrets' in namespace {namespace} (the chart's RBAC grants it)"
    )
    assert not raised.value.retryable


@pytest.mark.parametrize(
    ("server", "says"),
    [
        pytest.param(
            lambda: status_server(500, "Internal Server Error"),
            "the apiserver answered HTTP 500 Internal Server Error; tried again",
            id="http-500",
        ),
        pytest.param(
            lambda: status_server(503, "Service Unavailable"),
            "the apiserver answered HTTP 503 Service Unavailable; tried again",
            id="http-503",
        ),
        pytest.param(resetting_server, "the apiserver did not answer", id="connection-reset"),
    ],
)
def test_the_apiservers_own_trouble_is_retryable(server: Any, says: str) -> None:
    with server() as broken:
        config = k8s.Configuration()
        config.host = broken.url
        config.retries = 1
        cluster = Cluster(k8s.ApiClient(config))
        with pytest.raises(SecretLookupFailed) as raised:
            cluster.secret("batch", "queue", "url")
        assert raised.value.retryable
        assert str(raised.value).startswith("secret batch/queue: ")
        assert says in str(raised.value)
        with pytest.raises(SourceUnreachable):  # a source build that may work next time
            url_from(cluster, "batch", "queue", "url")


def test_a_status_for_a_policy_deleted_meanwhile_is_dropped_not_an_error(
    kube: KubeCluster, kube_api: Any, namespace: str
) -> None:
    """A policy deleted while its pass ran (the chaos campaign's policy-delete fault): its status
    patch meets 404, which says it is gone, not that the pass failed; other errors still raise."""
    from pathlib import Path

    from autozero.controller.cluster import PolicyRef
    from kubernetes.client.exceptions import ApiException

    crd = Path(__file__).resolve().parents[2] / "crds" / "scalingpolicies.autozero.dev.yaml"
    kube.kubectl_run("apply", "-f", str(crd))
    kube.wait_established("scalingpolicies.autozero.dev")
    cluster = Cluster(kube_api)
    assert (
        cluster.patch_status(PolicyRef(namespace, "gone", "uid-1"), {"observedGeneration": 1})
        is False
    )
    nobody = k8s_config.new_client_from_config(str(kube.kubeconfig_for("nobody")))
    try:
        with pytest.raises(ApiException) as raised:  # any other answer is still an error
            Cluster(nobody).patch_status(PolicyRef(namespace, "gone", "uid-1"), {"a": 1})
    finally:
        nobody.close()
    assert raised.value.status == 403
