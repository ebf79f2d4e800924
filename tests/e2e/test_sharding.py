"""Sharded replicas end to end: three `autozero operator --sharding` processes share 30 policies
on a real apiserver. Who served what is read from independent evidence: the apiserver's audit
log, by user agent (each replica names itself in it), not from the replicas' own word."""

from __future__ import annotations

import re
import signal
import subprocess
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from autozero.sharding.ring import assign, slot_of
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from support.operator import http_get, start_operator
from testground.audit import AuditedRequest, AuditLog
from testground.kube import (
    KubeCluster,
    TcpRelay,
    create_secret,
    create_worker_deployment,
    start_cluster,
)
from testground.process import free_port, wait_for
from testground.redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[2]
POLICIES = 30
LEASE = ["--lease-seconds", "6", "--renew-seconds", "4", "--retry-seconds", "1"]

AUDIT = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
    verbs: [create, update, patch, delete]
    resources:
      - {group: apps, resources: [deployments/scale]}
      - {group: autozero.dev, resources: [scalingpolicies/status]}
      - {group: coordination.k8s.io, resources: [leases]}
  - level: None
"""


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeCluster]:
    """An apiserver of its own that logs every write by the operators."""
    cluster = start_cluster(
        tmp_path_factory.mktemp("kube-shard"), controller_manager=False, audit_policy=AUDIT
    )
    try:
        cluster.kubectl_run("apply", "-f", str(ROOT / "crds" / "scalingpolicies.autozero.dev.yaml"))
        cluster.wait_established("scalingpolicies.autozero.dev")
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def api(audited: KubeCluster) -> Iterator[Any]:
    client = k8s_config.new_client_from_config(config_file=str(audited.kubeconfig))
    try:
        yield client
    finally:
        client.close()


def policy(namespace: str, n: int) -> dict[str, Any]:
    return yaml.safe_load(f"""
apiVersion: autozero.dev/v1alpha1
kind: ScalingPolicy
metadata: {{name: policy-{n}, namespace: {namespace}}}
spec:
  pollingInterval: 1s
  metrics:
    - name: backlog
      redis:
        urlFrom: {{secretKeyRef: {{name: queue, key: url}}}}
        key: jobs:{namespace}:{n}
  groups:
    - name: workers
      target: {{kubernetes: {{apiVersion: apps/v1, kind: Deployment, name: worker-{n}}}}}
      capacity: {{minimum: 0, maximum: 4, default: 2}}
      activation: {{metric: backlog, idleFor: 2s}}
""")


def fleet(cluster: KubeCluster, api: Any, redis_url: str) -> str:
    namespace = f"shard-{uuid.uuid4().hex[:6]}"
    k8s.CoreV1Api(api).create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=namespace)))
    create_secret(api, namespace, "queue", {"url": redis_url})
    for n in range(POLICIES):
        create_worker_deployment(api, namespace, f"worker-{n}")
    cluster.kubectl_run(
        "apply",
        "-f",
        "-",
        input_text=yaml.safe_dump_all(policy(namespace, n) for n in range(POLICIES)),
    )
    return namespace


def replica(
    kubeconfig: Path, namespace: str, name: str, log: Path, port: int | None = None
) -> subprocess.Popen[bytes]:
    return start_operator(
        log.open("w"),
        [
            "--kubeconfig",
            str(kubeconfig),
            "--metrics-port",
            str(port or free_port()),
            "--namespace",
            namespace,
            "--sharding",
            "--identity",
            name,
            "--lease-namespace",
            namespace,
            *LEASE,
        ],
    )


def scales(api: Any, namespace: str) -> list[int]:
    apps = k8s.AppsV1Api(api)
    return [
        int(apps.read_namespaced_deployment_scale(f"worker-{n}", namespace).spec.replicas or 0)
        for n in range(POLICIES)
    ]


def served_by(api: Any, namespace: str) -> dict[str, str]:
    found = k8s.CustomObjectsApi(api).list_namespaced_custom_object(
        "autozero.dev", "v1alpha1", namespace, "scalingpolicies"
    )
    return {
        item["metadata"]["name"]: str((item.get("status") or {}).get("servedBy", ""))
        for item in found["items"]
    }


def all_served(api: Any, namespace: str, not_by: str = "") -> dict[str, str] | None:
    """Every policy's servedBy, once each names a replica (other than `not_by`)."""
    found = served_by(api, namespace)
    return found if all(who not in ("", not_by) for who in found.values()) else None


def ring_owners(namespace: str, members: list[str]) -> dict[str, str]:
    """Each policy's replica as the ring places it among `members`: where the fleet settles."""
    owners = assign(members)
    return {f"policy-{n}": owners[slot_of((namespace, f"policy-{n}"))] for n in range(POLICIES)}


def replica_of(request: AuditedRequest) -> str | None:
    found = re.search(r"\(replica ([^)]+)\)", request.user_agent)
    return found.group(1) if found else None


def writes(requests: list[AuditedRequest], namespace: str, resource: str) -> dict[str, list[str]]:
    """Each object's successful writes by the replicas, in order: the replica of each."""
    found: dict[str, list[str]] = defaultdict(list)
    for request in sorted(requests, key=lambda r: r.received):
        who = replica_of(request)
        if request.namespace != namespace or request.resource != resource or who is None:
            continue
        if request.verb not in ("patch", "update") or request.code is None or request.code >= 300:
            continue
        found[request.name].append(who)
    return found


def writers(requests: list[AuditedRequest], namespace: str, resource: str) -> dict[str, list[str]]:
    """Each object's writers in the order of their writes (consecutive repeats collapsed)."""
    runs: dict[str, list[str]] = {}
    for name, who in writes(requests, namespace, resource).items():
        runs[name] = [w for n, w in enumerate(who) if n == 0 or who[n - 1] != w]
    return runs


def logged(
    audit: AuditLog, mark: tuple[int, Any], namespace: str, least: Callable[[int], int]
) -> list[AuditedRequest]:
    """The audit log once it holds at least `least(n)` /scale writes of each worker-n (the
    apiserver may write an event a moment after it answered): then compared exactly."""

    def enough() -> list[AuditedRequest] | None:
        requests = audit.requests(mark)
        counts = writes(requests, namespace, "apps/deployments/scale")
        done = all(len(counts.get(f"worker-{n}", [])) >= least(n) for n in range(POLICIES))
        return requests if done else None

    found: list[AuditedRequest] = wait_for(enough, timeout=30, interval=0.5)
    return found


def lease_names(api: Any, namespace: str) -> set[str]:
    items = k8s.CoordinationV1Api(api).list_namespaced_lease(namespace).items
    return {lease.metadata.name for lease in items}


def test_three_replicas_serve_each_policy_once_and_take_over_a_killed_or_stopped_one(
    audited: KubeCluster, api: Any, redis_server: RedisServer, tmp_path: Path
) -> None:
    assert audited.audit_log is not None
    audit = AuditLog(audited.audit_log)
    mark = audit.mark()
    namespace = fleet(audited, api, redis_server.url)
    queue = redis.Redis.from_url(redis_server.url)
    names = [f"replica-{n}" for n in range(3)]
    processes = {
        name: replica(audited.kubeconfig, namespace, name, tmp_path / f"{name}.log")
        for name in names
    }
    try:
        for n in range(POLICIES):
            queue.rpush(f"jobs:{namespace}:{n}", 1)
        wait_for(lambda: scales(api, namespace) == [2] * POLICIES, timeout=120, interval=1)
        owners = ring_owners(namespace, names)
        wait_for(lambda: served_by(api, namespace) == owners, timeout=60)

        # Independent evidence: each Deployment was scaled, each status written, by one replica,
        # the one the status names.
        requests = logged(audit, mark, namespace, lambda n: 1)
        scaled = writers(requests, namespace, "apps/deployments/scale")
        assert dict(scaled) == {f"worker-{n}": [owners[f"policy-{n}"]] for n in range(POLICIES)}
        statuses = writers(requests, namespace, "autozero.dev/scalingpolicies/status")
        assert dict(statuses) == {name: [owner] for name, owner in owners.items()}

        # SIGKILL one: the other two take its policies once its lease has run out.
        killed = names[0]
        processes[killed].kill()
        processes[killed].wait(timeout=10)
        # The two left settle on the ring's placement among them: the killed one's policies
        # go to them, and the others' stay put but for the few slots the load bound moves
        # (5 in 682 for this change; tests/unit/sharding/test_ring.py bounds them).
        moved = ring_owners(namespace, names[1:])
        wait_for(lambda: served_by(api, namespace) == moved, timeout=60)

        # SIGTERM another: it hands over and deletes its lease, so the last one serves them all.
        stopped = names[1]
        processes[stopped].send_signal(signal.SIGTERM)
        assert processes[stopped].wait(timeout=30) == 0
        assert f"autozero-{stopped}" not in lease_names(api, namespace)
        wait_for(
            lambda: set(served_by(api, namespace).values()) == {names[2]}, timeout=60, interval=0.5
        )
        log = (tmp_path / f"{stopped}.log").read_text()
        assert "released lease" in log

        # The last one acts on all 30: the queues empty, every group goes to sleep.
        for n in range(POLICIES):
            queue.delete(f"jobs:{namespace}:{n}")
        wait_for(lambda: scales(api, namespace) == [0] * POLICIES, timeout=120, interval=1)

        # Over the whole run, each Deployment was scaled twice (woken by its first replica, put
        # to sleep by the last): no decision was made twice, by two replicas serving it at once.
        # (A policy may go back to an earlier replica when the members change: that alone is
        # no evidence of serving twice.)
        requests = logged(audit, mark, namespace, lambda n: 2)
        scaled = writes(requests, namespace, "apps/deployments/scale")
        assert {name: (who[0], who[1:]) for name, who in scaled.items()} == {
            f"worker-{n}": (owners[f"policy-{n}"], [names[2]]) for n in range(POLICIES)
        }
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)


def test_a_rolling_restart_loses_no_decision_and_serves_no_policy_twice(
    audited: KubeCluster, api: Any, redis_server: RedisServer, tmp_path: Path
) -> None:
    """As a Deployment rolls (one new Pod up, then one old Pod stopped, three times) while half
    the queues empty: every group ends where its queue says, each emptied one with exactly one
    Sleep Event and one /scale write to sleep (the audit log): no decision lost or made twice."""
    assert audited.audit_log is not None
    audit = AuditLog(audited.audit_log)
    mark = audit.mark()
    namespace = fleet(audited, api, redis_server.url)
    queue = redis.Redis.from_url(redis_server.url)
    for n in range(POLICIES):
        queue.rpush(f"jobs:{namespace}:{n}", 1)
    old = {
        f"old-{n}": replica(audited.kubeconfig, namespace, f"old-{n}", tmp_path / f"old-{n}.log")
        for n in range(3)
    }
    new: dict[str, subprocess.Popen[bytes]] = {}
    try:
        wait_for(lambda: scales(api, namespace) == [2] * POLICIES, timeout=120, interval=1)
        wait_for(lambda: all_served(api, namespace), timeout=60)
        emptied = range(0, POLICIES, 2)
        for n in emptied:
            queue.delete(f"jobs:{namespace}:{n}")
        for n in range(3):
            name = f"new-{n}"
            new[name] = replica(audited.kubeconfig, namespace, name, tmp_path / f"{name}.log")
            wait_for(lambda name=name: name in served_by(api, namespace).values(), timeout=60)
            old[f"old-{n}"].send_signal(signal.SIGTERM)
            assert old[f"old-{n}"].wait(timeout=30) == 0
        wait_for(
            lambda: set(served_by(api, namespace).values()) <= set(new), timeout=60, interval=0.5
        )
        want = [0 if n in emptied else 2 for n in range(POLICIES)]
        wait_for(lambda: scales(api, namespace) == want, timeout=120, interval=1)

        events = k8s.CoreV1Api(api).list_namespaced_event(namespace).items
        sleeps = defaultdict(int)
        for event in events:
            if event.reason == "Sleep":
                sleeps[event.involved_object.name] += event.count or 1
        assert dict(sleeps) == {f"policy-{n}": 1 for n in emptied}
        requests = logged(audit, mark, namespace, lambda n: 2 if n in emptied else 1)
        scaled = writes(requests, namespace, "apps/deployments/scale")
        assert {name: len(who) for name, who in scaled.items()} == {
            f"worker-{n}": 2 if n in emptied else 1 for n in range(POLICIES)
        }  # one wake each, and one sleep for each emptied queue: no decision made twice
    finally:
        for process in [*old.values(), *new.values()]:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)


def test_a_replica_cut_off_from_the_apiserver_stops_acting_before_its_slots_move(
    audited: KubeCluster, api: Any, redis_server: RedisServer, tmp_path: Path
) -> None:
    namespace = fleet(audited, api, redis_server.url)
    relay = TcpRelay(int(audited.server.rsplit(":", 1)[1]))
    relayed = audited.relayed_kubeconfig(relay, tmp_path / "relayed.kubeconfig")
    cut, other = tmp_path / "cut.log", tmp_path / "other.log"
    processes = [
        replica(relayed, namespace, "replica-cut", cut),
        replica(audited.kubeconfig, namespace, "replica-other", other),
    ]
    try:
        owners = wait_for(lambda: all_served(api, namespace), timeout=90)
        assert set(owners.values()) == {"replica-cut", "replica-other"}
        cut_at = datetime.now().strftime("%Y-%m-%d %H:%M:%S,%f")[:23]  # as the logs write it
        relay.cut()
        wait_for(lambda: set(served_by(api, namespace).values()) == {"replica-other"}, timeout=60)
        fenced = _logged_at(cut, "serving none of its")
        took_over = [
            at
            for at, line in _lines(other)
            if "serving" in line and "more slots" in line and at >= cut_at
        ]
        assert took_over, other.read_text()[-2000:]
        assert fenced < min(took_over), (fenced, took_over)
        assert processes[0].poll() is None  # still running: it stopped acting, not living
    finally:
        for process in processes:
            process.kill()
            process.wait(timeout=10)
        relay.close()


def _lines(path: Path) -> list[tuple[str, str]]:
    """(timestamp, line) of a replica's log; the timestamps sort as text (one clock)."""
    return [
        (line[:23], line)
        for line in path.read_text().splitlines()
        if re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}", line)
    ]


def _logged_at(path: Path, text: str) -> str:
    found = [at for at, line in _lines(path) if text in line]
    assert found, path.read_text()[-2000:]
    return found[0]


def cached(port: int) -> tuple[float, float] | None:
    """(Deployments in the replica's informer cache, policies it serves), from its /metrics."""
    text = http_get(f"http://127.0.0.1:{port}/metrics")
    if text is None:
        return None
    found = re.search(r'^autozero_informer_objects\{kind="Deployment"\} (\S+)$', text, re.M)
    served = re.search(r"^autozero_shard_policies\{[^}]*\} (\S+)$", text, re.M)
    if found is None or served is None:
        return None
    return float(found.group(1)), float(served.group(1))


def test_each_replica_caches_only_its_share_and_a_rebalance_acts_on_fresh_entries(
    audited: KubeCluster, api: Any, redis_server: RedisServer, tmp_path: Path
) -> None:
    """Two replicas, 30 policies each naming one Deployment, and 20 Deployments nobody names:
    each replica caches only the Deployments of the policies it serves. Then one leaves: the
    other caches the Deployments it takes over, as they are now (woken by the one that left),
    not as it last saw them, and puts every group to sleep when the queues empty."""
    assert audited.audit_log is not None
    audit = AuditLog(audited.audit_log)
    mark = audit.mark()
    namespace = fleet(audited, api, redis_server.url)
    for n in range(20):
        create_worker_deployment(api, namespace, f"bystander-{n}")
    queue = redis.Redis.from_url(redis_server.url)
    ports = {name: free_port() for name in ("replica-a", "replica-b")}
    processes = {
        name: replica(audited.kubeconfig, namespace, name, tmp_path / f"{name}.log", port)
        for name, port in ports.items()
    }
    try:
        for n in range(POLICIES):
            queue.rpush(f"jobs:{namespace}:{n}", 1)
        wait_for(lambda: scales(api, namespace) == [2] * POLICIES, timeout=120, interval=1)
        owners = wait_for(lambda: all_served(api, namespace), timeout=60)
        share = {name: sum(1 for o in owners.values() if o == name) for name in ports}
        assert all(share.values()), share  # both serve some (30 policies over 1,024 slots)

        def holds_its_share(name: str) -> bool:
            found = cached(ports[name])
            return found == (share[name], share[name])

        for name in ports:  # before: each held all 50 Deployments of the namespace
            wait_for(lambda name=name: holds_its_share(name), timeout=30, interval=0.5)

        # replica-a leaves: replica-b takes its policies, their Deployments at 2 (replica-a woke
        # them; replica-b never cached them), and acts on them as they are.
        processes["replica-a"].send_signal(signal.SIGTERM)
        assert processes["replica-a"].wait(timeout=30) == 0
        wait_for(
            lambda: set(served_by(api, namespace).values()) == {"replica-b"},
            timeout=60,
            interval=0.5,
        )
        wait_for(lambda: cached(ports["replica-b"]) == (POLICIES, POLICIES), timeout=30)
        for n in range(POLICIES):
            queue.delete(f"jobs:{namespace}:{n}")
        wait_for(lambda: scales(api, namespace) == [0] * POLICIES, timeout=120, interval=1)
        requests = logged(audit, mark, namespace, lambda n: 2)
        scaled = writes(requests, namespace, "apps/deployments/scale")
        assert {name: (who[0], who[1:]) for name, who in scaled.items()} == {
            f"worker-{n}": (owners[f"policy-{n}"], ["replica-b"]) for n in range(POLICIES)
        }  # one wake by its first replica, one sleep by replica-b: nothing missed or doubled
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
