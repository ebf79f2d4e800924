"""Tenant isolation end to end: a ScalingPolicy never scales what its namespace could not.

One operator runs under the chart's own ServiceAccount and RBAC (rendered by helm with literal
watch namespaces, so its Secrets, Events, HPAs and /scale rights are Roles in those namespaces
only), with the command-line arguments of the chart's own Deployment, against the real apiserver
(RBAC on) and the GCE emulator, whose request log shows every call and as whom it was made.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from kubernetes import client as k8s
from support.operator import condition, events_of, http_get, start_operator, status_of
from testground.gce import compute_client, create_mig
from testground.kube import (
    KubeCluster,
    apply_worker_crd,
    create_secret,
    create_worker_deployment,
    create_worker_object,
    worker_object_replicas,
)
from testground.pki import gce_service_account_key
from testground.process import free_port, wait_for
from testground.rabbitmq import RabbitMQServer
from testground.redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "autozero"
RELEASE_NS = "autozero-tenancy"
TENANTS = ("cross", "other", "sar", "gce", "leak")
ALLOWED_PROJECT = "acme-batch"
FORBIDDEN_PROJECT = "acme-payroll"
TENANT_KEY_EMAIL = "tenant-gce@acme-batch.iam.gserviceaccount.com"


@dataclass
class Tenancy:
    namespaces: dict[str, str]
    emulator: Any
    metrics_url: str
    log: Path
    kubeconfig: Path  # the operator's: its ServiceAccount's token


def _chart_args(rendered: str) -> list[str]:
    """The operator's arguments from the chart's own Deployment, minus what only makes sense in
    a pod (the health endpoint) and the metrics port (a free one here)."""
    for document in yaml.safe_load_all(rendered):
        if document and document.get("kind") == "Deployment":
            args = document["spec"]["template"]["spec"]["containers"][0]["args"]
            return [
                a
                for a in args[1:]
                if not a.startswith(("--liveness", "--metrics-port", "--leader-elect"))
            ]
    raise AssertionError("the chart renders no Deployment")


@pytest.fixture(scope="module")
def tenancy(
    kube: KubeCluster, kube_api: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Tenancy]:
    from gce_emulator import EmulatorServer, Settings

    kube.kubectl_run("apply", "-f", str(ROOT / "crds" / "scalingpolicies.autozero.dev.yaml"))
    kube.wait_established("scalingpolicies.autozero.dev")
    apply_worker_crd(kube)
    suffix = uuid.uuid4().hex[:5]
    namespaces = {t: f"tn-{suffix}-{t}" for t in TENANTS}
    core = k8s.CoreV1Api(kube_api)
    for name in [*namespaces.values(), RELEASE_NS]:
        if name == RELEASE_NS:
            kube.kubectl_run("create", "namespace", name, check=False)
        else:
            core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name)))
    values = {
        "watchNamespaces": sorted(namespaces.values()),
        "rbac": {
            "scaleTargets": [
                {"apiGroup": "apps", "resources": ["deployments/scale", "statefulsets/scale"]},
                {"apiGroup": "test.autozero.dev", "resources": ["workers/scale"]},
            ]
        },
        "gce": {"allowedProjects": {namespaces["gce"]: [ALLOWED_PROJECT]}},
    }
    workdir = tmp_path_factory.mktemp("tenancy")
    (workdir / "values.yaml").write_text(yaml.safe_dump(values))
    rendered = subprocess.run(
        [
            str(kube.helm),
            "template",
            "tenancy",
            str(CHART),
            "--namespace",
            RELEASE_NS,
            "--values",
            str(workdir / "values.yaml"),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    kube.kubectl_run("apply", "-f", "-", input_text=rendered)
    config = kube.service_account_kubeconfig(
        RELEASE_NS, "autozero", workdir / "operator.kubeconfig"
    )
    emulator = EmulatorServer(
        settings=Settings(operation_seconds=0.1, instance_boot_seconds=0.2)
    ).start()
    port = free_port()
    log_path = workdir / "operator.log"
    log = log_path.open("w")
    args = ["--kubeconfig", str(config), "--metrics-port", str(port)]
    args += ["--gce-endpoint", emulator.api_endpoint, "--access-recheck", "2"]
    args += _chart_args(rendered)
    process = start_operator(log, args)
    metrics_url = f"http://127.0.0.1:{port}/metrics"
    try:
        wait_for(lambda: http_get(metrics_url) is not None, timeout=30)
        yield Tenancy(namespaces, emulator, metrics_url, log_path, config)
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
        emulator.stop()


def redis_policy(namespace: str, target: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "autozero.dev/v1alpha1",
        "kind": "ScalingPolicy",
        "metadata": {"name": "queue-workers", "namespace": namespace},
        "spec": {
            "pollingInterval": "1s",
            "metrics": [
                {
                    "name": "backlog",
                    "redis": {
                        "urlFrom": {"secretKeyRef": {"name": "queue", "key": "url"}},
                        "key": f"jobs:{namespace}",
                    },
                }
            ],
            "groups": [
                {
                    "name": "workers",
                    "target": target,
                    "capacity": {"minimum": 0, "maximum": 4, "default": 2},
                    "activation": {"metric": "backlog", "idleFor": "3s"},
                }
            ],
            **spec,
        },
    }


def apply(kube: KubeCluster, manifest: dict[str, Any]) -> None:
    kube.kubectl_run("apply", "-f", "-", input_text=yaml.safe_dump(manifest))


def refused_with(kube_api: Any, namespace: str, reason: str, name: str = "queue-workers") -> str:
    """Wait for Ready=False with `reason` and its Event; return the condition's message."""

    def ready() -> dict[str, Any] | None:
        status = status_of(kube_api, namespace, name)
        found = [c for c in status.get("conditions", []) if c["type"] == "Ready"]
        return found[0] if found and found[0]["reason"] == reason else None

    ready_condition = wait_for(ready, timeout=30)
    assert ready_condition["status"] == "False"
    wait_for(lambda: any(r == reason for r, _ in events_of(kube_api, namespace)), timeout=15)
    return str(ready_condition["message"])


def test_a_workload_in_another_namespace_is_never_scaled(
    tenancy: Tenancy, kube: KubeCluster, kube_api: Any, redis_server: RedisServer
) -> None:
    cross, other = tenancy.namespaces["cross"], tenancy.namespaces["other"]
    create_worker_deployment(kube_api, other)
    create_secret(kube_api, cross, "queue", {"url": redis_server.url})
    redis.Redis.from_url(redis_server.url).rpush(f"jobs:{cross}", 1)
    target = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "worker", "namespace": other}
    apply(kube, redis_policy(cross, {"kubernetes": target}))
    message = refused_with(kube_api, cross, "TargetForbidden")
    assert f"Deployment {other}/worker is outside the policy's namespace {cross}" in message
    time.sleep(3)  # three polling intervals with work pending: a served policy would have woken
    scale = k8s.AppsV1Api(kube_api).read_namespaced_deployment_scale("worker", other)
    assert (scale.spec.replicas or 0) == 0  # the apiserver omits a zero
    assert "groups" not in status_of(kube_api, cross)


def test_a_service_account_without_scale_rights_is_refused_until_granted_and_once_revoked(
    tenancy: Tenancy, kube: KubeCluster, kube_api: Any, redis_server: RedisServer
) -> None:
    """The operator itself may patch workers/scale here; the policy's ServiceAccount may not."""
    namespace = tenancy.namespaces["sar"]
    create_worker_object(kube, namespace)
    k8s.CoreV1Api(kube_api).create_namespaced_service_account(
        namespace, k8s.V1ServiceAccount(metadata=k8s.V1ObjectMeta(name="scaler"))
    )
    create_secret(kube_api, namespace, "queue", {"url": redis_server.url})
    redis.Redis.from_url(redis_server.url).rpush(f"jobs:{namespace}", 1)
    target = {"apiVersion": "test.autozero.dev/v1", "kind": "Worker", "name": "worker"}
    apply(kube, redis_policy(namespace, {"kubernetes": target}, serviceAccountName="scaler"))
    message = refused_with(kube_api, namespace, "TargetForbidden")
    assert f"ServiceAccount {namespace}/scaler may not get workers/scale" in message
    assert "patch workers/scale.test.autozero.dev worker" in message
    assert worker_object_replicas(kube_api, namespace) == 0

    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "scale-workers", "namespace": namespace},
        "rules": [
            {
                "apiGroups": ["test.autozero.dev"],
                "resources": ["workers/scale"],
                "verbs": ["get", "patch"],
            }
        ],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "scale-workers", "namespace": namespace},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": "scale-workers",
        },
        "subjects": [{"kind": "ServiceAccount", "name": "scaler", "namespace": namespace}],
    }
    kube.kubectl_run("apply", "-f", "-", input_text=yaml.safe_dump_all([role, binding]))
    wait_for(lambda: worker_object_replicas(kube_api, namespace) == 2, timeout=40)
    # The pass reports after its writes: the status says Ready once the scale has landed.
    wait_for(
        lambda: condition(status_of(kube_api, namespace), "Ready")["status"] == "True",
        timeout=10,
        interval=0.2,
    )

    # Revoked while awake: within a recheck (2 s here, 5 min by default) the policy stops acting.
    kube.kubectl_run("delete", "rolebinding", "scale-workers", "-n", namespace)
    refused_with(kube_api, namespace, "TargetForbidden")
    redis.Redis.from_url(redis_server.url).delete(f"jobs:{namespace}")
    time.sleep(5)  # idleFor (3 s) has passed: a policy still acting would have gone to 0
    assert worker_object_replicas(kube_api, namespace) == 2


def test_gce_projects_outside_the_allowlist_get_no_call_and_tenants_use_their_own_key(
    tenancy: Tenancy, kube: KubeCluster, kube_api: Any, redis_server: RedisServer
) -> None:
    namespace, emulator = tenancy.namespaces["gce"], tenancy.emulator
    compute = compute_client(emulator.api_endpoint)
    for project in (ALLOWED_PROJECT, FORBIDDEN_PROJECT):
        create_mig(compute, project, "bids", zone="europe-west1-c")
    emulator.control("requests", method="DELETE")
    key = gce_service_account_key(f"{emulator.url}/token", TENANT_KEY_EMAIL, ALLOWED_PROJECT)
    create_secret(kube_api, namespace, "queue", {"url": redis_server.url})
    create_secret(kube_api, namespace, "gce-key", {"key.json": json.dumps(key)})
    redis.Redis.from_url(redis_server.url).rpush(f"jobs:{namespace}", 1)

    def gce(project: str, **extra: Any) -> dict[str, Any]:
        return {
            "gce": {
                "project": project,
                "zone": "europe-west1-c",
                "instanceGroupManager": "bids",
                **extra,
            }
        }

    forbidden = redis_policy(namespace, gce(FORBIDDEN_PROJECT))
    forbidden["metadata"]["name"] = "payroll"
    apply(kube, forbidden)
    credentials = {"secretKeyRef": {"name": "gce-key", "key": "key.json"}}
    apply(kube, redis_policy(namespace, gce(ALLOWED_PROJECT, credentials=credentials)))

    def size(project: str) -> int:
        group = (
            compute.instanceGroupManagers()
            .get(project=project, zone="europe-west1-c", instanceGroupManager="bids")
            .execute()
        )
        return int(group["targetSize"])

    wait_for(lambda: size(ALLOWED_PROJECT) == 2, timeout=40)
    message = refused_with(kube_api, namespace, "GCEProjectNotAllowed", name="payroll")
    assert f"may not target GCE project {FORBIDDEN_PROJECT} (allowed: {ALLOWED_PROJECT})" in message
    time.sleep(2)
    log = emulator.control("requests", method="GET")["requests"]
    operator_calls = [r for r in log if r["principal"] != "anonymous"]  # the test's are anonymous
    assert operator_calls, "the operator made no call at all: the check below would be vacuous"
    assert {r["project"] for r in operator_calls} == {ALLOWED_PROJECT}
    assert {r["principal"] for r in operator_calls} == {TENANT_KEY_EMAIL}
    assert [r for r in log if r["project"] == FORBIDDEN_PROJECT] == []  # by anyone, since cleared
    assert size(FORBIDDEN_PROJECT) == 0


PASSWORD = "Sesame-" + uuid.uuid4().hex  # unique, so any occurrence is a leak


def test_a_password_in_a_source_url_appears_nowhere(
    tenancy: Tenancy,
    kube: KubeCluster,
    kube_api: Any,
    rabbitmq: RabbitMQServer,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    """Wrong credentials, so every cycle fails and reports: the password is in none of the log,
    the status, the Events and /metrics."""
    namespace = tenancy.namespaces["leak"]
    create_worker_deployment(kube_api, namespace)
    guarded = RedisServer(tmp_path, password="the-right-one")
    guarded.start()
    request.addfinalizer(guarded.stop)
    create_secret(
        kube_api,
        namespace,
        "queue",
        {"url": f"redis://:{PASSWORD}@127.0.0.1:{guarded.port}/0", "password": PASSWORD},
    )
    manifest = redis_policy(
        namespace, {"kubernetes": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "worker"}}
    )
    manifest["spec"]["metrics"].append(
        {
            "name": "invoices",
            "rabbitmq": {
                "managementUrl": rabbitmq.management_url,
                "queue": "invoices",
                "usernameFrom": {"secretKeyRef": {"name": "queue", "key": "password"}},
                "passwordFrom": {"secretKeyRef": {"name": "queue", "key": "password"}},
            },
        }
    )
    manifest["spec"]["groups"][0]["profiles"] = [
        {
            "name": "default",
            "rules": [
                {
                    "metric": "invoices",
                    "operator": "GreaterThan",
                    "threshold": 10,
                    "action": {"direction": "Increase", "value": 1, "cooldown": "1m"},
                }
            ],
        }
    ]
    apply(kube, manifest)

    def degraded() -> dict[str, Any] | None:
        status = status_of(kube_api, namespace)
        found = [c for c in status.get("conditions", []) if c["type"] == "Degraded"]
        failing = status.get("metrics", {})
        both = all("error" in failing.get(m, {}) for m in ("backlog", "invoices"))
        return status if found and found[0]["status"] == "True" and both else None

    try:
        status = wait_for(degraded, timeout=40)
    except AssertionError:
        status = status_of(kube_api, namespace)
        raise AssertionError(f"both sources should fail: {status}") from None
    wait_for(
        lambda: sum(r == "SourceFailed" for r, _ in events_of(kube_api, namespace)) >= 2, timeout=15
    )
    time.sleep(3)  # a few more failing cycles, logged
    policy_yaml = kube.kubectl_run(
        "get", "scalingpolicy", "queue-workers", "-n", namespace, "-o", "yaml"
    ).stdout
    events_yaml = kube.kubectl_run("get", "events", "-n", namespace, "-o", "yaml").stdout
    metrics = http_get(tenancy.metrics_url) or ""
    operator_log = tenancy.log.read_text()
    assert status["metrics"]["backlog"]["error"]  # the failures are reported...
    assert "SourceFailed" in events_yaml
    assert f'namespace="{namespace}"' in metrics
    for where, text in {
        "log": operator_log,
        "status": policy_yaml,
        "events": events_yaml,
        "metrics": metrics,
    }.items():
        leaks = [line for line in text.splitlines() if PASSWORD in line]
        assert not leaks, f"the password leaked into the {where}: {leaks}"  # ...the secret not


def _can_i_list(kube: KubeCluster, config: Path, namespace: str) -> set[tuple[str, ...]]:
    out = kube.kubectl_run("auth", "can-i", "--list", "-n", namespace, kubeconfig=config).stdout
    rows = set()
    for line in out.splitlines()[1:]:
        cells = re.split(r"\s{2,}", line.strip())
        if cells and cells[0]:
            rows.add(tuple(cells))
    return rows


def documented_permissions() -> dict[str, set[tuple[str, ...]]]:
    """The `kubectl auth can-i --list` rows docs/security.md promises, by kind of namespace."""
    text = (ROOT / "docs" / "security.md").read_text()
    found: dict[str, set[tuple[str, ...]]] = {}
    for scope, block in re.findall(r"<!-- can-i: (\w+) -->\n```text\n(.*?)```", text, re.S):
        found[scope] = {tuple(re.split(r"\s{2,}", r.strip())) for r in block.splitlines()[1:]}
    return found


def test_the_service_account_may_do_exactly_what_docs_security_lists(
    tenancy: Tenancy, kube: KubeCluster, kube_api: Any, tmp_path: Path
) -> None:
    """What every authenticated user may do (a ServiceAccount with no binding) is left out."""
    account = f"nobody-{uuid.uuid4().hex[:6]}"
    k8s.CoreV1Api(kube_api).create_namespaced_service_account(
        RELEASE_NS, k8s.V1ServiceAccount(metadata=k8s.V1ObjectMeta(name=account))
    )
    nobody = kube.service_account_kubeconfig(RELEASE_NS, account, tmp_path / "nobody")
    documented = documented_permissions()
    assert set(documented) == {"watched", "other"}
    for scope, namespace in (("watched", tenancy.namespaces["gce"]), ("other", "default")):
        granted = _can_i_list(kube, tenancy.kubeconfig, namespace)
        baseline = _can_i_list(kube, nobody, namespace)
        extra = granted - baseline
        table = "\n".join("   ".join(row) for row in sorted(extra))
        assert extra == documented[scope], f"{scope}: the ServiceAccount may do\n{table}"
    no_secret = kube.kubectl_run(
        *("auth", "can-i", "get", "secrets", "-n", "default"),
        kubeconfig=tenancy.kubeconfig,
        check=False,
    )
    assert no_secret.stdout.strip() == "no"
