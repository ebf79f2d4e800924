"""The chart's Grafana dashboard against the real Prometheus scraping a real operator: every
panel's PromQL parses, names only metrics the operator serves, and returns data once a policy has
been through a wake and a sleep (and a source has failed)."""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from kubernetes import client as k8s
from support.operator import http_get, scale_of, start_operator
from testground.kube import KubeCluster, create_secret, create_worker_deployment
from testground.process import free_port, wait_for
from testground.prometheus import PrometheusServer
from testground.redis_server import RedisServer
from testground.tools import go_tools

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "autozero"
#: What Grafana puts in the variables, for a query over every policy: $__rate_interval is four
#: scrape intervals (Prometheus scrapes every second here).
VARIABLES = {
    "$__rate_interval": "5s",
    "$namespace": ".*",
    "$policy": ".*",
    "$pollingInterval": "1",
}


def render(*sets: str) -> list[dict[str, Any]]:
    result = subprocess.run(
        [str(go_tools().helm), "template", "az", str(CHART), *(f"--set={s}" for s in sets)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def dashboard_configmap(*sets: str) -> dict[str, Any]:
    (found,) = [
        d
        for d in render("dashboards.enabled=true", *sets)
        if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "az-autozero-dashboard"
    ]
    return found


def test_the_dashboard_is_off_by_default_and_labelled_for_the_sidecar() -> None:
    assert not [d for d in render() if d["kind"] == "ConfigMap"]
    configmap = dashboard_configmap("dashboards.namespace=monitoring")
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert configmap["metadata"]["namespace"] == "monitoring"
    dashboard = json.loads(configmap["data"]["autozero.json"])
    assert dashboard["uid"] == "autozero"
    assert dashboard["panels"]


def substitute(expr: str) -> str:
    for name, value in VARIABLES.items():
        expr = expr.replace(name, value)
    assert "$" not in expr, f"a variable the test does not know: {expr}"
    return expr


def api(prometheus: PrometheusServer, path: str, **params: Any) -> Any:
    url = f"{prometheus.url}/api/v1/{path}?{urllib.parse.urlencode(params, doseq=True)}"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:  # a query that does not parse: 400 with the error
        body = json.loads(exc.read())
    assert body["status"] == "success", f"{params}: {body.get('error')}"
    return body["data"]


@pytest.fixture(scope="module")
def operator_port(kube: KubeCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    kube.kubectl_run("apply", "-f", str(ROOT / "crds" / "scalingpolicies.autozero.dev.yaml"))
    kube.wait_established("scalingpolicies.autozero.dev")
    port = free_port()
    log = (tmp_path_factory.mktemp("operator") / "operator.log").open("w")
    process = start_operator(
        log,
        [
            "--kubeconfig",
            str(kube.kubeconfig),
            "--metrics-port",
            str(port),
            "--namespace",
            "dash-*",
        ],
    )
    try:
        wait_for(lambda: http_get(f"http://127.0.0.1:{port}/metrics") is not None, timeout=30)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def policy(namespace: str, name: str, key: str) -> dict[str, Any]:
    return {
        "apiVersion": "autozero.dev/v1alpha1",
        "kind": "ScalingPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "pollingInterval": "1s",
            "metrics": [
                {
                    "name": "backlog",
                    "redis": {
                        "urlFrom": {"secretKeyRef": {"name": name, "key": "url"}},
                        "key": key,
                    },
                }
            ],
            "groups": [
                {
                    "name": "workers",
                    "target": {
                        "kubernetes": {
                            "apiVersion": "apps/v1",
                            "kind": "Deployment",
                            "name": name,
                        }
                    },
                    "capacity": {"minimum": 0, "maximum": 4, "default": 2},
                    "activation": {"metric": "backlog", "idleFor": "2s"},
                }
            ],
        },
    }


def test_every_panel_returns_data_from_prometheus(
    operator_port: int,
    kube: KubeCluster,
    kube_api: Any,
    prometheus: PrometheusServer,
    redis_server: RedisServer,
) -> None:
    started = time.time()
    prometheus.add_target(f"127.0.0.1:{operator_port}")
    namespace = f"dash-{uuid.uuid4().hex[:6]}"
    k8s.CoreV1Api(kube_api).create_namespace(
        k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=namespace))
    )
    for name, url in (
        ("queue", redis_server.url),
        ("broken", f"redis://127.0.0.1:{free_port()}/0"),  # nothing listens: source errors
    ):
        create_worker_deployment(kube_api, namespace, name)
        create_secret(kube_api, namespace, name, {"url": url})
    key = f"jobs:{namespace}"
    kube.kubectl_run(
        "apply",
        "-f",
        "-",
        input_text=yaml.safe_dump_all(
            [policy(namespace, "queue", key), policy(namespace, "broken", "jobs")]
        ),
    )
    queue = redis.Redis.from_url(redis_server.url)
    queue.rpush(key, *range(5))
    wait_for(lambda: scale_of(kube_api, namespace, "queue") == 2, timeout=30)
    queue.delete(key)
    wait_for(lambda: scale_of(kube_api, namespace, "queue") == 0, timeout=30)
    # Prometheus has scraped the sleep (and a few seconds after it, for the rates).
    wait_for(
        lambda: api(
            prometheus,
            "query",
            query=f'autozero_decisions_total{{namespace="{namespace}", action="Sleep"}}',
        )["result"],
        timeout=30,
    )
    wait_for(
        lambda: api(
            prometheus,
            "query",
            query=f'increase(autozero_source_errors_total{{namespace="{namespace}"}}[5s]) > 0',
        )["result"],
        timeout=30,
    )
    served = http_get(f"http://127.0.0.1:{operator_port}/metrics") or ""
    families = set(re.findall(r"^# TYPE (\w+) ", served, re.MULTILINE))

    dashboard = json.loads(dashboard_configmap()["data"]["autozero.json"])
    unknown, queries = [], []
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            expr = substitute(target["expr"])
            for name in re.findall(r"\bautozero_\w+", expr):
                if re.sub(r"_(bucket|count|sum)$", "", name) not in families:
                    unknown.append((panel["title"], name))
            queries.append((panel["title"], expr))
    assert unknown == []

    def empty() -> list[tuple[str, str]]:
        # A scrape missed on a loaded machine (Prometheus' timeout is its 1 s interval) leaves a
        # rate window without two samples for a while: ask again until the data is there, or
        # name the panels that never had any.
        end = time.time()
        return [
            (title, expr)
            for title, expr in queries
            if not any(
                series["values"]
                for series in api(
                    prometheus, "query_range", query=expr, start=started, end=end, step="1s"
                )["result"]
            )
        ]

    missing = empty()
    deadline = time.monotonic() + 30
    while missing and time.monotonic() < deadline:
        time.sleep(1)
        missing = empty()
    assert missing == []
    for variable in dashboard["templating"]["list"]:
        if variable["type"] != "query":
            continue
        match = re.fullmatch(r"label_values\((.+), (\w+)\)", substitute(variable["definition"]))
        assert match, variable["definition"]
        values = api(prometheus, f"label/{match[2]}/values", **{"match[]": match[1]})
        assert namespace in values or "queue" in values, (variable["name"], values)
