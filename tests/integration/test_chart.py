"""The Helm chart: lint, install and upgrade against the real apiserver, and what its
ServiceAccount may and may not do."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from testground.kube import KubeCluster

CHART = Path(__file__).resolve().parents[2] / "charts" / "autozero"
NS = "autozero-chart"


def helm(kube: KubeCluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(kube.helm), f"--kubeconfig={kube.kubeconfig}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_helm_lint(kube: KubeCluster) -> None:
    result = helm(kube, "lint", str(CHART))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


def test_install_then_upgrade_to_two_replicas_with_leader_election(kube: KubeCluster) -> None:
    install = helm(
        kube, "upgrade", "--install", "az", str(CHART), "--namespace", NS, "--create-namespace"
    )
    assert install.returncode == 0, install.stderr
    deployment = yaml.safe_load(
        kube.kubectl_run("get", "deployment", "az-autozero", "-n", NS, "-o", "yaml").stdout
    )
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert "--leader-elect" not in container["args"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}

    upgrade = helm(
        kube,
        "upgrade",
        "az",
        str(CHART),
        "--namespace",
        NS,
        "--set",
        "replicas=2",
        "--set",
        "watchNamespaces={team-*}",
    )
    assert upgrade.returncode == 0, upgrade.stderr
    deployment = yaml.safe_load(
        kube.kubectl_run("get", "deployment", "az-autozero", "-n", NS, "-o", "yaml").stdout
    )
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert deployment["spec"]["replicas"] == 2
    assert "--leader-elect" in args
    assert "--namespace=team-*" in args


@pytest.mark.parametrize(
    ("verb", "resource", "allowed"),
    [
        pytest.param("watch", "scalingpolicies.autozero.dev", True, id="watch-policies"),
        pytest.param("patch", "scalingpolicies.autozero.dev:status", True, id="patch-status"),
        pytest.param("patch", "scalingpolicies.autozero.dev", False, id="not-the-spec"),
        pytest.param("patch", "deployments.apps:scale", True, id="patch-scale"),
        pytest.param("patch", "deployments.apps", False, id="not-the-deployment"),
        pytest.param("delete", "deployments.apps", False, id="never-delete-workloads"),
        pytest.param("create", "horizontalpodautoscalers.autoscaling", True, id="create-hpa"),
        pytest.param("update", "horizontalpodautoscalers.autoscaling", False, id="not-edit-hpa"),
        pytest.param("create", "events", True, id="create-events"),
        pytest.param("list", "secrets", False, id="never-list-secrets"),
        pytest.param("create", "pods", False, id="no-pods"),
    ],
)
def test_the_service_account_can_do_what_it_needs_and_no_more(
    kube: KubeCluster, verb: str, resource: str, allowed: bool
) -> None:
    helm(kube, "upgrade", "--install", "az", str(CHART), "--namespace", NS, "--create-namespace")
    kind, _, subresource = resource.partition(":")
    extra = [f"--subresource={subresource}"] if subresource else []
    answer = kube.kubectl_run(
        "auth",
        "can-i",
        verb,
        kind,
        *extra,
        "-n",
        "default",
        f"--as=system:serviceaccount:{NS}:autozero",
        check=False,
    )
    assert answer.stdout.strip() == ("yes" if allowed else "no"), answer.stderr
