"""A real Kubernetes node on loopback: containerd (with runc) and a kubelet, plus kube-scheduler.

containerd, runc and the CNI plugins are Debian's packages; the kubelet and kube-scheduler are built
from the same wrapper module as kube-apiserver (scripts/build-go-tools.sh). Everything has its own
directories and a free port on 127.0.0.1. What this machine's kind needs, and why (see the
project's notes on a real node):

- cgroup v1: the kubelet runs with `failCgroupV1: false` and the cgroupfs driver.
- No CAP_SYS_RESOURCE: containerd's `restrict_oom_score_adj`, or every sandbox fails to start.
- No registry: images are imported into containerd (testground.images), Pods use them with
  `imagePullPolicy: Never`, and image garbage collection never deletes them.
- Node readiness needs a CNI configuration: a loopback-only network (a Pod without hostNetwork
  would get nothing but its own `lo`); the tests' Pods run with `hostNetwork: true`.

`stop()` deletes every Pod first, then stops the processes and removes what they leave on the host
(testground.host), so the machine is as it was.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import yaml

from testground.host import (
    HostState,
    Leftovers,
    host_state,
    processes_named,
    remove_stale_node_cgroups,
)
from testground.images import NodeImages
from testground.kube import KubeCluster, _insecure_ok
from testground.process import ManagedProcess, ServerStartError, free_port, wait_for
from testground.tools import go_tools

NODE_NAME = "autozero-node"
#: Held (flock) by the process that runs a node, for the node's life: a second test process that
#: wants one (`make test` runs two) waits its turn instead of failing.
NODE_LOCK = Path("/run/autozero-node.lock")
NODE_WAIT = 1800.0  # seconds a node start waits for another's to stop
#: The kubelet's `evictionHard` for nodefs and imagefs (below), and what a node writes there.
EVICTION_FREE = 0.01
NODE_DISK = 2 * 1024**3
CNI_BIN = Path("/usr/lib/cni")


class NodeError(RuntimeError):
    """The node could not be set up or torn down; the message says which step."""


def _containerd_config(root: Path, state: Path, socket: Path, cni_conf: Path, pause: str) -> str:
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    return f"""version = 2
root = "{root}"
state = "{state}"

[grpc]
  address = "{socket}"

[ttrpc]
  address = "{socket}.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "{root}/opt"

[{cri}]
  sandbox_image = "{pause}"
  # Nothing on this machine may lower its oom_score_adj (no CAP_SYS_RESOURCE): without this, runc
  # fails every sandbox with "can't get final child's PID from pipe: EOF".
  restrict_oom_score_adj = true
  disable_apparmor = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

[{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[{cri}.containerd.runtimes.runc.options]
  Root = "{state}/runc"
  SystemdCgroup = false

[{cri}.cni]
  bin_dir = "{CNI_BIN}"
  conf_dir = "{cni_conf}"
"""


#: The node's only network: a Pod without hostNetwork gets its own loopback and nothing else.
LOOPBACK_CNI = {
    "cniVersion": "1.0.0",
    "name": "autozero-loopback",
    "plugins": [{"type": "loopback"}],
}


def _kubelet_config(
    *, socket: Path, port: int, healthz_port: int, ca: Path, logs: Path
) -> dict[str, object]:
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": "127.0.0.1",
        "port": port,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": healthz_port,
        "containerRuntimeEndpoint": f"unix://{socket}",
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": False},
            "x509": {"clientCAFile": str(ca)},
        },
        "authorization": {"mode": "AlwaysAllow"},
        # This machine has cgroup v1, which kubelet 1.36 refuses unless told otherwise.
        "failCgroupV1": False,
        "cgroupDriver": "cgroupfs",
        "failSwapOn": False,
        # Nothing can be pulled again: never garbage-collect an image, never evict for disk.
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {
            "memory.available": "1Mi",
            "nodefs.available": f"{EVICTION_FREE:.0%}",
            "nodefs.inodesFree": "1%",
            "imagefs.available": f"{EVICTION_FREE:.0%}",
        },
        "podLogsDir": str(logs),
        "syncFrequency": "5s",
        "fileCheckFrequency": "5s",
        "nodeStatusUpdateFrequency": "5s",
        "serializeImagePulls": False,
        "registerNode": True,
        "maxPods": 30,
    }


@dataclass
class Node:
    """A running node: containerd, a kubelet registered as `NODE_NAME`, and kube-scheduler."""

    cluster: KubeCluster
    images: NodeImages
    workdir: Path
    run_dir: Path
    socket: Path
    before: HostState
    needles: tuple[str, ...]
    containerd: ManagedProcess
    kubelet: ManagedProcess
    scheduler: ManagedProcess
    pod_logs: Path
    start_seconds: dict[str, float] = field(default_factory=dict)
    stopped: bool = False
    lock: IO[bytes] | None = None  # NODE_LOCK, held: closed (released) once the node stopped
    owns_workdir: bool = False  # made by start_node: removed once the node stopped

    def ctr(self, *args: str, timeout: float = 300) -> str:
        proc = subprocess.run(
            ["ctr", f"--address={self.socket}", "--namespace=k8s.io", *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )
        if proc.returncode != 0:
            raise NodeError(f"ctr {' '.join(args)}: {proc.stderr.strip()}")
        return proc.stdout

    def ready(self) -> bool:
        out = self.cluster.kubectl_run(
            "get",
            "node",
            NODE_NAME,
            "-o",
            'jsonpath={.status.conditions[?(@.type=="Ready")].status}',
            check=False,
        )
        return out.stdout.strip() == "True"

    def pod_log(self, namespace: str, pod_prefix: str) -> str:
        """The container logs of the Pods whose name starts with `pod_prefix` (the kubelet's
        files: there is no `kubectl logs` without a kubelet serving certificate the apiserver
        trusts)."""
        texts = []
        for directory in sorted(self.pod_logs.glob(f"{namespace}_{pod_prefix}*")):
            for log in sorted(directory.rglob("*.log")):
                texts.append(f"--- {log.relative_to(self.pod_logs)}\n{log.read_text()}")
        return "\n".join(texts)

    def stop(self) -> None:
        """Delete every Pod, stop the node's processes, and remove what they leave on the host."""
        if self.stopped:
            return
        self.stopped = True
        try:
            self._stop()
        finally:  # another node may start now (a kubelet left running is refused by name)
            if self.lock is not None:
                self.lock.close()

    def _stop(self) -> None:
        errors: list[str] = []
        if self.kubelet.running() and self.cluster.apiserver.running():
            try:
                self._delete_pods()
            except Exception as exc:  # the teardown goes on; the error is raised below
                errors.append(f"deleting the Pods: {exc}")
        for process in (self.scheduler, self.kubelet):
            process.stop()
        if self.containerd.running():
            with contextlib.suppress(NodeError):
                self._remove_containers()
        self.containerd.stop()
        try:
            Leftovers(self.before, self.needles, [self.workdir, self.run_dir]).remove()
            shutil.rmtree(self.run_dir, ignore_errors=True)
            if self.owns_workdir:  # nothing is mounted there any more (or remove() raised)
                shutil.rmtree(self.workdir, ignore_errors=True)
        except Exception as exc:
            errors.append(f"removing what the node left: {exc}")
        if errors:
            raise NodeError("; ".join(errors))

    def _delete_pods(self) -> None:
        """Every Pod, gracefully: the kubelet stops their containers and unmounts their volumes."""
        self.cluster.kubectl_run(
            "delete", "pods", "--all", "--all-namespaces", "--wait=true", "--timeout=120s"
        )

    def _remove_containers(self) -> None:
        """Whatever the kubelet left in containerd (a Pod it had no time to stop)."""
        for task in self.ctr("tasks", "list", "--quiet").split():
            with contextlib.suppress(NodeError):
                self.ctr("tasks", "kill", "--signal=SIGKILL", task)
        for container in self.ctr("containers", "list", "--quiet").split():
            with contextlib.suppress(NodeError):
                self.ctr("tasks", "delete", "--force", container)
            with contextlib.suppress(NodeError):
                self.ctr("containers", "delete", container)


def start_node(cluster: KubeCluster, images: NodeImages, workdir: Path | None = None) -> Node:
    """Start containerd, import the images, start the kubelet and kube-scheduler; return once
    the node is Ready. The cluster's apiserver must authorize with Node,RBAC."""
    lock = _one_node_at_a_time()
    try:
        return _start_node(cluster, images, lock, workdir)
    except BaseException:
        lock.close()  # a file closes once: a second close (the node's stop) does nothing
        raise


def _start_node(
    cluster: KubeCluster, images: NodeImages, lock: IO[bytes], workdir: Path | None
) -> Node:
    tools = go_tools()
    kube_dir = tools.kubectl.parent
    _enough_disk(workdir or Path(tempfile.gettempdir()))
    owns_workdir = workdir is None
    workdir = workdir or Path(tempfile.mkdtemp(prefix="autozero-node-"))
    # A unix socket path has at most 107 bytes: pytest's temporary paths can be longer.
    run_dir = Path(tempfile.mkdtemp(prefix="az-node-", dir="/run"))
    socket = run_dir / "containerd.sock"
    needles = (str(workdir), str(run_dir), "/kubepods")
    before = host_state(needles)
    timings: dict[str, float] = {}

    cni_conf = workdir / "cni"
    cni_conf.mkdir(parents=True)
    (cni_conf / "10-autozero.conflist").write_text(json.dumps(LOOPBACK_CNI))
    config = workdir / "containerd.toml"
    config.write_text(
        _containerd_config(
            workdir / "containerd", run_dir / "state", socket, cni_conf, images.pause.ref
        )
    )
    containerd = ManagedProcess(
        "containerd",
        ["containerd", f"--config={config}", "--log-level=warn"],
        workdir=workdir / "containerd-log",
    )

    pki = cluster.ca.issue(
        "kubelet", common_name=f"system:node:{NODE_NAME}", organizations=("system:nodes",)
    )
    kubeconfig = cluster.write_kubeconfig(
        workdir / "kubelet.kubeconfig", user=f"system:node:{NODE_NAME}", client=pki
    )
    healthz_port = free_port()
    pod_logs = workdir / "pod-logs"
    kubelet_config = workdir / "kubelet.yaml"
    kubelet_config.write_text(
        yaml.safe_dump(
            _kubelet_config(
                socket=socket,
                port=free_port(),
                healthz_port=healthz_port,
                ca=cluster.ca.cert_path,
                logs=pod_logs,
            )
        )
    )
    kubelet = ManagedProcess(
        "kubelet",
        [
            str(kube_dir / "kubelet"),
            f"--config={kubelet_config}",
            f"--kubeconfig={kubeconfig}",
            f"--root-dir={workdir / 'kubelet'}",
            f"--cert-dir={workdir / 'kubelet-pki'}",
            f"--hostname-override={NODE_NAME}",
            "--v=1",
        ],
        workdir=workdir / "kubelet-log",
    )
    scheduler_port = free_port()
    scheduler = ManagedProcess(
        "kube-scheduler",
        [
            str(kube_dir / "kube-scheduler"),
            f"--kubeconfig={cluster.kubeconfig}",
            f"--authentication-kubeconfig={cluster.kubeconfig}",
            f"--authorization-kubeconfig={cluster.kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={scheduler_port}",
            "--leader-elect=false",
            "--v=1",
        ],
        workdir=workdir / "scheduler-log",
    )
    node = Node(
        cluster=cluster,
        images=images,
        workdir=workdir,
        run_dir=run_dir,
        socket=socket,
        before=before,
        needles=needles,
        containerd=containerd,
        kubelet=kubelet,
        scheduler=scheduler,
        pod_logs=pod_logs,
        start_seconds=timings,
        lock=lock,
        owns_workdir=owns_workdir,
    )
    try:
        containerd.start()
        timings["containerd"] = containerd.wait_ready(lambda: node.ctr("version") != "", timeout=30)
        start = time.monotonic()
        for image in images.all():
            if image.name != "base":
                node.ctr("images", "import", f"--base-name={image.repository}", str(image.archive))
        imported = node.ctr("images", "list", "--quiet").split()
        missing = [i.ref for i in images.all() if i.name != "base" and i.ref not in imported]
        if missing:
            raise NodeError(f"containerd did not list the imported images {missing}: {imported}")
        timings["image import"] = time.monotonic() - start
        scheduler.start()
        timings["kube-scheduler"] = scheduler.wait_ready(
            lambda: _insecure_ok(f"https://127.0.0.1:{scheduler_port}/healthz"), timeout=60
        )
        start = time.monotonic()
        kubelet.start()
        kubelet.wait_ready(lambda: _healthz_ok(healthz_port), timeout=60)
        wait_for(node.ready, timeout=90, interval=0.5)
        timings["kubelet (node Ready)"] = time.monotonic() - start
    except BaseException as exc:
        log_tail = "\n".join(
            f"--- {p.name} ---\n{_tail(p.log_path)}" for p in (containerd, kubelet, scheduler)
        )
        with contextlib.suppress(Exception):
            node.stop()
        if isinstance(exc, ServerStartError | NodeError | AssertionError):
            raise ServerStartError("node", str(exc), log_tail) from exc
        raise
    return node


def loopback_chart_values(node: Node, *, metrics_port: int, health_port: int) -> list[str]:
    """`helm install` flags for the chart on this node: the chart's defaults except the image and
    the loopback settings (hostNetwork, /healthz on 127.0.0.1, free ports of the node, the
    apiserver through KUBERNETES_SERVICE_HOST/PORT since no kube-proxy routes its Service)."""
    env = [
        {"name": "KUBERNETES_SERVICE_HOST", "value": "127.0.0.1"},
        {"name": "KUBERNETES_SERVICE_PORT", "value": str(node.cluster.port)},
    ]
    image = node.images.operator
    return [
        f"--set=image.repository={image.repository}",
        f"--set=image.tag={image.tag}",
        "--set=image.pullPolicy=Never",
        "--set=hostNetwork=true",
        "--set=loopback=true",
        f"--set=metrics.port={metrics_port}",
        f"--set=health.port={health_port}",
        f"--set-json=extraEnv={json.dumps(env)}",
    ]


def _one_node_at_a_time() -> IO[bytes]:
    """Two kubelets on one machine share the kubepods cgroups, and each removes the Pods' cgroups
    it does not know: the other's Pods die. Wait for a node another test process runs (the lock
    it holds), then refuse a kubelet still running (not ours: name it); a crashed node's empty
    cgroups are removed. Returns the lock, held until the node stops."""
    lock = NODE_LOCK.open("ab")
    try:
        deadline = time.monotonic() + NODE_WAIT
        while True:
            try:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ServerStartError(
                        "node", f"another node held {NODE_LOCK} for {NODE_WAIT:.0f} s"
                    ) from None
                time.sleep(0.5)
        kubelets = processes_named("kubelet")
        if kubelets:
            pid, cmdline = next(iter(kubelets.items()))
            raise ServerStartError(
                "node",
                f"a kubelet already runs on this machine (pid {pid}: {cmdline[:200]}); two "
                "kubelets kill each other's Pods: stop it first",
            )
        try:
            remove_stale_node_cgroups()
        except OSError as exc:
            raise ServerStartError(
                "node", f"cannot remove an earlier node's cgroups: {exc}"
            ) from exc
    except BaseException:
        lock.close()
        raise
    return lock


def _enough_disk(directory: Path) -> None:
    """Refuse a start the kubelet would undo: below `EVICTION_FREE` of its disk free it reports
    DiskPressure and evicts every Pod, and Pods then never start (a Helm install times out, a
    Deployment stays at 0 ready) with no word of why. The node needs `NODE_DISK` for its images."""
    while not directory.exists():
        directory = directory.parent
    usage = shutil.disk_usage(directory)
    needed = usage.total * EVICTION_FREE + NODE_DISK
    if usage.free < needed:
        gib = 1024**3
        raise ServerStartError(
            "node",
            f"{usage.free / gib:.1f} GiB free on the disk of {directory}: a node needs "
            f"{needed / gib:.1f} GiB ({NODE_DISK / gib:.0f} GiB for its images, and the kubelet "
            f"evicts every Pod below {EVICTION_FREE:.0%} free); free some space first",
        )


def _healthz_ok(port: int) -> bool:
    """The kubelet's plain-HTTP /healthz on 127.0.0.1."""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
        return bool(response.status == 200)


def _tail(path: Path) -> str:
    from testground.process import tail

    return tail(path, 15)
