"""The operator with many asleep groups: CPU, RSS, staleness, apiserver load and push wake latency.

Run: .venv/bin/python benchmarks/operator_scale_bench.py --groups 1000 10000 \
        [--idle 60] [--trials 20] [--tree before=/path/to/an/older/checkout]

Each size: `groups / 10` policies of 10 Deployment groups each in one namespace, each policy
driven by its own Redis list (empty: every group asleep, the steady state of a scale-to-zero
fleet) with keyspace notifications on, polled every 15 s. Once every policy has a status:
- idle: over `--idle` seconds, the operator's CPU time (utime + stime from /proc), its RSS, the
  staleness of the policies (now minus `autozero_last_evaluation_timestamp_seconds`, the last
  time each was looked at: at most one interval when the operator keeps up), the decisions made
  (`autozero_decisions_total`), and the requests the apiserver served on what only the operator
  touches (the `/scale` subresource, HPAs, ScalingPolicies, Events) from its own
  `apiserver_request_total`;
- wake: `--trials` times, LPUSH on one policy's list, each trial on a different asleep policy:
  the time until the apiserver received the operator's write of its first Deployment's `/scale`
  (the `requestReceivedTimestamp` of that write in the apiserver's audit log, which logs those
  writes only: the wake as the issue defines it), and the time until a client polling that
  `/scale` every 5 ms reads 1 (the write's completion plus the reader's own round trip).
`--tree NAME=PATH` runs the same measurement with the autozero package of another checkout
(`PATH/operator` first on PYTHONPATH), one after the other in the same run: "before" and "after".
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import redis
import yaml
from kubernetes import client as k8s
from kubernetes.config import new_client_from_config

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from testground.audit import AuditLog  # noqa: E402
from testground.kube import (  # noqa: E402
    KubeCluster,
    create_secret,
    create_worker_deployments,
    start_cluster,
)
from testground.process import free_port, stop_child, wait_for  # noqa: E402
from testground.redis_server import RedisServer  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from procstats import add_tree_option, cpu_seconds, percentile, rss_mib, trees  # noqa: E402

PER_POLICY = 10
NAMESPACE = "fleet"
OPERATOR_ONLY = {  # (resource, subresource) only the operator reads or writes
    ("deployments", "scale"),
    ("horizontalpodautoscalers", ""),
    ("scalingpolicies", ""),
    ("scalingpolicies", "status"),
    ("events", ""),
}
# The operator's `/scale` writes only: the wake's end, at no cost to the rest of the apiserver.
AUDIT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived, ResponseStarted]
rules:
- level: Metadata
  verbs: [patch, update]
  resources: [{group: apps, resources: [deployments/scale]}]
- level: None
"""


def policy(index: int) -> dict[str, object]:
    return {
        "apiVersion": "autozero.dev/v1alpha1",
        "kind": "ScalingPolicy",
        "metadata": {"name": f"fleet-{index}", "namespace": NAMESPACE},
        "spec": {
            "pollingInterval": "15s",
            "metrics": [
                {
                    "name": "backlog",
                    "redis": {
                        "urlFrom": {"secretKeyRef": {"name": "queue", "key": "url"}},
                        "key": f"jobs:{index}",
                        "type": "list",
                        "configureNotifications": True,
                    },
                }
            ],
            "groups": [
                {
                    "name": f"g{n}",
                    "target": {
                        "kubernetes": {
                            "apiVersion": "apps/v1",
                            "kind": "Deployment",
                            "name": f"w-{index}-{n}",
                        }
                    },
                    "capacity": {"minimum": 0, "maximum": 3},
                    "activation": {"metric": "backlog", "idleFor": "10m"},
                }
                for n in range(PER_POLICY)
            ],
        },
    }


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=60) as response:
        return str(response.read().decode())


def samples(text: str, name: str) -> list[float]:
    return [
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith((name + "{", name + " "))
    ]


@dataclass
class Result:
    cpu_per_interval: float
    rss: float
    stalest: float
    decisions_per_group: float
    requests_per_minute: dict[str, float]
    wake: list[float]  # LPUSH to the /scale write received by the apiserver
    seen: list[float]  # LPUSH to a client reading the new count


def operator_requests(cluster: KubeCluster) -> dict[tuple[str, str, str], float]:
    return {
        key: value
        for key, value in cluster.apiserver_requests().items()
        if (key[1], key[2]) in OPERATOR_ONLY
    }


def measure(tree: Path, size: int, idle: float, trials: int) -> Result:
    cluster = start_cluster(
        Path(tempfile.mkdtemp(prefix="autozero-scale-")), audit_policy=AUDIT_POLICY
    )
    assert cluster.audit_log is not None
    server = RedisServer()
    server.start()
    operator = None
    try:
        api = new_client_from_config(config_file=str(cluster.kubeconfig))
        core = k8s.CoreV1Api(api)
        cluster.kubectl_run("apply", "-f", str(ROOT / "crds" / "scalingpolicies.autozero.dev.yaml"))
        cluster.wait_established("scalingpolicies.autozero.dev")
        core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=NAMESPACE)))
        create_secret(api, NAMESPACE, "queue", {"url": server.url})
        policies = size // PER_POLICY
        names = [f"w-{p}-{n}" for p in range(policies) for n in range(PER_POLICY)]
        create_worker_deployments(api, NAMESPACE, names)
        for start in range(0, policies, 500):
            manifests = [policy(p) for p in range(start, min(policies, start + 500))]
            cluster.kubectl_run("apply", "-f", "-", input_text=yaml.safe_dump_all(manifests))
        port = free_port()
        metrics_url = f"http://127.0.0.1:{port}/metrics"
        env = {**os.environ, "PYTHONPATH": f"{tree / 'operator'}"}
        operator = subprocess.Popen(
            [
                *(sys.executable, "-m", "autozero.cli", "operator"),
                *("--kubeconfig", str(cluster.kubeconfig), "--metrics-port", str(port)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        custom = k8s.CustomObjectsApi(api)

        def all_reported() -> bool:
            try:
                items = custom.list_namespaced_custom_object(
                    "autozero.dev", "v1alpha1", NAMESPACE, "scalingpolicies"
                )["items"]
            except k8s.ApiException as exc:  # a loaded apiserver's 504: ask again
                print(f"listing the policies: HTTP {exc.status}; asked again", file=sys.stderr)
                return False
            return all((i.get("status") or {}).get("groups") for i in items)

        wait_for(all_reported, timeout=3600, interval=5)
        time.sleep(20)  # past the first full interval after the last status
        before_requests = operator_requests(cluster)
        before_cpu = cpu_seconds(operator.pid)
        before_decisions = sum(samples(scrape(metrics_url), "autozero_decisions_total"))
        time.sleep(idle)
        after_cpu = cpu_seconds(operator.pid)
        text = scrape(metrics_url)
        now = time.time()
        after_requests = operator_requests(cluster)
        seen = samples(text, "autozero_last_evaluation_timestamp_seconds")
        stalest = max(now - t for t in seen) if seen else float("inf")
        decisions = sum(samples(text, "autozero_decisions_total")) - before_decisions
        requests = {
            "/".join(k for k in key if k): (
                after_requests.get(key, 0) - before_requests.get(key, 0)
            )
            * 60
            / idle
            for key in set(after_requests) | set(before_requests)
        }
        apps = k8s.AppsV1Api(api)
        queue = redis.Redis.from_url(server.url)
        audit = AuditLog(cluster.audit_log)
        mark = audit.mark()
        pushed: dict[str, float] = {}
        seen: list[float] = []
        for index in random.Random(7).sample(range(policies), min(trials, policies)):
            pushed[f"w-{index}-0"] = time.time()
            started = time.monotonic()
            queue.rpush(f"jobs:{index}", 1)
            wait_for(
                lambda i=index: (
                    apps.read_namespaced_deployment_scale(f"w-{i}-0", NAMESPACE).spec.replicas == 1
                ),
                timeout=120,
                interval=0.005,
            )
            seen.append(time.monotonic() - started)
        written = {
            r.name: r.received.timestamp()
            for r in sorted(audit.requests(mark), key=lambda r: r.received, reverse=True)
            if r.name in pushed and r.code is not None and r.code < 300
        }  # the first write of each (sorted newest first: the oldest stays)
        missing = set(pushed) - set(written)
        if missing:
            raise RuntimeError(f"no /scale write in the audit log for {sorted(missing)}")
        wake = [written[name] - at for name, at in pushed.items()]
        return Result(
            (after_cpu - before_cpu) * 15 / idle,
            rss_mib(operator.pid),
            stalest,
            decisions / size / (idle / 15),
            {k: v for k, v in sorted(requests.items()) if v},
            wake,
            seen,
        )
    finally:
        if operator is not None:
            stop_child(operator)
        server.stop()
        cluster.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--groups", type=int, nargs="+", default=[1000])
    parser.add_argument("--idle", type=float, default=60.0, help="seconds of idle measurement")
    parser.add_argument("--trials", type=int, default=20, help="push wakes timed")
    add_tree_option(parser, "also measure the autozero of another checkout (repeatable)")
    args = parser.parse_args()
    print(
        "| tree | groups | CPU per 15 s | share of one core | RSS | stalest policy "
        "| decisions per group per 15 s | operator requests per idle minute "
        "| push wake p50 / p99 (to the write) | (to a reader) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for size in args.groups:
        for name, tree in trees(args, ROOT):
            r = measure(tree, size, args.idle, args.trials)
            requests = ", ".join(f"{k} {v:.0f}" for k, v in r.requests_per_minute.items())
            print(
                f"| {name} | {size:,} | {r.cpu_per_interval:.2f} s "
                f"| {100 * r.cpu_per_interval / 15:.1f} % | {r.rss:.0f} MiB "
                f"| {r.stalest:.1f} s | {r.decisions_per_group:.2f} | {requests or '0'} "
                f"| {1000 * statistics.median(r.wake):.0f} / "
                f"{1000 * percentile(r.wake, 0.99):.0f} ms "
                f"| {1000 * statistics.median(r.seen):.0f} / "
                f"{1000 * percentile(r.seen, 0.99):.0f} ms |",
                flush=True,
            )


if __name__ == "__main__":
    main()
