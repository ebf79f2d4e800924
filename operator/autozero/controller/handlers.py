"""The kopf side: watch ScalingPolicies and hand them to the runtime, which serves them.

Only an event handler is used: it stores nothing on the objects (no progress or diff-base
annotations, no finalizer), so the operator never writes a policy's spec, labels, annotations or
finalizers, and GitOps tools see no drift. Deleting a policy simply stops serving it; what it
created (an HPA) is owned by the policy and garbage-collected with it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
import threading
import traceback
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kopf

from autozero.controller.cluster import PLURAL, Cluster
from autozero.controller.discovery import wait_until_served
from autozero.controller.election import ElectionConfig, start_election
from autozero.controller.members import LeaseMembers
from autozero.controller.served_schema import ServedSchema
from autozero.controller.sharded import Shards
from autozero.controller.shell import OperatorShell
from autozero.controller.warmup import warm_up
from autozero.kubeconfig import configure_default, size_the_pool, user_agent
from autozero.policy.model import API_GROUP, API_VERSION
from autozero.runtime.informer import RECONNECT_MAX
from autozero.runtime.loop import SHUTDOWN_GRACE, Runtime, RuntimeConfig
from autozero.runtime.metrics import Metrics, serve
from autozero.sharding.fence import Timings

log = logging.getLogger(__name__)

#: kopf's waits between the tries of a failed request, its watch of the policies included. Its
#: default (1, 1, 2, 3, 5, 8, 13, 21 s) brought that watch back up to 21 s after an apiserver
#: restart ended, and policy changes waited for it; these never wait longer than the informers
#: do (RECONNECT_MAX), and give up after as long as kopf's (54 s; a 429's Retry-After still wins).
KOPF_BACKOFFS = (0.5,) + (RECONNECT_MAX,) * 54


def make_registry(runtime_ref: dict[str, Any]) -> kopf.OperatorRegistry:
    """`runtime_ref` holds the Runtime, its task, and when sharded the Shards and their task:
    the Shards then stand between the watch and the Runtime."""
    registry = kopf.OperatorRegistry()

    @kopf.on.event(API_GROUP, API_VERSION, PLURAL, registry=registry)
    async def policy_event(*, event: kopf.RawEvent, body: kopf.Body, **_: Any) -> None:
        feed = runtime_ref.get("shards") or runtime_ref["runtime"]
        meta = body.get("metadata", {})
        key = (meta["namespace"], meta["name"])
        if event.get("type") == "DELETED" or meta.get("deletionTimestamp"):
            await (feed.deleted(key) if isinstance(feed, Shards) else feed.forget(key))
            return
        (feed.seen if isinstance(feed, Shards) else feed.serve)(dict(body))

    @kopf.on.cleanup(registry=registry)
    async def stop_runtime(**_: Any) -> None:
        shards = runtime_ref.get("shards")
        if shards is not None:  # hand the slots over first, while the Runtime still runs
            shards.stop()
            await runtime_ref["shards_task"]
        runtime = runtime_ref["runtime"]
        runtime.stop()
        task = runtime_ref.get("task")
        if task is not None:
            await task

    return registry


@dataclass(frozen=True)
class ShardingConfig:
    """`operator --sharding`: replicas of one group split the policies over their Leases."""

    namespace: str  # where the Leases live
    identity: str  # this replica (its pod name)
    group: str = "autozero"
    timings: Timings = field(default_factory=Timings)


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
    sharding: ShardingConfig | None = None,
    threads: int = 16,
    shutdown_grace: float = SHUTDOWN_GRACE,
) -> None:
    """Run until interrupted: `autozero operator`. In a cluster it uses its service account;
    elsewhere the kubeconfig (`--kubeconfig` or $KUBECONFIG). KubeconfigError, LivenessError or
    MetricsPortError before anything starts. On SIGTERM the passes under way get
    `shutdown_grace` seconds; then the process ends, whatever calls are still unanswered."""
    from kubernetes import client

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)  # one line per watch event
    configure_default(kubeconfig)
    size_the_pool(threads)
    if liveness is not None:
        check_liveness(liveness)
    api = client.ApiClient()  # its pool sized to the threads (size_the_pool)
    # The apiserver's audit log tells autozero's writes apart, and the replicas' from each other.
    api.user_agent = user_agent(sharding.identity if sharding is not None else None)
    config.kube_api = api
    metrics = Metrics()
    if metrics_port is not None:
        serve(metrics_port, metrics.registry)  # a bad or busy port: its one-line error first
    log.info("warmed up in %.2f s", warm_up())  # before kopf starts: before any policy's pass
    runtime_ref: dict[str, Any] = {}
    registry = make_registry(runtime_ref)
    # Every policy's blocking calls (sources, targets, status) run in these threads; the
    # default pool (CPUs + 4) would queue them behind each other on a small node.
    executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="autozero")

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
        # Before kopf resolves what it serves (once, from discovery): see controller/discovery.
        await asyncio.to_thread(wait_until_served, api, API_GROUP, API_VERSION, PLURAL)
        shell = OperatorShell(
            Cluster(api),
            default_service_account=default_service_account,
            recheck_seconds=access_recheck,
            schema=ServedSchema(api),
            served_by=sharding.identity if sharding is not None else None,
        )
        shards = None
        if sharding is not None:
            members = LeaseMembers(
                api,
                sharding.namespace,
                sharding.group,
                sharding.identity,
                lease_seconds=int(sharding.timings.lease),
            )
            shards = Shards(members, sharding.timings, metrics, Cluster(api).policies)
        fence = shards.may_serve if shards is not None else None
        runtime = Runtime(
            shell,
            config,
            metrics,
            active=election is None,
            fence=fence,
            shutdown_grace=shutdown_grace,
        )
        runtime_ref["runtime"] = runtime
        runtime_ref["task"] = asyncio.get_running_loop().create_task(runtime.run())
        if shards is not None:
            runtime_ref["shards"] = shards
            runtime_ref["shards_task"] = asyncio.get_running_loop().create_task(shards.run(runtime))
        if election is not None:
            loop = asyncio.get_running_loop()

            def lead() -> None:
                loop.call_soon_threadsafe(runtime.activate)

            start_election(election, lead)
        settings.posting.enabled = False  # our own Events, deduplicated
        settings.watching.server_timeout = 300
        settings.networking.error_backoffs = KOPF_BACKOFFS
        # kopf lists the policies in one answer by default: 3,000 policies with their statuses
        # are ~24 MiB of JSON, ~150 MiB of Python while held, in every replica (pages bound it).
        settings.watching.chunk_size = 500

    run_without_waiting(
        kopf.operator(
            registry=registry,
            clusterwide=not namespaces,
            namespaces=namespaces,
            standalone=True,
            liveness_endpoint=liveness,
        ),
        executor,
    )


def run_without_waiting(main: Any, executor: ThreadPoolExecutor) -> None:
    """`asyncio.run(main)`, except at the end: asyncio.run, and then the interpreter, wait
    without a bound for the executor's threads, and a thread in a call to an apiserver that
    accepts and never answers (its read timeout, times urllib3's retries) held a SIGTERM'd
    operator for more than a minute. The runtime has given its passes their grace by then:
    a call still unanswered is abandoned, and the process ends at once (`os._exit`, after
    flushing the logs; the write it was making is repaired by the next start)."""
    loop = asyncio.new_event_loop()
    loop.set_default_executor(executor)  # before kopf starts: its own calls use it too
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(main)
        left = asyncio.all_tasks(loop)  # as asyncio.run: what is left is cancelled
        for task in left:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        executor.shutdown(wait=False, cancel_futures=True)
        asyncio.set_event_loop(None)
        loop.close()
    # No join: the runtime gave its passes their grace already, and another library's idle pool
    # (a thread waiting for work) would hold a join to its full timeout for nothing.
    others = [t for t in threading.enumerate() if not t.daemon and t is not threading.main_thread()]
    frames = sys._current_frames()
    busy = [
        _where(t, frame)
        for t in others
        if t.is_alive() and not _idle_worker(frame := frames.get(t.ident or 0))
    ]
    if busy:
        log.warning("exiting without waiting for %d threads still in calls: %s", len(busy), busy)
    # Not the interpreter's own exit either: tearing down every module and collecting the heap
    # (hundreds of thousands of objects with many policies) is CPU the Pod's grace period
    # pays for, 16 s of it on a node at a load average of 40, and nothing in it is needed.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _where(thread: threading.Thread, frame: Any) -> str:
    """A thread's name and the call it is in (its innermost frames)."""
    stack = traceback.extract_stack(frame)[-3:] if frame is not None else []
    calls = " < ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in reversed(stack))
    return f"{thread.name} ({calls})" if calls else thread.name


def _idle_worker(frame: Any) -> bool:
    """An executor's thread waiting for work (another library's pool): the interpreter ends it
    at exit without waiting for anything."""
    return bool(
        frame is not None
        and frame.f_code.co_name == "_worker"
        and frame.f_code.co_filename.endswith(os.path.join("concurrent", "futures", "thread.py"))
    )
