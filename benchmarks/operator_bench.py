"""End-to-end wake latency of the operator: LPUSH -> the Deployment's scale written, with push
(keyspace notifications) and with polling only. Real kube-apiserver, Redis and operator process.

Run: .venv/bin/python benchmarks/operator_bench.py [--trials 5] [--polling 15s]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis
import yaml
from kubernetes import client as k8s
from kubernetes.config import new_client_from_config

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from testground.kube import create_secret, create_worker_deployment, start_cluster  # noqa: E402
from testground.process import free_port, stop_child, wait_for  # noqa: E402
from testground.redis_server import RedisServer  # noqa: E402


def policy(namespace: str, polling: str, push: bool) -> str:
    return f"""
apiVersion: autozero.dev/v1alpha1
kind: ScalingPolicy
metadata: {{name: bench, namespace: {namespace}}}
spec:
  pollingInterval: {polling}
  metrics:
    - name: backlog
      redis:
        urlFrom: {{secretKeyRef: {{name: queue, key: url}}}}
        key: jobs
        configureNotifications: {str(push).lower()}
  groups:
    - name: workers
      target: {{kubernetes: {{apiVersion: apps/v1, kind: Deployment, name: worker}}}}
      capacity: {{minimum: 0, maximum: 2, default: 1}}
      activation: {{metric: backlog, idleFor: 1s}}
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--polling", default="15s")
    args = parser.parse_args()
    cluster = start_cluster(Path(tempfile.mkdtemp(prefix="autozero-bench-")))
    server = RedisServer()
    server.start()
    operator = None
    try:
        api = new_client_from_config(config_file=str(cluster.kubeconfig))
        cluster.kubectl_run("apply", "-f", str(ROOT / "crds" / "scalingpolicies.autozero.dev.yaml"))
        cluster.wait_established("scalingpolicies.autozero.dev")
        operator = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "autozero.cli",
                "operator",
                "--kubeconfig",
                str(cluster.kubeconfig),
                "--metrics-port",
                str(free_port()),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        queue = redis.Redis.from_url(server.url)
        results: dict[str, list[float]] = {}
        # Polling first: CONFIG SET for the push run turns notifications on server-wide.
        for push in (False, True):
            namespace = "bench-push" if push else "bench-poll"
            core, apps = k8s.CoreV1Api(api), k8s.AppsV1Api(api)
            core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=namespace)))
            create_secret(api, namespace, "queue", {"url": server.url})
            create_worker_deployment(api, namespace, "worker")
            cluster.kubectl_run(
                "apply", "-f", "-", input_text=policy(namespace, args.polling, push)
            )

            def replicas(ns: str = namespace, apps: k8s.AppsV1Api = apps) -> int:
                return int(apps.read_namespaced_deployment_scale("worker", ns).spec.replicas or 0)

            samples = []
            for _ in range(args.trials):
                queue.delete("jobs")
                wait_for(lambda: replicas() == 0, timeout=120, interval=0.05)
                time.sleep(1.5)  # the group settles asleep
                start = time.monotonic()
                queue.rpush("jobs", 1)
                wait_for(lambda: replicas() == 1, timeout=120, interval=0.01)
                samples.append(time.monotonic() - start)
            queue.delete("jobs")
            cluster.kubectl_run("delete", "sp", "bench", "-n", namespace)
            results["push" if push else "poll"] = samples
        for mode, samples in results.items():
            print(
                f"{mode:>4} (pollingInterval {args.polling}, {args.trials} trials): median "
                f"{statistics.median(samples):.3f}s, max {max(samples):.3f}s"
            )
        print(yaml.safe_dump({"samples": results}))
    finally:
        if operator is not None:
            stop_child(operator)
        server.stop()
        cluster.stop()


if __name__ == "__main__":
    main()
