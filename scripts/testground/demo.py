"""The local demo (`make demo`): a queue fills, workers wake, scale out, drain, and go back to 0.

Real parts: Redis and FerretDB (MongoDB wire) hold an MRQ raw queue and its started jobs; the GCE
emulator runs one real worker process per instance of a managed instance group; autozero runs
standalone (`autozero run`'s loop) against all three. A live line per second shows the queue, the
jobs in flight, the group and autozero's last decision; a summary closes the run, and the exit code
says whether the group reached more than one worker, drained every job and went back to zero.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pymongo
import redis
import yaml
from autozero.policy.parse import parse_policy
from autozero.standalone import StandaloneOptions, run
from gce_emulator import EmulatorServer, Settings
from google.auth.credentials import AnonymousCredentials
from googleapiclient import discovery

from testground.mongo import FerretDBServer
from testground.redis_server import RedisServer

QUEUE = "demo_raw"
PROJECT, ZONE, GROUP = "demo", "local-a", "workers"
SCRIPTS = Path(__file__).resolve().parent.parent

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

    @property
    def ok(self) -> bool:
        return self.peak_instances > 1 and self.processed == self.enqueued and self.final_size == 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--job-seconds", type=float, default=0.15)
    parser.add_argument("--timeout", type=float, default=180)
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args(argv)
    started = time.monotonic()
    print("[demo] starting Redis, FerretDB (MongoDB wire) and the GCE emulator ...", flush=True)
    redis_server, mongo = RedisServer(), FerretDBServer()
    redis_server.start()
    mongo.start()
    emulator = EmulatorServer(
        settings=Settings(
            operation_seconds=0.3,
            instance_boot_seconds=1.0,
            instance_stop_seconds=0.5,
            instance_command=[sys.executable, "-m", "testground.demo_worker"],
            instance_env={
                "PYTHONPATH": str(SCRIPTS),
                "DEMO_QUEUE": QUEUE,
                "DEMO_JOB_SECONDS": str(args.job_seconds),
                "DEMO_REDIS_URL": redis_server.url,
                "DEMO_MONGO_URL": mongo.url,
            },
        )
    ).start()
    stop = threading.Event()
    try:
        summary = _run(args, redis_server, mongo, emulator, stop)
    finally:
        stop.set()
        emulator.stop()
        mongo.stop()
        redis_server.stop()
    summary.seconds = time.monotonic() - started
    _print_summary(summary, args.json)
    return 0 if summary.ok else 1


def _run(
    args: argparse.Namespace,
    redis_server: RedisServer,
    mongo: FerretDBServer,
    emulator: EmulatorServer,
    stop: threading.Event,
) -> Summary:
    compute = discovery.build(
        "compute",
        "v1",
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        static_discovery=True,
        cache_discovery=False,
        client_options={"api_endpoint": emulator.api_endpoint},
    )
    op = (
        compute.instanceGroupManagers()
        .insert(
            project=PROJECT,
            zone=ZONE,
            body={
                "name": GROUP,
                "instanceTemplate": "global/instanceTemplates/worker",
                "targetSize": 0,
            },
        )
        .execute()
    )
    compute.zoneOperations().wait(project=PROJECT, zone=ZONE, operation=op["name"]).execute()
    print(f"[demo] managed instance group {GROUP} created at size 0", flush=True)

    manifest = yaml.safe_load(
        POLICY.replace("REDIS_URL", redis_server.url).replace("MONGO_URL", mongo.url)
    )
    policy = parse_policy(manifest)
    lines = Lines()
    runner = threading.Thread(
        target=run,
        args=(policy, StandaloneOptions(gce_endpoint=emulator.api_endpoint, output="json"), lines),
        kwargs={"stop": stop},
        daemon=True,
    )
    runner.start()
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
        state = emulator.emulator.render_group(
            emulator.emulator.world.groups[(PROJECT, "zones", ZONE, GROUP)]
        )
        running = state["currentActions"]["none"]
        summary.peak_instances = max(summary.peak_instances, running)
        summary.instance_seconds += running * (now - last_tick)
        last_tick = now
        with lines.lock:
            moves = [d for d in lines.decisions if d["action"] != "Hold"]
            latest = lines.decisions[-1] if lines.decisions else None
        shown = moves[-1] if moves else latest
        decision = (
            (
                f"{shown['action']} {shown['replicas']['before']}->"
                f"{shown['replicas']['after']}: {shown['message']}"
            )
            if shown
            else "-"
        )
        elapsed = (datetime.now(UTC) - enqueued_at).total_seconds()
        print(
            f"{elapsed:5.0f}  {depth:5d}  {in_flight:9d}  "
            f"{running:>2} running/{state['targetSize']:<2}  {decision[:90]}",
            flush=True,
        )
        processed = int(store.get("demo:processed") or 0)
        if processed >= args.jobs and state["targetSize"] == 0 and running == 0:
            break
    summary.processed = int(store.get("demo:processed") or 0)
    summary.final_size = int(
        emulator.emulator.world.groups[(PROJECT, "zones", ZONE, GROUP)].target_size
    )
    with lines.lock:
        for made in lines.decisions:
            summary.actions[made["action"]] = summary.actions.get(made["action"], 0) + 1
        wakes = [d for d in lines.decisions if d["action"] == "Wake"]
    if wakes:
        woke = datetime.fromisoformat(wakes[0]["time"].replace("Z", "+00:00"))
        summary.wake_latency_seconds = max(0.0, (woke - enqueued_at).total_seconds())
    return summary


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
            if summary.ok
            else "FAILED: see the summary above"
        )
    )


if __name__ == "__main__":
    sys.exit(main())
