"""A real Kubernetes control plane on loopback: etcd, kube-apiserver (RBAC on), controller-manager.

Built from Go modules by scripts/build-go-tools.sh. Pods never run (there is no kubelet), but
Deployments get ReplicaSets, `/scale` works, and RBAC is enforced, which is all autozero needs.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import subprocess
import tempfile
import threading
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from testground.pki import CertificateAuthority, CertPair, service_account_keys
from testground.process import ManagedProcess, ServerStartError, free_port, wait_for
from testground.scratch import remove_with
from testground.tools import go_tools


class KubectlError(RuntimeError):
    def __init__(self, args: tuple[str, ...], code: int, stderr: str) -> None:
        super().__init__(f"kubectl {' '.join(args)} exited {code}: {stderr.strip()}")
        self.stderr = stderr


def _https_ok(url: str, ca: Path, client: CertPair | None, expect: bytes = b"ok") -> bool:
    context = ssl.create_default_context(cafile=str(ca))
    if client is not None:
        context.load_cert_chain(str(client.cert), str(client.key))
    with urllib.request.urlopen(url, context=context, timeout=2) as response:
        return bool(response.status == 200 and response.read().strip() == expect)


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:
        return bool(response.status == 200)


class Etcd:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.client_port = free_port()
        self.peer_port = free_port()
        self.url = f"http://127.0.0.1:{self.client_port}"
        self.process = ManagedProcess(
            "etcd",
            [
                str(go_tools().etcd),
                "--name=autozero",
                f"--data-dir={workdir / 'data'}",
                f"--listen-client-urls={self.url}",
                f"--advertise-client-urls={self.url}",
                f"--listen-peer-urls=http://127.0.0.1:{self.peer_port}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{self.peer_port}",
                f"--initial-cluster=autozero=http://127.0.0.1:{self.peer_port}",
                "--unsafe-no-fsync",  # test data; fsync only slows the suite down
                "--log-level=warn",
            ],
            workdir=workdir,
        )

    def start(self) -> float:
        self.process.start()
        return self.process.wait_ready(lambda: _http_ok(f"{self.url}/health"), timeout=60)

    def stop(self) -> None:
        self.process.stop()

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(
            f"{self.url}{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            answer: dict[str, Any] = json.loads(response.read())
        return answer

    def revision(self) -> int:
        """etcd's current revision (what the apiserver hands out as resourceVersions)."""
        return int(self._post("/v3/maintenance/status", {})["header"]["revision"])

    def compact(self) -> int:
        """Compact etcd's history up to now, as the apiserver does every 5 minutes: a watch from
        an older resourceVersion that etcd must serve then gets 410 Gone. Returns the revision."""
        revision = self.revision()
        self._post("/v3/kv/compaction", {"revision": str(revision), "physical": True})
        return revision


class TcpRelay:
    """A loopback TCP relay in front of the apiserver that a test can cut and restore: a network
    outage for the clients that go through it only (TLS passes through untouched). `hang()`
    makes it an apiserver that accepts and never answers: nothing more is passed on either way,
    and new connections are accepted and left unanswered (`held` counts the requests, or parts
    of them, it swallowed)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._open = True
        self._hung = False
        self._sockets: set[socket.socket] = set()
        self.connections = 0  # accepted and relayed, over the relay's life
        self.held = 0  # what clients sent while hung (reads of theirs, each left unanswered)
        threading.Thread(target=self._accept, name="tcp-relay", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:  # the listener was closed: the relay is done
                return
            with self._lock:
                relaying = self._open
            if not relaying:
                client.close()  # cut: the client sees its connection closed at once
                continue
            if self._hung:
                with self._lock:
                    self._sockets.add(client)
                threading.Thread(target=self._hold, args=(client,), daemon=True).start()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()  # the apiserver itself is down: so is the relay
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets |= {client, upstream}
                self.connections += 1
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(
                    target=self._pump, args=(source, sink, source is client), daemon=True
                ).start()

    def _hold(self, client: socket.socket) -> None:
        """A connection made while hung: read what the client sends, answer nothing."""
        try:
            while client.recv(65536):
                with self._lock:
                    self.held += 1
        except OSError:
            pass
        finally:
            self._drop(client)

    def _pump(self, source: socket.socket, sink: socket.socket, from_client: bool) -> None:
        try:
            while data := source.recv(65536):
                if self._hung:  # swallowed: the other side waits for an answer that never comes
                    if from_client:
                        with self._lock:
                            self.held += 1
                    continue
                sink.sendall(data)
        except OSError:
            pass  # either side went away (or was cut): that ends this connection, as it should
        finally:
            self._drop(source, sink)

    def _drop(self, *sockets: socket.socket) -> None:
        for sock in sockets:
            with self._lock:
                self._sockets.discard(sock)
            with contextlib.suppress(OSError):  # already shut by the other direction
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def cut(self) -> None:
        """Close every relayed connection and refuse new ones until `restore()`."""
        with self._lock:
            self._open = False
            sockets = list(self._sockets)
        self._drop(*sockets)

    def restore(self) -> None:
        with self._lock:
            self._open = True

    def hang(self) -> None:
        """From now on, pass nothing on and answer nothing (until the relay is closed)."""
        with self._lock:
            self._hung = True

    def close(self) -> None:
        self.cut()
        self._listener.close()


@dataclass
class KubeCluster:
    """A running control plane and the files a client needs to reach it as cluster admin."""

    workdir: Path
    ca: CertificateAuthority
    admin: CertPair
    sa_keys: CertPair
    port: int
    etcd: Etcd
    apiserver: ManagedProcess
    controller_manager: ManagedProcess
    kubeconfig: Path
    start_seconds: dict[str, float] = field(default_factory=dict)
    audit_log: Path | None = None  # the apiserver's JSON audit log, when started with a policy

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def kubectl(self) -> Path:
        return go_tools().kubectl

    @property
    def helm(self) -> Path:
        return go_tools().helm

    def write_kubeconfig(
        self, path: Path, *, user: str, client: CertPair | None = None, token: str | None = None
    ) -> Path:
        credentials: dict[str, str] = {}
        if client is not None:
            credentials = {"client-certificate": str(client.cert), "client-key": str(client.key)}
        if token is not None:
            credentials = {"token": token}
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "autozero-test",
                    "cluster": {
                        "server": self.server,
                        "certificate-authority": str(self.ca.cert_path),
                    },
                }
            ],
            "users": [{"name": user, "user": credentials}],
            "contexts": [{"name": user, "context": {"cluster": "autozero-test", "user": user}}],
            "current-context": user,
        }
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        return path

    def service_account_kubeconfig(self, namespace: str, name: str, path: Path) -> Path:
        """A kubeconfig that authenticates as ServiceAccount `namespace/name` (a 1 h token)."""
        token = self.kubectl_run(
            "create", "token", name, "-n", namespace, "--duration=1h"
        ).stdout.strip()
        return self.write_kubeconfig(path, user=name, token=token)

    def kubeconfig_for(self, user: str, groups: tuple[str, ...] = ()) -> Path:
        """A kubeconfig that authenticates as `user` (in `groups`) with a client certificate."""
        safe = "".join(ch if ch.isalnum() else "-" for ch in user)
        pair = self.ca.issue(f"user-{safe}", common_name=user, organizations=groups)
        return self.write_kubeconfig(self.workdir / f"kubeconfig-{safe}", user=user, client=pair)

    def kubectl_run(
        self,
        *args: str,
        kubeconfig: Path | None = None,
        input_text: str | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        """Run the pinned kubectl; with `check`, a failure raises with kubectl's own stderr."""
        result = subprocess.run(
            [str(self.kubectl), f"--kubeconfig={kubeconfig or self.kubeconfig}", *args],
            capture_output=True,
            text=True,
            input=input_text,
            check=False,
            timeout=120,
        )
        if check and result.returncode != 0:
            raise KubectlError(args, result.returncode, result.stderr or result.stdout)
        return result

    def wait_established(self, crd: str, timeout: float = 60) -> None:
        """Wait until a CRD is served (a fresh apiserver may not list it at once)."""
        jsonpath = '{.status.conditions[?(@.type=="Established")].status}'
        wait_for(
            lambda: (
                self.kubectl_run(
                    "get", "crd", crd, "-o", f"jsonpath={jsonpath}", check=False
                ).stdout.strip()
                == "True"
            ),
            timeout=timeout,
            interval=0.5,
        )

    def relayed_kubeconfig(self, relay: TcpRelay, path: Path) -> Path:
        """A cluster-admin kubeconfig that reaches the apiserver through `relay`."""
        self.write_kubeconfig(path, user="autozero-admin", client=self.admin)
        config = yaml.safe_load(path.read_text())
        config["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{relay.port}"
        path.write_text(yaml.safe_dump(config))
        return path

    def apiserver_requests(self) -> dict[tuple[str, str, str], float]:
        """The apiserver's own `apiserver_request_total`, summed by (verb, resource, subresource)
        over codes and scopes. A watch is counted when it ends."""
        from prometheus_client.parser import text_string_to_metric_families

        context = ssl.create_default_context(cafile=str(self.ca.cert_path))
        context.load_cert_chain(str(self.admin.cert), str(self.admin.key))
        with urllib.request.urlopen(f"{self.server}/metrics", context=context, timeout=10) as r:
            text = r.read().decode()
        counts: dict[tuple[str, str, str], float] = {}
        for family in text_string_to_metric_families(text):
            if family.name != "apiserver_request":
                continue
            for sample in family.samples:
                if sample.name != "apiserver_request_total":
                    continue
                labels = sample.labels
                key = (
                    labels.get("verb", ""),
                    labels.get("resource", ""),
                    labels.get("subresource", ""),
                )
                counts[key] = counts.get(key, 0.0) + sample.value
        return counts

    def restart_apiserver(self) -> float:
        """Stop and start the apiserver on the same port (for resume-after-outage tests)."""
        self.apiserver.stop()
        self.apiserver.start()
        return self._wait_apiserver()

    def _wait_apiserver(self) -> float:
        return self.apiserver.wait_ready(
            lambda: _https_ok(f"{self.server}/readyz", self.ca.cert_path, self.admin),
            timeout=120,
        )

    def stop(self) -> None:
        for process in (self.controller_manager, self.apiserver):
            process.stop()
        self.etcd.stop()


def start_cluster(
    workdir: Path | None = None,
    *,
    controller_manager: bool = True,
    authorization_mode: str = "RBAC",
    with_nodes: bool = False,
    audit_policy: str | None = None,
) -> KubeCluster:
    """Start etcd, kube-apiserver and (optionally) kube-controller-manager; return when ready.

    `with_nodes`: for a cluster with a node (testground.node): the Node authorizer, and the node
    lifecycle controller, which lifts the not-ready taint a kubelet registers its node with.
    `audit_policy`: an audit.k8s.io/v1 Policy (YAML); the apiserver then writes a JSON audit log
    (`KubeCluster.audit_log`, read with testground.audit): who sent which request, which its own
    `apiserver_request_total` cannot say."""
    if with_nodes:
        authorization_mode = "Node,RBAC"
    controllers = "*,-nodeipam,-cloud-node-lifecycle,-service-lb-controller"
    if not with_nodes:
        controllers += ",-nodelifecycle"
    tools = go_tools()
    made = workdir is None
    workdir = workdir or Path(tempfile.mkdtemp(prefix="autozero-kube-"))
    pki_dir = workdir / "pki"
    ca = CertificateAuthority(pki_dir)
    serving = ca.issue("apiserver", common_name="kube-apiserver", server=True)
    admin = ca.issue("admin", common_name="autozero-admin", organizations=("system:masters",))
    sa_keys = service_account_keys(pki_dir)

    audit_flags: list[str] = []
    audit_log = None
    if audit_policy is not None:
        (workdir / "apiserver").mkdir(parents=True, exist_ok=True)
        policy_file = workdir / "apiserver" / "audit-policy.yaml"
        policy_file.write_text(audit_policy)
        audit_log = workdir / "apiserver" / "audit.log"
        audit_flags = [
            f"--audit-policy-file={policy_file}",
            f"--audit-log-path={audit_log}",
            "--audit-log-format=json",
            "--audit-log-maxsize=0",  # no rotation: readers keep a byte offset into one file
        ]

    etcd = Etcd(workdir / "etcd")
    if made:  # with the etcd, hence the cluster, that keeps its data there
        remove_with(etcd, workdir)
    timings: dict[str, float] = {}
    timings["etcd"] = etcd.start()

    port = free_port()
    apiserver = ManagedProcess(
        "kube-apiserver",
        [
            str(tools.kube_apiserver),
            f"--etcd-servers={etcd.url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={port}",
            f"--tls-cert-file={serving.cert}",
            f"--tls-private-key-file={serving.key}",
            f"--client-ca-file={ca.cert_path}",
            f"--authorization-mode={authorization_mode}",
            f"--service-account-key-file={sa_keys.cert}",
            f"--service-account-signing-key-file={sa_keys.key}",
            "--service-account-issuer=https://kubernetes.default.svc",
            "--api-audiences=https://kubernetes.default.svc",
            # Never routed: the apiserver only needs a range to allocate Service IPs from.
            "--service-cluster-ip-range=10.96.0.0/16",
            "--allow-privileged=true",
            "--enable-priority-and-fairness=false",
            "--profiling=false",
            *audit_flags,
            "--v=1",
        ],
        workdir=workdir / "apiserver",
    )
    cluster = KubeCluster(
        workdir=workdir,
        ca=ca,
        admin=admin,
        sa_keys=sa_keys,
        port=port,
        etcd=etcd,
        apiserver=apiserver,
        controller_manager=ManagedProcess(
            "kube-controller-manager", ["true"], workdir=workdir / "controller-manager"
        ),
        kubeconfig=workdir / "kubeconfig",
        start_seconds=timings,
        audit_log=audit_log,
    )
    try:
        apiserver.start()
        timings["kube-apiserver"] = cluster._wait_apiserver()
        cluster.write_kubeconfig(cluster.kubeconfig, user="autozero-admin", client=admin)
        if controller_manager:
            cm_port = free_port()
            cluster.controller_manager = ManagedProcess(
                "kube-controller-manager",
                [
                    str(tools.kube_controller_manager),
                    f"--kubeconfig={cluster.kubeconfig}",
                    f"--authentication-kubeconfig={cluster.kubeconfig}",
                    f"--authorization-kubeconfig={cluster.kubeconfig}",
                    "--bind-address=127.0.0.1",
                    f"--secure-port={cm_port}",
                    "--leader-elect=false",
                    f"--service-account-private-key-file={sa_keys.key}",
                    f"--root-ca-file={ca.cert_path}",
                    f"--controllers={controllers}",
                    "--v=1",
                ],
                workdir=workdir / "controller-manager",
            )
            cluster.controller_manager.start()
            timings["kube-controller-manager"] = cluster.controller_manager.wait_ready(
                lambda: _insecure_ok(f"https://127.0.0.1:{cm_port}/healthz"),
                timeout=60,
            )
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _insecure_ok(url: str) -> bool:
    """The controller-manager serves a self-signed certificate; its /healthz needs no auth."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with urllib.request.urlopen(url, context=context, timeout=2) as response:
        return bool(response.status == 200 and response.read().strip() == b"ok")


def _worker_template(name: str, image: str) -> tuple[Any, Any]:
    """A workload's selector and pod template: one container, labelled `app: <name>`."""
    from kubernetes import client

    labels = {"app": name}
    return client.V1LabelSelector(match_labels=labels), client.V1PodTemplateSpec(
        metadata=client.V1ObjectMeta(labels=labels),
        spec=client.V1PodSpec(containers=[client.V1Container(name="w", image=image)]),
    )


def create_worker_deployment(
    api: Any, namespace: str, name: str = "worker", *, image: str = "w:1"
) -> None:
    """A Deployment at 0 replicas with one container, for tests and benchmarks to scale (its pods
    never run: there is no kubelet)."""
    from kubernetes import client

    selector, template = _worker_template(name, image)
    client.AppsV1Api(api).create_namespaced_deployment(
        namespace,
        client.V1Deployment(
            metadata=client.V1ObjectMeta(name=name),
            spec=client.V1DeploymentSpec(replicas=0, selector=selector, template=template),
        ),
    )


def create_worker_statefulset(
    api: Any, namespace: str, name: str = "worker", *, image: str = "w:1"
) -> None:
    """A StatefulSet at 0 replicas with one container, for tests and benchmarks to scale (its
    pods never run: there is no kubelet)."""
    from kubernetes import client

    selector, template = _worker_template(name, image)
    client.AppsV1Api(api).create_namespaced_stateful_set(
        namespace,
        client.V1StatefulSet(
            metadata=client.V1ObjectMeta(name=name),
            spec=client.V1StatefulSetSpec(
                replicas=0, service_name=name, selector=selector, template=template
            ),
        ),
    )


def worker_deployment_manifest(name: str, *, image: str = "w:1") -> dict[str, Any]:
    """The Deployment `create_worker_deployment` creates, as a plain manifest."""
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "w", "image": image}]},
            },
        },
    }


def create_worker_deployments(
    api: Any, namespace: str, names: Sequence[str], *, workers: int = 8
) -> None:
    """Many worker Deployments at once (benchmarks): plain JSON POSTs from a few threads, without
    the generated client's per-call model validation."""
    from concurrent.futures import ThreadPoolExecutor

    from kubernetes.client.exceptions import ApiException

    path = f"/apis/apps/v1/namespaces/{namespace}/deployments"

    def create(name: str) -> None:
        request = api.param_serialize(
            "POST",
            path,
            body=worker_deployment_manifest(name),
            header_params={"Content-Type": "application/json", "Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        answer = api.call_api(*request, _request_timeout=60)
        data = answer.read()
        if answer.status != 201:
            raise ApiException(status=answer.status, reason=data.decode(errors="replace"))

    with ThreadPoolExecutor(workers) as pool:
        for _ in pool.map(create, names):
            pass


def create_secret(api: Any, namespace: str, name: str, data: dict[str, str]) -> None:
    """A Secret holding `data` (plain strings; encoded here)."""
    import base64

    from kubernetes import client

    encoded: dict[str, bytes | str] = {
        k: base64.b64encode(v.encode()).decode() for k, v in data.items()
    }
    client.CoreV1Api(api).create_namespaced_secret(
        namespace, client.V1Secret(metadata=client.V1ObjectMeta(name=name), data=encoded)
    )


__all__ = [
    "WORKER_CRD",
    "Etcd",
    "KubeCluster",
    "KubectlError",
    "ServerStartError",
    "TcpRelay",
    "apply_worker_crd",
    "create_secret",
    "create_worker_deployment",
    "create_worker_deployments",
    "create_worker_object",
    "create_worker_statefulset",
    "start_cluster",
    "worker_deployment_manifest",
    "worker_object_replicas",
]


#: A CRD with a /scale subresource, as users' own operators have (Argo Rollouts, say).
WORKER_CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: workers.test.autozero.dev}
spec:
  group: test.autozero.dev
  scope: Namespaced
  names: {kind: Worker, plural: workers, singular: worker}
  versions:
    - name: v1
      served: true
      storage: true
      subresources:
        scale: {specReplicasPath: .spec.replicas, statusReplicasPath: .status.replicas}
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec: {type: object, properties: {replicas: {type: integer}}}
            status: {type: object, properties: {replicas: {type: integer}}}
"""


def apply_worker_crd(kube: KubeCluster) -> None:
    """The `Worker` CRD (test.autozero.dev/v1), established."""
    kube.kubectl_run("apply", "-f", "-", input_text=WORKER_CRD)
    kube.wait_established("workers.test.autozero.dev")


def create_worker_object(kube: KubeCluster, namespace: str, name: str = "worker") -> None:
    """A `Worker` with 0 replicas: a scale target that is not a built-in workload."""
    manifest = (
        "apiVersion: test.autozero.dev/v1\nkind: Worker\n"
        f"metadata: {{name: {name}, namespace: {namespace}}}\nspec: {{replicas: 0}}\n"
    )
    kube.kubectl_run("apply", "-f", "-", input_text=manifest)


def worker_object_replicas(api: Any, namespace: str, name: str = "worker") -> int:
    from kubernetes import client

    body = client.CustomObjectsApi(api).get_namespaced_custom_object(
        "test.autozero.dev", "v1", namespace, "workers", name
    )
    assert isinstance(body, dict)
    return int((body.get("spec") or {}).get("replicas") or 0)
