"""Bad policies beside good ones never stop the operator serving the good ones.

Every fuzzed manifest (tests/support/policy_fuzz.py, seed 22) that the apiserver takes is created
in one namespace beside two good policies: the ones that validate refuses (zones, dates, grains),
and the valid ones that name secrets, servers, GCE projects and workloads that do not exist.
The operator must keep running, wake and put to sleep the good policies' Deployments, and say
for every fuzzed policy that it is not ready rather than go silent.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from kubernetes import client as k8s
from support.operator import condition, http_get, scale_of, start_operator, status_of
from support.policy_fuzz import as_kubectl_sends, mutants
from testground.kube import KubeCluster, create_secret, create_worker_deployment
from testground.process import free_port, wait_for
from testground.redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def namespace(kube: KubeCluster, kube_api: Any) -> str:
    kube.kubectl_run("apply", "-f", str(ROOT / "crds" / "scalingpolicies.autozero.dev.yaml"))
    kube.wait_established("scalingpolicies.autozero.dev")
    name = f"fz-{uuid.uuid4().hex[:6]}"
    k8s.CoreV1Api(kube_api).create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name)))
    return name


@pytest.fixture
def operator(kube: KubeCluster, namespace: str, tmp_path: Path) -> Iterator[Any]:
    port = free_port()
    with (tmp_path / "operator.log").open("w") as log:
        process = start_operator(
            log,
            [
                *("--kubeconfig", str(kube.kubeconfig), "--metrics-port", str(port)),
                *("--namespace", namespace),
            ],
        )
        try:
            wait_for(lambda: http_get(f"http://127.0.0.1:{port}/metrics") is not None, timeout=30)
            yield process
        finally:
            process.terminate()
            process.wait(timeout=30)


def good_policy(namespace: str, name: str) -> dict[str, Any]:
    return yaml.safe_load(f"""
apiVersion: autozero.dev/v1alpha1
kind: ScalingPolicy
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  pollingInterval: 1s
  metrics:
    - name: backlog
      redis: {{urlFrom: {{secretKeyRef: {{name: queue, key: url}}}}, key: "jobs:{name}"}}
  groups:
    - name: workers
      target: {{kubernetes: {{apiVersion: apps/v1, kind: Deployment, name: {name}}}}}
      capacity: {{minimum: 0, maximum: 3, default: 2}}
      activation: {{metric: backlog, idleFor: 2s}}
""")


def create(api: Any, namespace: str, manifest: dict[str, Any]) -> str | None:
    """Create `manifest` in `namespace`; its name when the apiserver took it, else None."""
    url = (
        f"{api.configuration.host}/apis/autozero.dev/v1alpha1/namespaces/{namespace}/"
        "scalingpolicies?fieldValidation=Strict"
    )
    body = {**manifest, "metadata": {**manifest["metadata"], "namespace": namespace}}
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    response = api.call_api(
        "POST", url, header_params=headers, body=as_kubectl_sends(body), _request_timeout=60
    )
    text = response.read().decode(errors="replace")
    if response.status == 201:
        return str(manifest["metadata"]["name"])
    assert response.status in (400, 409, 422), f"{response.status}: {text[:300]}"
    return None


def test_fuzzed_policies_beside_good_ones_never_stop_the_good_ones(
    kube_api: Any, namespace: str, operator: Any, redis_server: RedisServer
) -> None:
    create_secret(kube_api, namespace, "queue", {"url": redis_server.url})
    good = ["good-a", "good-b"]
    for name in good:
        create_worker_deployment(kube_api, namespace, name)
        assert create(kube_api, namespace, good_policy(namespace, name)) == name
    with ThreadPoolExecutor(8) as pool:
        taken = [
            n
            for n in pool.map(lambda m: create(kube_api, namespace, m.manifest), mutants(22, 1100))
            if n
        ]
    assert len(taken) >= 50, taken  # enough bad company to mean something

    queue = redis.Redis.from_url(redis_server.url)
    for round_ in range(2):  # wake and sleep twice, the fuzzed policies being read meanwhile
        for name in good:
            queue.rpush(f"jobs:{name}", *range(3))
        for name in good:
            wait_for(lambda n=name: scale_of(kube_api, namespace, n) == 2, timeout=60)
        for name in good:
            queue.delete(f"jobs:{name}")
        for name in good:
            wait_for(lambda n=name: scale_of(kube_api, namespace, n) == 0, timeout=60)
        assert operator.poll() is None, f"the operator exited (round {round_})"

    def silent() -> list[str]:
        items = k8s.CustomObjectsApi(kube_api).list_namespaced_custom_object(
            "autozero.dev", "v1alpha1", namespace, "scalingpolicies"
        )["items"]
        spoken = {
            i["metadata"]["name"]
            for i in items
            if (i.get("status") or {}).get("conditions") or (i.get("status") or {}).get("groups")
        }
        return [n for n in taken if n not in spoken]

    try:
        wait_for(lambda: not silent(), timeout=90, interval=1)
    except AssertionError:
        pytest.fail(f"no status on {silent()[:10]} of {len(taken)}")
    for name in good:
        assert condition(status_of(kube_api, namespace, name), "Ready")["status"] == "True"
