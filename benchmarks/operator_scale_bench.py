"""Operator cost per cycle with many groups: CPU seconds and RSS of the operator process.

Run: .venv/bin/python benchmarks/operator_scale_bench.py --groups 100 1000 [--cycles 3]

Each size: `groups / 10` policies of 10 Deployment groups each in one namespace, driven by one
Redis list each (empty: every group asleep, the steady state of a scale-to-zero fleet), polled
every 15 s. The operator's CPU time (utime + stime from /proc) and RSS are read over `cycles`
polling intervals once every group has a status.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml
from kubernetes import client as k8s
from kubernetes.config import new_client_from_config

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from testground.kube import create_secret, create_worker_deployment, start_cluster  # noqa: E402
from testground.process import free_port, stop_child, wait_for  # noqa: E402
from testground.redis_server import RedisServer  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def policy(namespace: str, index: int, groups: int) -> dict[str, object]:
    return {
        "apiVersion": "autozero.dev/v1alpha1",
        "kind": "ScalingPolicy",
        "metadata": {"name": f"fleet-{index}", "namespace": namespace},
        "spec": {
            "pollingInterval": "15s",
            "metrics": [
                {
                    "name": "backlog",
                    "redis": {
                        "urlFrom": {"secretKeyRef": {"name": "queue", "key": "url"}},
                        "key": f"jobs:{index}",
                        "type": "list",
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
                    "activation": {"metric": "backlog", "idleFor": "1m"},
                }
                for n in range(groups)
            ],
        },
    }


def decisions_made(url: str) -> float:
    """Every decision the operator made so far (all groups), from its /metrics."""
    with urllib.request.urlopen(url, timeout=30) as response:
        text = response.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("autozero_decisions_total{")
    )


def measure(size: int, cycles: int) -> tuple[float, float, float]:
    cluster = start_cluster(Path(tempfile.mkdtemp(prefix="autozero-scale-")))
    server = RedisServer()
    server.start()
    operator = None
    try:
        api = new_client_from_config(config_file=str(cluster.kubeconfig))
        core = k8s.CoreV1Api(api)
        cluster.kubectl_run("apply", "-f", str(ROOT / "crds" / "scalingpolicies.autozero.dev.yaml"))
        cluster.wait_established("scalingpolicies.autozero.dev")
        namespace = "fleet"
        core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=namespace)))
        create_secret(api, namespace, "queue", {"url": server.url})
        per_policy = 10 if size >= 10 else size
        policies = size // per_policy
        for p in range(policies):
            for n in range(per_policy):
                create_worker_deployment(api, namespace, f"w-{p}-{n}")
        manifests = [policy(namespace, p, per_policy) for p in range(policies)]
        cluster.kubectl_run("apply", "-f", "-", input_text=yaml.safe_dump_all(manifests))
        port = free_port()
        metrics_url = f"http://127.0.0.1:{port}/metrics"
        operator = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "autozero.cli",
                "operator",
                "--kubeconfig",
                str(cluster.kubeconfig),
                "--metrics-port",
                str(port),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        custom = k8s.CustomObjectsApi(api)

        def all_reported() -> bool:
            items = custom.list_namespaced_custom_object(
                "autozero.dev", "v1alpha1", namespace, "scalingpolicies"
            )["items"]
            return all((i.get("status") or {}).get("groups") for i in items)

        wait_for(all_reported, timeout=1800, interval=5)
        start_cpu, start_decisions = cpu_seconds(operator.pid), decisions_made(metrics_url)
        time.sleep(15 * cycles)
        per_cycle = (cpu_seconds(operator.pid) - start_cpu) / cycles
        # Evaluations per group per 15 s: 1.0 when the operator keeps up with pollingInterval.
        kept_up = (decisions_made(metrics_url) - start_decisions) / cycles / size
        return per_cycle, rss_mib(operator.pid), kept_up
    finally:
        if operator is not None:
            stop_child(operator)
        server.stop()
        cluster.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--groups", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--cycles", type=int, default=3)
    args = parser.parse_args()
    for size in args.groups:
        cpu, rss, kept_up = measure(size, args.cycles)
        print(
            f"{size:>6} groups: {cpu:.2f} CPU-seconds per 15 s cycle "
            f"({100 * cpu / 15:.0f} % of one core), RSS {rss:.0f} MiB, "
            f"{kept_up:.2f} evaluations per group per 15 s",
            flush=True,
        )


if __name__ == "__main__":
    main()
