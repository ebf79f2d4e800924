"""KEDA's operator as a process beside the test apiserver, for the KEDA comparison benchmark only.

Built from KEDA's Go module by `scripts/build-go-tools.sh --keda` (never by `make test`). Run
outside a cluster, only KEDA's own activation loop works (a ScaledObject's target 0 <-> 1 and
back after `cooldownPeriod`): 1 -> N goes through an HPA fed by KEDA's metrics adapter, an
APIService the test ground cannot route to.
"""

from __future__ import annotations

import os
import shutil
import urllib.request
from pathlib import Path

from testground.kube import KubeCluster
from testground.process import ManagedProcess, free_port
from testground.tools import keda_tools

NAMESPACE = (
    "keda"  # where KEDA keeps its own objects (POD_NAMESPACE, KEDA_CLUSTER_OBJECT_NAMESPACE)
)


def install_keda_crds(cluster: KubeCluster) -> None:
    """KEDA's CRDs from the same module version (server-side: the ScaledJob CRD is too large for
    the last-applied annotation of a client-side apply)."""
    cluster.kubectl_run("apply", "--server-side", "-f", str(keda_tools().crds))
    for crd in ("scaledobjects.keda.sh", "triggerauthentications.keda.sh"):
        cluster.wait_established(crd)


class KedaOperator:
    """keda-operator, authenticated by `kubeconfig` (give it its own user to tell its requests
    apart in the audit log), watching every namespace."""

    def __init__(self, cluster: KubeCluster, kubeconfig: Path, workdir: Path) -> None:
        self.cluster = cluster
        self.workdir = workdir
        self.health_port = free_port()
        self.metrics_port = free_port()
        certs = workdir / "certs"
        certs.mkdir(parents=True, exist_ok=True)
        # Its gRPC metrics service wants a serving pair even though no adapter will connect.
        pair = cluster.ca.issue("keda-serving", common_name="keda-operator", server=True)
        shutil.copy(cluster.ca.cert_path, certs / "ca.crt")
        shutil.copy(pair.cert, certs / "tls.crt")
        shutil.copy(pair.key, certs / "tls.key")
        env = {
            **os.environ,
            "KUBECONFIG": str(kubeconfig),
            "POD_NAMESPACE": NAMESPACE,
            "KEDA_CLUSTER_OBJECT_NAMESPACE": NAMESPACE,
            "WATCH_NAMESPACE": "",
        }
        self.process = ManagedProcess(
            "keda-operator",
            [
                str(keda_tools().operator),
                "--leader-elect=false",
                "--enable-cert-rotation=false",
                "--enable-webhook-patching=false",
                "--enable-apiservice-patching=false",
                f"--metrics-bind-address=127.0.0.1:{self.metrics_port}",
                f"--health-probe-bind-address=127.0.0.1:{self.health_port}",
                "--metrics-service-bind-address=127.0.0.1:0",
                f"--cert-dir={certs}",
            ],
            workdir=workdir,
            env=env,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def start(self, timeout: float = 120) -> float:
        """Create KEDA's namespace if needed, start the operator, wait for its /readyz."""
        namespace = self.cluster.kubectl_run(
            "create", "namespace", NAMESPACE, "--dry-run=client", "-o", "yaml"
        ).stdout
        self.cluster.kubectl_run("apply", "-f", "-", input_text=namespace)
        self.process.start()
        return self.process.wait_ready(self._ready, timeout=timeout)

    def _ready(self) -> bool:
        url = f"http://127.0.0.1:{self.health_port}/readyz"
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            return str(response.read().decode())

    def stop(self) -> None:
        self.process.stop()


__all__ = ["NAMESPACE", "KedaOperator", "install_keda_crds"]
