"""`autozero explain` and `kubectl autozero explain` against the real apiserver and a running
operator: each situation a user asks about names its reason."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from kubernetes import client as k8s
from support.operator import condition, http_get, start_operator, status_of
from testground.kube import KubeCluster, create_secret, create_worker_deployment
from testground.process import free_port, wait_for
from testground.redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent  # where the package installed autozero and kubectl-autozero


@pytest.fixture(scope="module")
def operator(kube: KubeCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`autozero operator` for the `ex-*` namespaces; yields its /metrics URL."""
    kube.kubectl_run("apply", "-f", str(ROOT / "crds" / "scalingpolicies.autozero.dev.yaml"))
    kube.wait_established("scalingpolicies.autozero.dev")
    port = free_port()
    log = (tmp_path_factory.mktemp("operator") / "operator.log").open("w")
    process = start_operator(
        log,
        ["--kubeconfig", str(kube.kubeconfig), "--metrics-port", str(port), "--namespace", "ex-*"],
    )
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        wait_for(lambda: http_get(url) is not None, timeout=30)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def new_namespace(kube_api: Any, prefix: str = "ex") -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    k8s.CoreV1Api(kube_api).create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name)))
    return name


@pytest.fixture
def namespace(kube_api: Any) -> str:
    return new_namespace(kube_api)


def prepare(kube_api: Any, namespace: str, url: str) -> None:
    create_worker_deployment(kube_api, namespace)
    create_secret(kube_api, namespace, "queue", {"url": url})


def manifest(namespace: str, key: str, **group: Any) -> dict[str, Any]:
    """A policy with one group on Redis key `key`; `group` overrides the group's fields."""
    body: dict[str, Any] = {
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
                            "name": "worker",
                        }
                    },
                    "capacity": {"minimum": 0, "maximum": 4, "default": 2},
                    "activation": {"metric": "backlog", "idleFor": "1h"},
                }
            ],
        },
    }
    body["spec"]["groups"][0].update(group)
    return body


def apply(kube: KubeCluster, body: dict[str, Any]) -> None:
    kube.kubectl_run("apply", "-f", "-", input_text=yaml.safe_dump(body))


def decided(kube_api: Any, namespace: str, check: Any = None) -> dict[str, Any]:
    """The status once the group has a decision (that passes `check`, when given)."""

    def ready() -> dict[str, Any] | None:
        status = status_of(kube_api, namespace)
        groups = status.get("groups") or []
        if groups and "lastDecision" in groups[0] and (check is None or check(groups[0])):
            return status
        return None

    found: dict[str, Any] = wait_for(ready, timeout=60)
    return found


def explain(kube: KubeCluster, namespace: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(BIN / "autozero"),
            "explain",
            *args,
            "-n",
            namespace,
            "--kubeconfig",
            str(kube.kubeconfig),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def explain_json(
    kube: KubeCluster, namespace: str, policy: str = "queue-workers"
) -> dict[str, Any]:
    result = explain(kube, namespace, policy, "--output", "json")
    assert result.returncode == 0, result.stderr
    found: dict[str, Any] = json.loads(result.stdout)
    return found


def kubectl_autozero(kube: KubeCluster, *args: str) -> subprocess.CompletedProcess[str]:
    """The real kubectl, finding the plugin on PATH as a user's would."""
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "KUBECONFIG": str(kube.kubeconfig),
    }
    return subprocess.run(
        [str(kube.kubectl), "autozero", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


def test_an_asleep_group_through_kubectl(
    operator: str, kube: KubeCluster, kube_api: Any, namespace: str, redis_server: RedisServer
) -> None:
    prepare(kube_api, namespace, redis_server.url)
    apply(kube, manifest(namespace, f"jobs:{namespace}"))
    decided(kube_api, namespace)
    result = kubectl_autozero(kube, "explain", "queue-workers", "-n", namespace)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"ScalingPolicy {namespace}/queue-workers, from its status and Events" in out
    assert "workers: asleep at 0, held: Asleep" in out
    assert "activation backlog: 0 items pending; wakes when more than 0 are pending" in out
    assert "bounds 0..4 in profile default; wakes to 2" in out
    assert "next evaluation: when an input changes" in out


def test_an_awake_group_in_cooldown(
    operator: str, kube: KubeCluster, kube_api: Any, namespace: str, redis_server: RedisServer
) -> None:
    prepare(kube_api, namespace, redis_server.url)
    key = f"jobs:{namespace}"
    redis.Redis.from_url(redis_server.url).rpush(key, *range(10))
    rule = {
        "metric": "backlog",
        "timeGrain": "1s",
        "timeWindow": "1s",
        "operator": "GreaterThan",
        "threshold": 2,
        "action": {"direction": "Increase", "value": 1, "cooldown": "1h"},
    }
    apply(
        kube,
        manifest(
            namespace,
            key,
            capacity={"minimum": 0, "maximum": 4, "default": 1},
            profiles=[{"name": "default", "rules": [rule]}],
        ),
    )
    status = decided(kube_api, namespace, lambda g: g["lastDecision"]["reason"] == "InCooldown")
    scaled = datetime.fromisoformat(status["groups"][0]["lastScale"]["time"].replace("Z", "+00:00"))
    explanation = explain_json(kube, namespace)
    group = explanation["groups"][0]
    assert group["state"] == "awake"
    assert group["reason"]["code"] == "InCooldown"
    until = (scaled + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert group["cooldowns"] == [
        {
            "rule": 0,
            "cooldown": "1h",
            "until": until,
            "sentence": f"cooldown of rule 0 (backlog > 2) runs until {until} (1h from the last "
            f"scale at {scaled.strftime('%Y-%m-%dT%H:%M:%SZ')})",
        }
    ]
    assert group["rules"][0]["against"] == "> 2 (Increase +1)"
    assert group["rules"][0]["status"] == "InCooldown"
    assert group["recent"][-1]["what"] == "Wake"
    assert group["activation"]["state"] == "pending"


def test_a_group_held_awake_by_work_in_flight(
    operator: str, kube: KubeCluster, kube_api: Any, namespace: str, redis_server: RedisServer
) -> None:
    prepare(kube_api, namespace, redis_server.url)
    k8s.AppsV1Api(kube_api).patch_namespaced_deployment_scale(
        "worker", namespace, {"spec": {"replicas": 1}}
    )
    key = f"stream:{namespace}"
    queue = redis.Redis.from_url(redis_server.url)
    queue.xgroup_create(key, "workers", id="$", mkstream=True)
    queue.xadd(key, {"job": "1"})
    queue.xreadgroup("workers", "w1", {key: ">"}, count=1)  # delivered, not acknowledged
    body = manifest(namespace, key, activation={"metric": "backlog", "idleFor": "2s"})
    body["spec"]["metrics"][0]["redis"].update(type="stream", consumerGroup="workers")
    apply(kube, body)
    decided(kube_api, namespace, lambda g: g["lastDecision"]["inFlight"] == 1)
    group = explain_json(kube, namespace)["groups"][0]
    assert group["state"] == "awake"
    assert group["activation"]["state"] == "in-flight"
    assert group["activation"]["sentence"] == (
        "activation backlog: 1 items in flight: the group does not sleep while work runs "
        "(in-flight guard)"
    )
    assert group["replicas"]["current"] == 1


def test_a_degraded_group_with_its_source_down(
    operator: str, kube: KubeCluster, kube_api: Any, namespace: str
) -> None:
    prepare(kube_api, namespace, f"redis://127.0.0.1:{free_port()}/0")  # nothing listens
    apply(kube, manifest(namespace, "jobs"))
    wait_for(
        lambda: (
            condition(status_of(kube_api, namespace), "Degraded")["status"] == "True"
            if status_of(kube_api, namespace).get("groups")
            else None
        ),
        timeout=60,
    )
    result = explain(kube, namespace, "queue-workers")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Degraded (SourceFailed): backlog:" in out
    assert "workers: asleep at 0, held: SourceFailed" in out
    assert "source backlog fails (Unreachable)" in out
    assert "the group stays asleep, not knowing whether work waits" in out


def test_a_paused_policy_says_what_it_would_do(
    operator: str, kube: KubeCluster, kube_api: Any, namespace: str, redis_server: RedisServer
) -> None:
    prepare(kube_api, namespace, redis_server.url)
    key = f"jobs:{namespace}"
    redis.Redis.from_url(redis_server.url).rpush(key, 1, 2, 3)
    body = manifest(namespace, key)
    body["metadata"]["annotations"] = {"autozero.dev/paused": "true"}
    apply(kube, body)
    decided(kube_api, namespace, lambda g: g["lastDecision"]["action"] == "Wake")
    out = explain(kube, namespace, "queue-workers").stdout
    assert "paused (annotation autozero.dev/paused): decisions are made and reported" in out
    assert "workers: asleep at 0: would Wake 0 -> 2 (not applied): WorkPending" in out
    assert "activation backlog: 3 items pending: wakes to 2 (not applied)" in out


def test_a_refused_policy_gets_one_line_per_group(
    operator: str, kube: KubeCluster, kube_api: Any, namespace: str, redis_server: RedisServer
) -> None:
    prepare(kube_api, namespace, redis_server.url)
    target = {
        "kubernetes": {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": "worker",
            "namespace": "kube-system",
        }
    }
    apply(kube, manifest(namespace, "jobs", target=target))
    wait_for(
        lambda: (
            (status_of(kube_api, namespace).get("conditions") or [{}])[0].get("reason")
            == "TargetForbidden"
        ),
        timeout=60,
    )
    result = kubectl_autozero(kube, "explain", "queue-workers", "-n", namespace)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("  the policy is not served: TargetForbidden: ") for line in lines)
    assert [line for line in lines if line.startswith("workers:")] == [
        next(line for line in lines if line.startswith("workers: not decided: the policy is not"))
    ]
    assert "kube-system" in result.stdout


def test_a_profile_switch_names_the_profile_and_its_end(
    operator: str, kube: KubeCluster, kube_api: Any, namespace: str, redis_server: RedisServer
) -> None:
    prepare(kube_api, namespace, redis_server.url)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    end = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=30)
    burst = {
        "name": "burst",
        "fixedDate": {
            "start": start.strftime("%Y-%m-%dT%H:%M:%S"),
            "end": end.strftime("%Y-%m-%dT%H:%M:%S"),
        },
        "capacity": {"minimum": 1, "maximum": 4, "default": 2},
    }
    apply(kube, manifest(namespace, f"jobs:{namespace}", profiles=[{"name": "quiet"}, burst]))
    decided(kube_api, namespace, lambda g: g["lastDecision"]["profile"] == "burst")
    during = explain_json(kube, namespace)["groups"][0]
    assert during["profile"]["name"] == "burst"
    assert during["profile"]["until"] == end.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert during["replicas"]["minimum"] == 1
    assert during["recent"][-1]["what"] == "Wake"
    assert "raised to the minimum 1" in during["recent"][-1]["message"]
    assert during["next"]["cause"] == "profile burst ends"
    decided(kube_api, namespace, lambda g: g["lastDecision"]["profile"] == "quiet")
    after = explain_json(kube, namespace)["groups"][0]
    assert after["profile"]["name"] == "quiet"
    assert after["profile"]["sentence"] == "profile quiet: no scheduled profile is in force"
    assert after["state"] == "awake"
    assert after["activation"]["state"] == "idle"


def test_an_unknown_policy_and_one_without_a_status_get_one_clear_line(
    operator: str, kube: KubeCluster, kube_api: Any, namespace: str, redis_server: RedisServer
) -> None:
    missing = explain(kube, namespace, "nope")
    assert missing.returncode == 1
    assert missing.stdout == (
        f"ScalingPolicy {namespace}/nope: no ScalingPolicy nope in namespace {namespace} "
        f"(kubectl get scalingpolicies -n {namespace} lists them)\n"
    )
    unwatched = new_namespace(kube_api, "unwatched")  # the operator serves ex-* only
    prepare(kube_api, unwatched, redis_server.url)
    apply(kube, manifest(unwatched, "jobs"))
    out = explain(kube, unwatched, "queue-workers").stdout
    assert "no status yet: the operator has not served this policy" in out
    assert "workers: not decided yet" in out
