"""`make demo DEMO_ARGS=--node`: the demo with the operator and the workers as Pods on a real node.

The same MRQ queue (Redis and FerretDB on loopback) and the same policy, but the group is a
Deployment of the demo's worker, and autozero is the image built from the project's Dockerfile,
installed with its Helm chart as a user would (with the test ground's loopback settings). The live
view reads the Deployment's ready Pods and the policy's Events.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from testground.demo import POLICY, QUEUE, decisions_from_events
from testground.images import build_all
from testground.kube import KubeCluster, start_cluster
from testground.node import Node, loopback_chart_values, start_node
from testground.process import free_port

CHART = Path(__file__).resolve().parents[2] / "charts" / "autozero"
NAMESPACE, DEPLOYMENT = "demo", "workers"


def _policy(redis_url: str, mongo_url: str) -> dict[str, Any]:
    """The demo's policy, its group a Deployment instead of a managed instance group."""
    manifest: dict[str, Any] = yaml.safe_load(
        POLICY.replace("REDIS_URL", redis_url).replace("MONGO_URL", mongo_url)
    )
    manifest["spec"]["groups"][0]["target"] = {
        "kubernetes": {"apiVersion": "apps/v1", "kind": "Deployment", "name": DEPLOYMENT}
    }
    return manifest


def _workers(node: Node, redis_url: str, mongo_url: str, job_seconds: float) -> dict[str, Any]:
    env = {
        "DEMO_QUEUE": QUEUE,
        "DEMO_JOB_SECONDS": str(job_seconds),
        "DEMO_REDIS_URL": redis_url,
        "DEMO_MONGO_URL": mongo_url,
    }
    labels = {"app": DEPLOYMENT}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": DEPLOYMENT, "namespace": NAMESPACE},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "hostNetwork": True,  # Redis and FerretDB are on the machine's loopback
                    "containers": [
                        {
                            "name": "worker",
                            "image": node.images.worker.ref,
                            "imagePullPolicy": "Never",
                            "command": ["python", "-m", "demo_worker"],
                            "env": [
                                *({"name": k, "value": v} for k, v in env.items()),
                                {
                                    "name": "POD_NAME",
                                    "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
                                },
                            ],
                        }
                    ],
                },
            },
        },
    }


class NodeDemo:
    """The demo's driver on a node: start() installs everything, observe() reads the Deployment."""

    def __init__(self, redis_url: str, mongo_url: str, job_seconds: float) -> None:
        print("[demo] building the images (cached by their inputs) ...", flush=True)
        images = build_all()
        print(
            "[demo] starting etcd, kube-apiserver, kube-controller-manager, kube-scheduler and a "
            "node (containerd, kubelet) ...",
            flush=True,
        )
        self.kube: KubeCluster = start_cluster(with_nodes=True)
        try:
            self.node = start_node(self.kube, images)
        except BaseException:
            self.kube.stop()
            raise
        self.redis_url, self.mongo_url, self.job_seconds = redis_url, mongo_url, job_seconds
        self.api: Any = None

    def start(self) -> None:
        from kubernetes import config

        kube = self.kube
        values = loopback_chart_values(self.node, metrics_port=free_port(), health_port=free_port())
        # The namespace first: with a literal watchNamespaces the chart puts a Role in it.
        kube.kubectl_run("create", "namespace", NAMESPACE)
        print("[demo] helm install autozero (the image built from the Dockerfile) ...", flush=True)
        installed = subprocess.run(
            [str(kube.helm), f"--kubeconfig={kube.kubeconfig}", "install", "autozero", str(CHART),
             "--namespace=autozero", "--create-namespace", f"--set=watchNamespaces={{{NAMESPACE}}}",
             "--wait", "--timeout=180s", *values],
            check=False, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        if installed.returncode != 0:
            raise RuntimeError(
                f"helm install failed: {installed.stderr.strip()}\n{self._why_not_running()}"
            )
        manifests = [
            _workers(self.node, self.redis_url, self.mongo_url, self.job_seconds),
            _policy(self.redis_url, self.mongo_url),
        ]
        kube.kubectl_run("apply", "-f", "-", input_text=yaml.safe_dump_all(manifests))
        self.api = config.new_client_from_config(config_file=str(kube.kubeconfig))  # type: ignore[no-untyped-call]
        print(
            f"[demo] the operator and the workers run as Pods; kubectl --kubeconfig "
            f"{kube.kubeconfig} get pods -A",
            flush=True,
        )

    def _why_not_running(self) -> str:
        """What a Helm timeout does not say: the node's conditions (DiskPressure evicts every
        Pod), each Pod's state, and the latest Events."""
        kubectl = self.kube.kubectl_run
        conditions = "{range .items[*].status.conditions[*]}{.type}={.status} {end}"
        node = kubectl("get", "nodes", "-o", f"jsonpath={conditions}", check=False).stdout
        pods = kubectl("get", "pods", "-A", "-o", "wide", check=False).stdout
        events = kubectl("get", "events", "-A", "--sort-by=.lastTimestamp", check=False).stdout
        return "\n".join(
            [f"the node: {node.strip()}", pods.strip(), *events.strip().splitlines()[-15:]]
        )

    def observe(self) -> tuple[int, int]:
        from kubernetes import client

        deployment = client.AppsV1Api(self.api).read_namespaced_deployment(DEPLOYMENT, NAMESPACE)
        ready = deployment.status.ready_replicas if deployment.status else 0
        return int(ready or 0), int(deployment.spec.replicas or 0)

    def decisions(self) -> list[dict[str, Any]]:
        return decisions_from_events(self.api, NAMESPACE)

    def stop(self) -> None:
        try:
            self.node.stop()
        finally:
            if self.api is not None:
                self.api.close()
            self.kube.stop()
