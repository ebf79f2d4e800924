"""The Helm chart: lint, install and upgrade against the real apiserver, and what its
ServiceAccount may and may not do.

The suite's shared cluster has the CRD from `kubectl apply` (other tests apply it), which Helm will
not take over: the chart is installed here with `crds.install=false`, as a user who manages the CRD
does. tests/e2e/test_node.py installs and upgrades the CRD with the chart, on a cluster of its own.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from testground.kube import KubeCluster

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "autozero"
NS = "autozero-chart"


@pytest.fixture(autouse=True)
def crd_applied_with_kubectl(kube: KubeCluster) -> None:
    kube.kubectl_run("apply", "-f", str(ROOT / "crds" / "scalingpolicies.autozero.dev.yaml"))
    kube.wait_established("scalingpolicies.autozero.dev")


def helm(kube: KubeCluster, *args: str) -> subprocess.CompletedProcess[str]:
    managed = ["--set=crds.install=false"] if args[0] in ("upgrade", "install") else []
    return subprocess.run(
        [str(kube.helm), f"--kubeconfig={kube.kubeconfig}", *args, *managed],
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
    """One replica elects itself too (a rolling update's new Pod waits for the Lease); two do."""
    install = helm(
        kube, "upgrade", "--install", "az", str(CHART), "--namespace", NS, "--create-namespace"
    )
    assert install.returncode == 0, install.stderr
    deployment = yaml.safe_load(
        kube.kubectl_run("get", "deployment", "az-autozero", "-n", NS, "-o", "yaml").stdout
    )
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert "--leader-elect" in container["args"]
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
        pytest.param("list", "horizontalpodautoscalers.autoscaling", True, id="list-hpas"),
        pytest.param("watch", "horizontalpodautoscalers.autoscaling", True, id="watch-hpas"),
        pytest.param("watch", "deployments.apps", True, id="watch-deployments"),
        pytest.param("get", "deployments.apps", False, id="not-get-deployments"),
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


def template(kube: KubeCluster, *sets: str) -> subprocess.CompletedProcess[str]:
    flags = [f"--set={s}" for s in sets]
    return helm(kube, "template", "az", str(CHART), "--namespace", NS, *flags)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param("replicas=two", "at '/replicas': got string, want integer", id="type"),
        pytest.param("replicas=0", "at '/replicas'", id="minimum"),
        pytest.param("watchNamespace={a}", "additional properties 'watchNamespace'", id="typo"),
        pytest.param(
            "rbac.scaleTargets[0].resources={deployments}",
            "/rbac/scaleTargets/0/resources/0",
            id="not-a-scale-subresource",
        ),
        pytest.param("metrics.port=70000", "at '/metrics/port'", id="port"),
        pytest.param("image.pullPolicy=Sometimes", "at '/image/pullPolicy'", id="enum"),
    ],
)
def test_values_schema_rejects_bad_values_with_their_path(
    kube: KubeCluster, value: str, message: str
) -> None:
    result = template(kube, value)
    assert result.returncode != 0
    assert message in result.stderr


def test_service_monitor_and_pdb_when_enabled(kube: KubeCluster) -> None:
    result = template(
        kube,
        "metrics.serviceMonitor.enabled=true",
        "metrics.serviceMonitor.labels.release=kps",
        "podDisruptionBudget.enabled=true",
        "replicas=2",
    )
    assert result.returncode == 0, result.stderr
    documents = {d["kind"]: d for d in yaml.safe_load_all(result.stdout) if d}
    monitor = documents["ServiceMonitor"]
    assert monitor["metadata"]["labels"]["release"] == "kps"
    service = documents["Service"]
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]
    pdb = documents["PodDisruptionBudget"]
    assert pdb["spec"]["selector"] == documents["Deployment"]["spec"]["selector"]
    kube.kubectl_run("create", "namespace", NS, check=False)
    applied = kube.kubectl_run(
        "apply", "--dry-run=server", "-f", "-", input_text=yaml.safe_dump(pdb), check=False
    )
    assert applied.returncode == 0, applied.stderr
    plain = template(kube)
    kinds = {d["kind"] for d in yaml.safe_load_all(plain.stdout) if d}
    assert not kinds & {"ServiceMonitor", "PodDisruptionBudget"}  # off by default


def test_tenancy_values_become_operator_flags_and_roles(kube: KubeCluster) -> None:
    result = template(
        kube,
        "watchNamespaces={team-a,team-b}",
        "gce.allowedProjects.team-a={acme-batch,acme-shared}",
        "tenancy.defaultServiceAccount=scaler",
    )
    assert result.returncode == 0, result.stderr
    documents = [d for d in yaml.safe_load_all(result.stdout) if d]
    deployment = next(d for d in documents if d["kind"] == "Deployment")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--gce-allow=team-a=acme-batch,acme-shared" in args
    assert "--default-service-account=scaler" in args
    cluster_role = next(d for d in documents if d["kind"] == "ClusterRole")
    cluster_wide = {r for rule in cluster_role["rules"] for r in rule["resources"]}
    assert "secrets" not in cluster_wide  # literal namespaces: Secrets only through Roles
    roles = {d["metadata"]["namespace"] for d in documents if d["kind"] == "Role"}
    assert {"team-a", "team-b"} <= roles


@pytest.mark.parametrize(
    ("period", "grace"),
    [
        pytest.param(None, "20", id="default-30s"),
        pytest.param("60", "50", id="longer"),
        pytest.param("5", "1", id="shorter-than-the-margin"),
    ],
)
def test_the_shutdown_grace_follows_the_pods_grace_period(
    kube: KubeCluster, period: str | None, grace: str
) -> None:
    """The passes get 10 s less than the Pod's grace period: the operator exits before SIGKILL."""
    result = template(kube, *([f"terminationGracePeriodSeconds={period}"] if period else []))
    assert result.returncode == 0, result.stderr
    deployment = next(
        d for d in yaml.safe_load_all(result.stdout) if d and d["kind"] == "Deployment"
    )
    pod = deployment["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == int(period or 30)
    assert f"--shutdown-grace={grace}" in pod["containers"][0]["args"]


def test_install_prints_notes_that_say_what_to_do_next(kube: KubeCluster) -> None:
    result = helm(
        kube,
        "upgrade",
        "--install",
        "az",
        str(CHART),
        "--namespace",
        NS,
        "--create-namespace",
        "--set",
        "watchNamespaces={team-*}",
    )
    assert result.returncode == 0, result.stderr
    assert "It serves ScalingPolicies in team-*." in result.stdout
    assert "no namespace may target any GCE project yet" in result.stdout
    assert "kubectl get scalingpolicies -A" in result.stdout


@pytest.mark.parametrize(
    "sets",
    [
        pytest.param([], id="defaults"),
        pytest.param(
            [
                "replicas=2",
                "podDisruptionBudget.enabled=true",
                "watchNamespaces={autozero-chart}",
                "gce.allowedProjects.autozero-chart={acme}",
                "tenancy.defaultServiceAccount=scaler",
            ],
            id="ha-and-tenancy",
        ),
    ],
)
def test_everything_the_chart_renders_passes_a_server_dry_run(
    kube: KubeCluster, sets: list[str]
) -> None:
    kube.kubectl_run("create", "namespace", NS, check=False)
    rendered = template(kube, *sets)
    assert rendered.returncode == 0, rendered.stderr
    applied = kube.kubectl_run(
        "apply", "--dry-run=server", "-f", "-", input_text=rendered.stdout, check=False
    )
    assert applied.returncode == 0, applied.stderr
    kinds = {line.split("/")[0] for line in applied.stdout.splitlines()}
    assert {"deployment.apps", "clusterrole.rbac.authorization.k8s.io"} <= kinds


def test_host_network_settings_render_a_node_local_operator(kube: KubeCluster) -> None:
    """The test and edge settings: the Pod in the node's network, /healthz on its loopback,
    replaced rather than rolled (the new Pod needs the ports the old one holds)."""
    env = '[{"name":"KUBERNETES_SERVICE_HOST","value":"127.0.0.1"}]'
    result = template(kube, "hostNetwork=true", "loopback=true", "health.port=18081")
    assert result.returncode == 0, result.stderr
    with_env = helm(kube, "template", "az", str(CHART), f"--set-json=extraEnv={env}")
    assert with_env.returncode == 0, with_env.stderr
    deployment = next(
        d for d in yaml.safe_load_all(result.stdout) if d and d["kind"] == "Deployment"
    )
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert (pod["hostNetwork"], pod["dnsPolicy"]) == (True, "ClusterFirstWithHostNet")
    assert "--liveness=http://127.0.0.1:18081/healthz" in container["args"]
    assert container["readinessProbe"]["httpGet"]["host"] == "127.0.0.1"
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert "KUBERNETES_SERVICE_HOST" in with_env.stdout


def test_loopback_without_host_network_is_refused(kube: KubeCluster) -> None:
    result = template(kube, "loopback=true")
    assert result.returncode != 0
    assert "loopback: true needs hostNetwork: true" in result.stderr


def test_the_crd_is_a_template_kept_on_uninstall_and_can_be_left_out(kube: KubeCluster) -> None:
    default = template(kube)
    assert default.returncode == 0, default.stderr
    (crd,) = [
        d
        for d in yaml.safe_load_all(default.stdout)
        if d and d["kind"] == "CustomResourceDefinition"
    ]
    assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    shipped = yaml.safe_load((ROOT / "crds" / "scalingpolicies.autozero.dev.yaml").read_text())
    assert crd["spec"] == shipped["spec"]
    left_out = template(kube, "crds.install=false")
    assert "CustomResourceDefinition" not in left_out.stdout


def test_sharding_runs_every_replica_with_its_own_lease_and_a_pdb(kube: KubeCluster) -> None:
    result = template(kube, "sharding.enabled=true", "replicas=3")
    assert result.returncode == 0, result.stderr
    documents = [d for d in yaml.safe_load_all(result.stdout) if d]
    kinds = {d["kind"]: d for d in documents}
    deployment = kinds["Deployment"]
    assert deployment["spec"]["replicas"] == 3
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert "--sharding" in container["args"]
    assert "--leader-elect" not in container["args"]  # sharding replaces it
    assert "--renew-seconds=10" in container["args"]
    env = {e["name"]: e.get("valueFrom") for e in container["env"]}
    assert env["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert kinds["PodDisruptionBudget"]["spec"]["minAvailable"] == 1
    lease_rules = [
        rule
        for d in documents
        if d["kind"] == "Role"
        for rule in d["rules"]
        if "leases" in rule["resources"]
    ]
    assert {"list", "patch", "delete", "create"} <= set(lease_rules[0]["verbs"])
    plain = template(kube, "replicas=3")
    plain_kinds = {d["kind"]: d for d in yaml.safe_load_all(plain.stdout) if d}
    plain_args = plain_kinds["Deployment"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--leader-elect" in plain_args
    assert "--sharding" not in plain_args
