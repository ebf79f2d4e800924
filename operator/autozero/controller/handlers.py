"""The kopf side: watch ScalingPolicies and hand them to the runtime, which serves them.

Only an event handler is used: it stores nothing on the objects (no progress or diff-base
annotations, no finalizer), so the operator never writes a policy's spec, labels, annotations or
finalizers, and GitOps tools see no drift. Deleting a policy simply stops serving it; what it
created (an HPA) is owned by the policy and garbage-collected with it.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kopf

from autozero.controller.cluster import PLURAL, Cluster
from autozero.controller.election import ElectionConfig, start_election
from autozero.controller.served_schema import ServedSchema
from autozero.controller.shell import OperatorShell
from autozero.kubeconfig import configure_default, size_the_pool
from autozero.policy.model import API_GROUP, API_VERSION
from autozero.runtime.loop import Runtime, RuntimeConfig
from autozero.runtime.metrics import Metrics, serve

log = logging.getLogger(__name__)


def make_registry(runtime_ref: dict[str, Any]) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()

    @kopf.on.event(API_GROUP, API_VERSION, PLURAL, registry=registry)
    async def policy_event(*, event: kopf.RawEvent, body: kopf.Body, **_: Any) -> None:
        runtime = runtime_ref["runtime"]
        meta = body.get("metadata", {})
        if event.get("type") == "DELETED" or meta.get("deletionTimestamp"):
            await runtime.forget((meta["namespace"], meta["name"]))
            return
        runtime.serve(dict(body))

    @kopf.on.cleanup(registry=registry)
    async def stop_runtime(**_: Any) -> None:
        runtime = runtime_ref["runtime"]
        runtime.stop()
        task = runtime_ref.get("task")
        if task is not None:
            await task

    return registry


class LivenessError(Exception):
    """--liveness cannot be served: not an http:// URL, or its port is taken."""


def check_liveness(endpoint: str) -> None:
    """kopf serves --liveness only once the operator runs, where a bad URL or a busy port would
    end it with a traceback; check both first, so either is one clear line."""
    parts = urllib.parse.urlsplit(endpoint)
    try:
        port = parts.port or 80
    except ValueError:
        raise LivenessError(f"--liveness {endpoint}: the port is not a number") from None
    if parts.scheme != "http":
        raise LivenessError(f"--liveness {endpoint}: must be http://HOST:PORT/PATH")
    host = parts.hostname or "127.0.0.1"
    try:
        with socket.create_server((host, port)):
            pass  # kopf binds it again a moment later (SO_REUSEADDR)
    except OSError as exc:
        raise LivenessError(
            f"--liveness {endpoint}: cannot serve it: {exc.strerror}; choose another port"
        ) from None


def run_operator(
    *,
    kubeconfig: str | None,
    metrics_port: int | None,
    namespaces: list[str],
    config: RuntimeConfig,
    default_service_account: str | None = None,
    access_recheck: float = 300.0,
    liveness: str | None = None,
    election: ElectionConfig | None = None,
    threads: int = 16,
) -> None:
    """Run until interrupted: `autozero operator`. In a cluster it uses its service account;
    elsewhere the kubeconfig (`--kubeconfig` or $KUBECONFIG). KubeconfigError, LivenessError or
    MetricsPortError before anything starts."""
    from kubernetes import client

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)  # one line per watch event
    configure_default(kubeconfig)
    size_the_pool(threads)
    if liveness is not None:
        check_liveness(liveness)
    api = client.ApiClient()
    config.kube_api = api
    metrics = Metrics()
    if metrics_port is not None:
        serve(metrics_port, metrics.registry)
    runtime_ref: dict[str, Any] = {}
    registry = make_registry(runtime_ref)

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        """kopf connects with the credentials the kubernetes client was configured with above
        (kopf's own login_via_client would reload them from the default kubeconfig path)."""
        config = client.Configuration.get_default_copy()
        header = config.get_api_key_with_prefix("BearerToken") or (
            config.get_api_key_with_prefix("authorization")
        )
        scheme, _space, token = (header or "").rpartition(" ")
        return kopf.ConnectionInfo(
            server=config.host,
            ca_path=config.ssl_ca_cert,
            insecure=not config.verify_ssl,
            scheme=scheme or ("Bearer" if token else None),
            token=token or None,
            certificate_path=config.cert_file,
            private_key_path=config.key_file,
        )

    @kopf.on.startup(registry=registry)
    async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        # Every policy's blocking calls (sources, targets, status) run in these threads; the
        # default pool (CPUs + 4) would queue them behind each other on a small node.
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(max_workers=threads, thread_name_prefix="autozero")
        )
        shell = OperatorShell(
            Cluster(api),
            default_service_account=default_service_account,
            recheck_seconds=access_recheck,
            schema=ServedSchema(api),
        )
        runtime = Runtime(shell, config, metrics, active=election is None)
        runtime_ref["runtime"] = runtime
        runtime_ref["task"] = asyncio.get_running_loop().create_task(runtime.run())
        if election is not None:
            loop = asyncio.get_running_loop()

            def lead() -> None:
                loop.call_soon_threadsafe(runtime.activate)

            start_election(election, lead)
        settings.posting.enabled = False  # our own Events, deduplicated
        settings.watching.server_timeout = 300

    asyncio.run(
        kopf.operator(
            registry=registry,
            clusterwide=not namespaces,
            namespaces=namespaces,
            standalone=True,
            liveness_endpoint=liveness,
        )
    )
