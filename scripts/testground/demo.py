"""The local demo (`make demo`): a queue fills, workers wake, scale out, drain, and go back to 0.

Real parts: Redis and FerretDB (MongoDB wire) hold an MRQ raw queue and its started jobs; the GCE
emulator runs one real worker process per instance of a managed instance group; autozero runs
standalone (`autozero run`'s loop) against all three, or with `--cluster` as the operator against a
real kube-apiserver, the policy applied as a ScalingPolicy. With `--node`, the operator and the
workers are Pods on a real node (testground.demo_node): the chart installed with helm, the workers
a Deployment. A live line per second shows the queue,
the jobs in flight, the group and autozero's last decision; a summary closes the run, and the exit
code says whether the group reached more than one worker, drained every job and went back to zero.

With `--warm`, the group has a standby pool (`target.gce.standby`): the queue fills twice; the
first wake is cold (instances boot and run their startup script), the Sleep suspends the workers
into the pool, and the second wake resumes them. The summary compares wake-to-first-job of the
two under the emulator's stated timings (WARM_TIMINGS: assumptions, not measurements of GCE).
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import pymongo
import redis
import yaml
from autozero.policy.parse import parse_policy
from autozero.standalone import StandaloneOptions, run
from gce_emulator import EmulatorServer, Settings

from testground.cli import positive
from testground.cli import run as run_command
from testground.gce import compute_client, create_mig
from testground.mongo import FerretDBServer
from testground.process import free_port, stop_child
from testground.redis_server import RedisServer

QUEUE = "demo_raw"
PROJECT, ZONE, GROUP = "demo", "local-a", "workers"
SCRIPTS = Path(__file__).resolve().parent.parent
ROOT = SCRIPTS.parent

POLICY = """
apiVersion: autozero.dev/v1alpha1
kind: ScalingPolicy
metadata: {name: demo, namespace: demo}
spec:
  pollingInterval: 1s
  metrics:
    - name: backlog
      mrq:
        queue: demo_raw
        redis: {url: "REDIS_URL", configureNotifications: true}
        mongodb: {url: "MONGO_URL"}
  groups:
    - name: workers
      target: {gce: {project: demo, zone: local-a, instanceGroupManager: workers}}
      capacity: {minimum: 0, maximum: 5, default: 1}
      activation: {metric: backlog, idleFor: 8s}
      profiles:
        - name: default
          rules:
            - {metric: backlog, operator: GreaterThan, threshold: 10, perInstance: true,
               timeGrain: 1s, timeWindow: 2s, timeAggregation: Last,
               action: {direction: Increase, value: 2, cooldown: 2s}}
            - {metric: backlog, operator: LessThan, threshold: 1, perInstance: true,
               timeGrain: 1s, timeWindow: 2s,
               action: {direction: Decrease, value: 1, cooldown: 2s}}
"""


#: The emulator's timings for `--warm`, stated assumptions: Google publishes none. A cold instance
#: boots, then its worker runs a startup script once; a resumed one goes on where it was.
WARM_TIMINGS = {
    "instanceBootSeconds": 2.0,
    "workerStartupSeconds": 3.0,
    "instanceResumeSeconds": 0.5,
    "instanceSuspendSeconds": 0.5,
}
STANDBY = "standby: {mode: Suspend, size: 2, initialDelay: 0s}"


class Lines(io.TextIOBase):
    """Collects the runner's decision lines (JSON) for the live view and the summary."""

    def __init__(self) -> None:
        self.decisions: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def write(self, text: str) -> int:
        for line in text.splitlines():
            if line.strip():
                with self.lock:
                    self.decisions.append(json.loads(line))
        return len(text)


class Standalone:
    """autozero's standalone loop in a thread; decisions from its JSON lines."""

    def __init__(self, manifest: dict[str, Any], emulator: EmulatorServer) -> None:
        self.emulator = emulator
        self.lines = Lines()
        self.stop_event = threading.Event()
        options = StandaloneOptions(gce_endpoint=emulator.api_endpoint, output="json")
        self.thread = threading.Thread(
            target=run,
            args=(manifest, parse_policy(manifest), options, self.lines),
            kwargs={"stop": self.stop_event},
            daemon=True,
        )

    def start(self) -> None:
        _create_group(self.emulator)
        print("[demo] autozero runs standalone (autozero run)", flush=True)
        self.thread.start()

    def observe(self) -> tuple[int, int]:
        return _observe_group(self.emulator)

    def decisions(self) -> list[dict[str, Any]]:
        """Every decision so far: action, before, after, message, time (ISO)."""
        with self.lines.lock:
            return [
                {
                    "action": d["action"],
                    "before": d["replicas"]["before"],
                    "after": d["replicas"]["after"],
                    "message": d["message"],
                    "time": d["time"],
                }
                for d in self.lines.decisions
            ]

    def served(self) -> bool:
        """autozero has decided the group once (its first line)."""
        with self.lines.lock:
            return bool(self.lines.decisions)

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(timeout=10)


class Cluster:
    """The operator against a real kube-apiserver; decisions from the policy's status and Events
    (what a user sees with kubectl)."""

    def __init__(self, manifest: dict[str, Any], emulator: EmulatorServer) -> None:
        from testground.kube import start_cluster

        print("[demo] starting etcd and kube-apiserver ...", flush=True)
        self.kube = start_cluster(controller_manager=False)
        self.manifest, self.emulator = manifest, emulator
        self.process: subprocess.Popen[bytes] | None = None
        self.log = (self.kube.workdir / "operator.log").open("wb")

    def observe(self) -> tuple[int, int]:
        return _observe_group(self.emulator)

    def start(self) -> None:
        from kubernetes import config

        _create_group(self.emulator)
        kube = self.kube
        kube.kubectl_run("apply", "-f", str(ROOT / "crds" / "scalingpolicies.autozero.dev.yaml"))
        kube.wait_established("scalingpolicies.autozero.dev")
        namespace = self.manifest["metadata"]["namespace"]
        kube.kubectl_run("create", "namespace", namespace)
        args = ["--kubeconfig", str(kube.kubeconfig), "--namespace", namespace]
        args += ["--metrics-port", str(free_port()), "--gce-endpoint", self.emulator.api_endpoint]
        args += ["--gce-allow", f"{namespace}={PROJECT}"]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "autozero.cli", "operator", *args],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        kube.kubectl_run("apply", "-f", "-", input_text=yaml.safe_dump(self.manifest))
        self.api = config.new_client_from_config(config_file=str(kube.kubeconfig))  # type: ignore[no-untyped-call]
        print(
            f"[demo] autozero runs as the operator; kubectl --kubeconfig {kube.kubeconfig} "
            f"describe scalingpolicy demo -n {namespace}",
            flush=True,
        )

    def decisions(self) -> list[dict[str, Any]]:
        return decisions_from_events(self.api, self.manifest["metadata"]["namespace"])

    def served(self) -> bool:
        """The operator has decided the group once (its status has a decision)."""
        from kubernetes import client

        meta = self.manifest["metadata"]
        policy: Any = client.CustomObjectsApi(self.api).get_namespaced_custom_object(
            "autozero.dev",
            "v1alpha1",
            meta["namespace"],
            "scalingpolicies",
            meta["name"],
            _request_timeout=10,
        )
        groups = (policy.get("status") or {}).get("groups") or []
        return any(g.get("lastDecision") for g in groups)

    def stop(self) -> None:
        if self.process is not None:
            stop_child(self.process)
        self.log.close()
        self.kube.stop()


def _create_group(emulator: EmulatorServer) -> None:
    compute = compute_client(emulator.api_endpoint)
    create_mig(compute, PROJECT, GROUP, zone=ZONE, template="global/instanceTemplates/worker")
    print(f"[demo] managed instance group {GROUP} created at size 0", flush=True)


def _observe_group(emulator: EmulatorServer) -> tuple[int, int]:
    """(instances running, target size) of the demo's managed instance group."""
    state = emulator.emulator.render_group(
        emulator.emulator.world.groups[(PROJECT, "zones", ZONE, GROUP)]
    )
    return int(state["currentActions"]["none"]), int(state["targetSize"])


def decisions_from_events(api: Any, namespace: str) -> list[dict[str, Any]]:
    """The operator's decisions, from the policy's Events (what a user sees with kubectl)."""
    from kubernetes import client

    events = client.CoreV1Api(api).list_namespaced_event(namespace).items
    made = []
    for event in sorted(events, key=lambda e: e.first_timestamp or datetime.now(UTC)):
        if event.involved_object.kind != "ScalingPolicy" or event.reason not in ACTIONS:
            continue
        message = str(event.message or "")
        before, after = _counts(message)
        at = event.first_timestamp or datetime.now(UTC)
        made.append(
            {
                "action": event.reason,
                "before": before,
                "after": after,
                "message": message.split(": ", 2)[-1],
                "time": at.isoformat(),
            }
        )
    return made


ACTIONS = ("Wake", "ScaleOut", "ScaleIn", "Sleep")


def _counts(message: str) -> tuple[int, int]:
    """`workers: 1 -> 3: why` -> (1, 3)."""
    counts = message.split(": ", 2)[1] if message.count(": ") >= 1 else ""
    before, _, after = counts.partition(" -> ")
    try:
        return int(before), int(after)
    except ValueError:
        return -1, -1


@dataclass
class Summary:
    enqueued: int
    processed: int = 0
    wake_latency_seconds: float | None = None
    peak_instances: int = 0
    instance_seconds: float = 0.0
    final_size: int = -1
    actions: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    warm: dict[str, Any] | None = None  # --warm: cold against warm wake, and their API calls

    @property
    def ok(self) -> bool:
        return self.peak_instances > 1 and self.processed == self.enqueued and self.final_size == 0


def main(argv: list[str] | None = None) -> int:
    """`make demo`: a failure is one line saying what failed (a server's log tail, the Pods' state
    after a Helm timeout), never a traceback; the servers stop either way."""
    return run_command(lambda: _main(argv), "demo")


def _main(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__)
    parser.add_argument("--jobs", type=positive(int), default=200, help="jobs to enqueue")
    parser.add_argument(
        "--job-seconds", type=positive(float), default=0.15, help="how long a job takes"
    )
    parser.add_argument(
        "--timeout", type=positive(float), default=180, help="seconds to wait for the drain"
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument(
        "--warm",
        action="store_true",
        help="a standby pool of suspended workers: wake twice, cold then warm, and compare",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--cluster",
        action="store_true",
        help="run autozero as the operator against a real kube-apiserver (default: standalone)",
    )
    where.add_argument(
        "--node",
        action="store_true",
        help="run the operator (installed with its Helm chart) and the workers (a Deployment) "
        "as Pods on a real node, from images built here",
    )
    args = parser.parse_args(argv)
    if args.warm and args.node:
        parser.error("--warm needs the GCE emulator's VMs: with --node the workers are Pods")
    started = time.monotonic()
    print("[demo] starting Redis, FerretDB (MongoDB wire) and the GCE emulator ...", flush=True)
    redis_server, mongo = RedisServer(), FerretDBServer()
    redis_server.start()
    mongo.start()
    warm = WARM_TIMINGS if args.warm else {}
    emulator = EmulatorServer(
        settings=Settings(
            operation_seconds=0.3,
            instance_boot_seconds=warm.get("instanceBootSeconds", 1.0),
            instance_stop_seconds=0.5,
            instance_resume_seconds=warm.get("instanceResumeSeconds", 0.3),
            instance_suspend_seconds=warm.get("instanceSuspendSeconds", 0.3),
            instance_command=[sys.executable, "-m", "testground.demo_worker"],
            instance_env={
                "PYTHONPATH": str(SCRIPTS),
                "DEMO_QUEUE": QUEUE,
                "DEMO_JOB_SECONDS": str(args.job_seconds),
                "DEMO_REDIS_URL": redis_server.url,
                "DEMO_MONGO_URL": mongo.url,
                "DEMO_STARTUP_SECONDS": str(warm.get("workerStartupSeconds", 0)),
            },
        )
    ).start()
    policy = POLICY.replace("REDIS_URL", redis_server.url).replace("MONGO_URL", mongo.url)
    if args.warm:
        policy = policy.replace(
            "instanceGroupManager: workers}", f"instanceGroupManager: workers, {STANDBY}}}"
        )
    manifest = yaml.safe_load(policy)
    driver: Driver | None = None
    try:
        if args.node:
            from testground.demo_node import NodeDemo

            driver = NodeDemo(redis_server.url, mongo.url, args.job_seconds)
        elif args.cluster:
            driver = Cluster(manifest, emulator)
        else:
            driver = Standalone(manifest, emulator)
        if args.warm:
            assert isinstance(driver, Standalone | Cluster)  # --node is refused with --warm
            summary = _run_warm(args, redis_server, mongo, driver, emulator)
        else:
            summary = _run(args, redis_server, mongo, driver)
    finally:
        if driver is not None:
            driver.stop()
        emulator.stop()
        mongo.stop()
        redis_server.stop()
    summary.seconds = time.monotonic() - started
    _print_summary(summary, args.json)
    return 0 if summary.ok else 1


class Driver(Protocol):
    """Where autozero runs, and how the demo sees the group and autozero's decisions."""

    def start(self) -> None: ...
    def observe(self) -> tuple[int, int]: ...  # (workers running, target size)
    def decisions(self) -> list[dict[str, Any]]: ...
    def stop(self) -> None: ...


def _run(
    args: argparse.Namespace, redis_server: RedisServer, mongo: FerretDBServer, driver: Driver
) -> Summary:
    driver.start()
    store = redis.Redis.from_url(redis_server.url)
    jobs: Any = pymongo.MongoClient(mongo.url).get_default_database()["mrq_jobs"]
    summary = Summary(enqueued=args.jobs)
    time.sleep(2)
    print(
        f"[demo] enqueuing {args.jobs} jobs of {args.job_seconds}s on MRQ raw queue {QUEUE}",
        flush=True,
    )
    enqueued_at = datetime.now(UTC)
    store.rpush(f"mrq:q:{QUEUE}", *[f"job-{n}" for n in range(args.jobs)])
    deadline = time.monotonic() + args.timeout
    print(f"{'t':>5}  {'queue':>5}  {'in flight':>9}  {'group':>11}  last decision", flush=True)
    last_tick = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(1.0)
        now = time.monotonic()
        depth = int(store.llen(f"mrq:q:{QUEUE}"))
        in_flight = jobs.count_documents({"status": "started"})
        running, target = driver.observe()
        summary.peak_instances = max(summary.peak_instances, running)
        summary.instance_seconds += running * (now - last_tick)
        last_tick = now
        made = driver.decisions()
        moves = [d for d in made if d["action"] != "Hold"]
        shown = moves[-1] if moves else (made[-1] if made else None)
        decision = (
            f"{shown['action']} {shown['before']}->{shown['after']}: {shown['message']}"
            if shown
            else "-"
        )
        elapsed = (datetime.now(UTC) - enqueued_at).total_seconds()
        print(
            f"{elapsed:5.0f}  {depth:5d}  {in_flight:9d}  "
            f"{running:>2} running/{target:<2}  {decision[:90]}",
            flush=True,
        )
        processed = int(store.get("demo:processed") or 0)
        if processed >= args.jobs and target == 0 and running == 0:
            break
    summary.processed = int(store.get("demo:processed") or 0)
    summary.final_size = driver.observe()[1]
    made = _reported(driver, summary.final_size)
    for decision_made in made:
        action = decision_made["action"]
        summary.actions[action] = summary.actions.get(action, 0) + 1
    wakes = [d for d in made if d["action"] == "Wake"]
    if wakes:
        woke = datetime.fromisoformat(wakes[0]["time"].replace("Z", "+00:00"))
        summary.wake_latency_seconds = max(0.0, (woke - enqueued_at).total_seconds())
    return summary


@dataclass
class Round:
    """One fill of the queue in `--warm`: from the enqueue to the first job a worker started."""

    name: str
    wake_to_first_job: float | None = None
    workers: set[str] = field(default_factory=set)  # instance:pid of the workers that ran jobs
    calls: dict[str, int] = field(default_factory=dict)  # Compute API calls, enqueue -> asleep


def _run_warm(
    args: argparse.Namespace,
    redis_server: RedisServer,
    mongo: FerretDBServer,
    driver: Standalone | Cluster,
    emulator: EmulatorServer,
) -> Summary:
    """Two fills of the queue: a cold wake, a Sleep into the pool, a warm wake from it."""
    driver.start()
    store = redis.Redis.from_url(redis_server.url)
    jobs: Any = pymongo.MongoClient(mongo.url).get_default_database()["mrq_jobs"]
    summary = Summary(enqueued=2 * args.jobs)
    deadline = time.monotonic() + args.timeout
    rounds = [Round("cold"), Round("warm")]
    # The cold round starts once autozero serves the group, so it does not count autozero's own
    # start (the operator's takes seconds): both rounds measure the wake alone.
    wait_served(driver, timeout=60)
    for n, round_ in enumerate(rounds):
        emulator.control("requests", method="DELETE")
        print(f"[demo] {round_.name} wake: enqueuing {args.jobs} jobs", flush=True)
        enqueued = time.time()
        store.rpush(f"mrq:q:{QUEUE}", *[f"{round_.name}-{k}" for k in range(args.jobs)])
        done = (n + 1) * args.jobs
        while time.monotonic() < deadline:
            time.sleep(0.2)
            running, target = driver.observe()
            summary.peak_instances = max(summary.peak_instances, running)
            processed = int(store.get("demo:processed") or 0)
            if processed >= done and target == 0 and running == 0 and _pool_settled(emulator):
                break
        mine = list(jobs.find({"params": {"$regex": f"^b?'?{round_.name}-"}}))
        if mine:
            round_.wake_to_first_job = round(min(j["startedAt"] for j in mine) - enqueued, 2)
        round_.workers = {f"{j['worker']}:{j['pid']}" for j in mine}
        for entry in emulator.control("requests", method="GET")["requests"]:
            api = str(entry["api"])
            round_.calls[api] = round_.calls.get(api, 0) + 1
        print(
            f"[demo] {round_.name}: first job {round_.wake_to_first_job}s after the enqueue; "
            f"{len(round_.workers)} workers; asleep, pool {_pool(emulator)} suspended",
            flush=True,
        )
    summary.processed = int(store.get("demo:processed") or 0)
    summary.final_size = driver.observe()[1]
    for made in _reported(driver, summary.final_size):
        summary.actions[made["action"]] = summary.actions.get(made["action"], 0) + 1
    summary.warm = {
        "timings": WARM_TIMINGS,
        "wakeToFirstJobSeconds": {r.name: r.wake_to_first_job for r in rounds},
        "resumedWorkers": sorted(rounds[1].workers & rounds[0].workers),
        "apiCalls": {r.name: r.calls for r in rounds},
    }
    summary.wake_latency_seconds = rounds[0].wake_to_first_job
    return summary


def wait_served(driver: Standalone | Cluster, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not driver.served():
        if time.monotonic() > deadline:
            raise RuntimeError(f"autozero did not decide the group within {timeout:g} s")
        time.sleep(0.2)


def _pool(emulator: EmulatorServer) -> int:
    group = emulator.emulator.world.groups[(PROJECT, "zones", ZONE, GROUP)]
    return sum(1 for i in group.instances if i.status == "SUSPENDED")


def _pool_settled(emulator: EmulatorServer) -> bool:
    world = emulator.emulator.world
    with world.lock:
        return world.is_stable(world.groups[(PROJECT, "zones", ZONE, GROUP)])


def _reported(driver: Driver, size: int) -> list[dict[str, Any]]:
    """The decisions, once the one that brought the group to `size` is among them: it is
    reported (a JSON line, an Event) just after the resize the live view saw."""
    deadline = time.monotonic() + 15
    while True:
        made = driver.decisions()
        moves = [d for d in made if d["action"] != "Hold"]
        if (moves and moves[-1]["after"] == size) or time.monotonic() > deadline:
            return made
        time.sleep(0.2)


def _print_summary(summary: Summary, as_json: bool) -> None:
    data = {
        "ok": summary.ok,
        "enqueued": summary.enqueued,
        "processed": summary.processed,
        "wakeLatencySeconds": summary.wake_latency_seconds,
        "peakInstances": summary.peak_instances,
        "instanceSeconds": round(summary.instance_seconds, 1),
        "finalSize": summary.final_size,
        "actions": summary.actions,
        "seconds": round(summary.seconds, 1),
    }
    if summary.warm is not None:
        data["warm"] = summary.warm
    if as_json:
        print(json.dumps(data))
        return
    print("\n[demo] summary")
    for key, value in data.items():
        print(f"  {key:>18}: {value}")
    print(
        "[demo] "
        + (
            "OK: the group woke, scaled out, drained every job and went back to 0"
            + (" (twice: cold, then warm from its pool)" if summary.warm else "")
            if summary.ok
            else "FAILED: see the summary above"
        )
    )


if __name__ == "__main__":
    sys.exit(main())
