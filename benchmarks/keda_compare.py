"""KEDA beside autozero on one apiserver, measured in one run: wake, idle cost, sleep, outage.

Run: make bench-keda KEDA_ARGS="--size 1 100"
     (.venv/bin/python benchmarks/keda_compare.py --size 1 100 [--trials 20] [--idle 60])

For each size N: the test ground (kube-apiserver with a JSON audit log, kube-controller-manager),
KEDA v2.21.0's operator with its CRDs and autozero's operator, each with its own user (the audit
log tells their requests apart) and its own Redis server of the same version (so that each one's
`INFO commandstats` delta is its own). N Deployments at 0 for each, each driven by its own list:
N ScaledObjects (redis list trigger) and the N policies `autozero convert keda` prints for them.
Phases (keda_fleet.PHASES) reconfigure both fleets; in each, with everything asleep, an idle
window (CPU, RSS, apiserver requests by user, Redis commands), then the wake trials (LPUSH ->
`/scale` at 1, seen by a watch). Then, on a few extra members at KEDA's default polling and
autozero's push: the sleep time (last job done -> `/scale` 0), a job held in flight for 60 s, and
a Redis outage with the group awake, with and without `fallback`. Raw figures go to --out (JSON),
the table rows to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
import yaml
from kubernetes import client as k8s
from kubernetes.config import new_client_from_config

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "operator"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from keda_fleet import (  # noqa: E402
    AUTOZERO_NAMESPACE,
    KEDA_NAMESPACE,
    PHASES,
    STREAM_GROUP,
    Mode,
    autozero_fleet,
    keda_fleet,
    list_key,
    member,
    stream_fleets,
    stream_key,
)
from keda_measure import (  # noqa: E402
    commands_per_minute,
    commandstats_calls,
    latency_cell,
    per_minute,
    rates_cell,
    timeline,
)
from procstats import cpu_seconds, load_average, rss_mib  # noqa: E402
from replica_watch import ReplicaWatcher  # noqa: E402
from testground.audit import AuditLog, count_by  # noqa: E402
from testground.cli import positive  # noqa: E402
from testground.cli import run as run_command  # noqa: E402
from testground.keda import KedaOperator, install_keda_crds  # noqa: E402
from testground.kube import KubeCluster, create_worker_deployments, start_cluster  # noqa: E402
from testground.process import ManagedProcess, free_port, wait_for  # noqa: E402
from testground.redis_server import RedisServer  # noqa: E402
from testground.tools import VERSIONS, debian_binary  # noqa: E402

KEDA_USER = "keda-operator"
AUTOZERO_USER = "autozero-operator"
HPA_CONTROLLER = "horizontal-pod-autoscaler"  # the controller-manager's user-agent suffix
AUDIT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
"""
COOLDOWN = 30  # KEDA cooldownPeriod = autozero idleFor (the converter's mapping), seconds
WAKE_COOLDOWN = 0  # in the wake phases: back to asleep between trials without waiting
HOLD = 60.0  # seconds the in-flight consumer holds its job
FALLBACK = {"failureThreshold": 3, "replicas": 2}
BEHAVIOUR_KEDA = Mode(30)
BEHAVIOUR_AUTOZERO = Mode(15, push=True)
SLEEP_MEMBERS = [f"sleep-{i}" for i in range(5)]
HELD_MEMBER = "held"
OUTAGE_MEMBERS = {"outage-plain": None, "outage-fallback": FALLBACK}
STREAM_HELD = "stream-held"  # an entry read once the group is awake, held HOLD s before XACK
STREAM_OUTSIDE = "stream-outside"  # an entry read at once by a consumer outside the group
STREAM_UNREAD = "stream-unread"  # a stream entry nobody reads
STREAM_MEMBERS = [STREAM_HELD, STREAM_OUTSIDE, STREAM_UNREAD]
READ_GRACE = 5.0  # seconds the held entry waits for the group to wake before it is read anyway
UNREAD_WAIT = 2 * BEHAVIOUR_KEDA.polling + 30  # how long an unread entry is given to wake one
CANCELLED = threading.Event()  # set by SIGTERM: the trial threads stop waiting, the servers stop


@dataclass
class Side:
    """One operator and what belongs to it: its namespace, Redis, apiserver user, fleet."""

    name: str
    namespace: str
    user: str
    redis_server: RedisServer
    fleet: Callable[..., list[dict[str, Any]]]
    queue: redis.Redis = field(init=False)
    watcher: ReplicaWatcher = field(init=False)
    pid: int = 0

    def __post_init__(self) -> None:
        self.queue = redis.Redis.from_url(self.redis_server.url, socket_timeout=10)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.redis_server.port}"


@dataclass
class Ground:
    cluster: KubeCluster
    api: Any
    audit: AuditLog
    keda: Side
    autozero: Side

    @property
    def sides(self) -> tuple[Side, Side]:
        return (self.keda, self.autozero)


APPLY_CHUNK = 100  # objects per kubectl apply: 500 took over kubectl_run's 120 s at N = 1,000


def apply(cluster: KubeCluster, manifests: list[dict[str, Any]]) -> None:
    for start in range(0, len(manifests), APPLY_CHUNK):
        chunk = manifests[start : start + APPLY_CHUNK]
        cluster.kubectl_run("apply", "-f", "-", input_text=yaml.safe_dump_all(chunk))


def configure(
    ground: Ground, names: list[str], keda: Mode, autozero: Mode, cooldown: int, **extra: Any
) -> None:
    apply(ground.cluster, ground.keda.fleet(names, ground.keda.address, keda, cooldown, **extra))
    apply(
        ground.cluster,
        ground.autozero.fleet(names, ground.autozero.address, autozero, cooldown, **extra),
    )


def wait_fleets_ready(ground: Ground, names: list[str], timeout: float = 1800) -> None:
    """Every ScaledObject Ready (KEDA has built its scalers) and every policy with a status."""
    custom = k8s.CustomObjectsApi(ground.api)
    wanted = set(names)

    def keda_ready() -> bool:
        items = custom.list_namespaced_custom_object(
            "keda.sh", "v1alpha1", KEDA_NAMESPACE, "scaledobjects", _request_timeout=60
        )["items"]
        ready = {
            i["metadata"]["name"]
            for i in items
            if any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in (i.get("status") or {}).get("conditions", [])
            )
        }
        return wanted <= ready

    def autozero_ready() -> bool:
        items = custom.list_namespaced_custom_object(
            "autozero.dev", "v1alpha1", AUTOZERO_NAMESPACE, "scalingpolicies", _request_timeout=60
        )["items"]
        seen = {i["metadata"]["name"] for i in items if (i.get("status") or {}).get("groups")}
        return wanted <= seen

    wait_for(keda_ready, timeout=timeout, interval=2)
    wait_for(autozero_ready, timeout=timeout, interval=2)


def start_ground(workdir: Path, size: int) -> tuple[Ground, list[Callable[[], None]]]:
    """The servers, both operators and both fleets at the first phase; with what stops them (in
    that order). A failure part way stops what had started before it is raised."""
    stops: list[Callable[[], None]] = []
    try:
        cluster = start_cluster(workdir / "kube", audit_policy=AUDIT_POLICY)
        stops.append(cluster.stop)
        assert cluster.audit_log is not None
        api = new_client_from_config(config_file=str(cluster.kubeconfig))
        install_keda_crds(cluster)
        crd = ROOT / "crds" / "scalingpolicies.autozero.dev.yaml"
        cluster.kubectl_run("apply", "-f", str(crd))
        cluster.wait_established("scalingpolicies.autozero.dev")
        # Append-only: the lists outlive the outage row's stop, as a production queue's would.
        servers = [
            RedisServer(workdir / "redis-keda", persist=True),
            RedisServer(workdir / "redis-autozero", persist=True),
        ]
        for server in servers:
            stops.insert(0, server.stop)
            server.start()
        keda = Side("KEDA", KEDA_NAMESPACE, KEDA_USER, servers[0], keda_fleet)
        autozero = Side("autozero", AUTOZERO_NAMESPACE, AUTOZERO_USER, servers[1], autozero_fleet)
        ground = Ground(cluster, api, AuditLog(cluster.audit_log), keda, autozero)
        core = k8s.CoreV1Api(api)
        names = [member(i) for i in range(size)]
        for side in ground.sides:
            core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=side.namespace)))
            create_worker_deployments(api, side.namespace, names)
            side.watcher = ReplicaWatcher(api, side.namespace, CANCELLED)
            stops.insert(0, side.watcher.stop)
            side.watcher.start()
        first = PHASES[0]
        configure(ground, names, first.keda, first.autozero, WAKE_COOLDOWN)
        keda_operator = KedaOperator(
            cluster, cluster.kubeconfig_for(KEDA_USER, ("system:masters",)), workdir / "keda"
        )
        stops.insert(0, keda_operator.stop)
        keda_operator.start()
        keda.pid = keda_operator.pid
        port = free_port()
        autozero_operator = ManagedProcess(
            "autozero-operator",
            [
                *(sys.executable, "-m", "autozero.cli", "operator"),
                "--kubeconfig",
                str(cluster.kubeconfig_for(AUTOZERO_USER, ("system:masters",))),
                *("--metrics-port", str(port)),
            ],
            workdir=workdir / "autozero",
            env={**os.environ, "PYTHONPATH": str(ROOT / "operator")},
        )
        stops.insert(0, autozero_operator.stop)
        autozero_operator.start()
        autozero.pid = autozero_operator.pid
        wait_fleets_ready(ground, names)
    except BaseException:
        for stop in stops:
            stop()
        raise
    return ground, stops


# --- a reconfiguration taking effect ---------------------------------------------------------

READ_COMMAND = {"KEDA": "eval", "autozero": "llen"}  # one per list per read (KEDA: its script)


def read_rate(side: Side, seconds: float) -> float:
    """The lists `side`'s operator reads per second, over `seconds`, from its Redis."""
    command = READ_COMMAND[side.name]
    before = commandstats_calls(side.queue.info("commandstats")).get(command, 0)
    started = time.monotonic()
    time.sleep(seconds)
    after = commandstats_calls(side.queue.info("commandstats")).get(command, 0)
    return (after - before) / (time.monotonic() - started)


def wait_polling(
    ground: Ground, count: int, modes: dict[str, tuple[Mode, Mode]], timeout: float = 1200
) -> dict[str, dict[str, float]]:
    """Until each operator reads its `count` lists at its new interval (modes: name -> (before,
    after)): a reconfiguration of 1,000 objects is not in effect when the apply returns (KEDA
    restarts each one's scale loop in its reconciler, a few a second here), and a phase measured
    before then would time the old interval. Faster: until the read rate is 0.8 of the new one;
    slower: until it is at most 1.25 of it (over two new intervals). Not failing at `timeout`:
    the figures say how far it got."""
    settled: dict[str, dict[str, float]] = {}
    for side in ground.sides:
        before, after = modes[side.name]
        expected = count / after.polling
        faster = after.polling < before.polling
        window = max(10.0, 2.0 * after.polling)
        started = time.monotonic()
        rate = read_rate(side, window)
        while (
            (rate < 0.8 * expected if faster else rate > 1.25 * expected)
            and time.monotonic() - started < timeout
            and after.polling != before.polling
        ):
            rate = read_rate(side, window)
        settled[side.name] = {
            "after": time.monotonic() - started,
            "reads_per_second": rate,
            "expected": expected,
        }
        print(
            f"    {side.name}: reading {rate:.1f} lists/s (expected {expected:.1f}) "
            f"{settled[side.name]['after']:.0f} s after the reconfiguration",
            flush=True,
        )
    return settled


# --- idle -----------------------------------------------------------------------------------


def idle_window(ground: Ground, seconds: float) -> dict[str, dict[str, Any]]:
    """CPU, RSS, apiserver requests (by user, from the audit log) and Redis commands of each
    operator over `seconds` with nothing to do."""
    mark = ground.audit.mark()
    cpu = {s.name: cpu_seconds(s.pid) for s in ground.sides}
    stats = {s.name: commandstats_calls(s.queue.info("commandstats")) for s in ground.sides}
    started = time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - started
    after_stats = {s.name: commandstats_calls(s.queue.info("commandstats")) for s in ground.sides}
    after_cpu = {s.name: cpu_seconds(s.pid) for s in ground.sides}
    requests = ground.audit.requests(mark)
    result: dict[str, dict[str, Any]] = {}
    for side in ground.sides:
        mine = [r for r in requests if r.user == side.user]
        result[side.name] = {
            "cpu_per_minute": (after_cpu[side.name] - cpu[side.name]) * 60 / elapsed,
            "rss_mib": rss_mib(side.pid),
            "apiserver_per_minute": per_minute(count_by(mine, "verb", "resource"), elapsed),
            "redis_per_minute": commands_per_minute(
                stats[side.name], after_stats[side.name], elapsed
            ),
        }
    hpa = [r for r in requests if r.user_agent.endswith(HPA_CONTROLLER)]
    result["KEDA"]["hpa_controller_per_minute"] = per_minute(
        count_by(hpa, "verb", "resource"), elapsed
    )
    return result


# --- wake -----------------------------------------------------------------------------------


def scale_to(side: Side, api: Any, name: str, replicas: int) -> None:
    k8s.AppsV1Api(api).patch_namespaced_deployment_scale(
        name, side.namespace, {"spec": {"replicas": replicas}}, _request_timeout=30
    )


def reset(side: Side, api: Any, names: list[str], timeout: float) -> None:
    """Back to asleep between trials, the list emptied. KEDA decides from the list and the count
    alone at each poll, so the harness writes `/scale` 0 for it (empty and at 0: nothing to do)
    rather than wait a polling interval for its own write. autozero keeps each group's state and
    does not decide again on an unchanged reading, so a count written under it would leave it
    believing the group awake: it is left to write 0 itself (idleFor is 0 in the wake phases),
    at its next read of the empty list."""
    for name in names:
        since = time.monotonic()
        side.queue.delete(list_key(name))
        if side.namespace == KEDA_NAMESPACE:
            scale_to(side, api, name, 0)
        seen = side.watcher.first(name, lambda r: r == 0, since=since, timeout=timeout)
        if seen is None and side.watcher.replicas(name) != 0:
            raise RuntimeError(f"{side.name} {name}: not at 0 {timeout:.0f} s after the reset")


def wake_trials(
    side: Side, api: Any, names: list[str], trials: int, spread: float, rng: random.Random
) -> dict[str, Any]:
    """LPUSH -> `/scale` at 1, `trials` times. With at least `trials` members, one trial each,
    pushed at random moments over `spread` seconds (random against each poll's phase); with
    fewer, one after the other on the same members, each after a random pause in `spread`."""
    latencies: list[float] = []
    missed: list[str] = []
    timeout = spread + 90

    def wait(name: str, pushed: float) -> None:
        seen = side.watcher.first(name, lambda r: r >= 1, since=pushed, timeout=timeout)
        if seen is None:
            missed.append(name)
        else:
            latencies.append(seen - pushed)

    if len(names) >= trials:
        chosen = rng.sample(names, trials)
        offsets = sorted(rng.uniform(0, spread) for _ in chosen)
        start = time.monotonic()
        pushed: list[tuple[str, float]] = []
        for name, offset in zip(chosen, offsets, strict=True):
            time.sleep(max(0.0, start + offset - time.monotonic()))
            side.queue.rpush(list_key(name), "job")
            pushed.append((name, time.monotonic()))
        for name, at in pushed:
            wait(name, at)
        reset(side, api, chosen, timeout)
    else:
        for trial in range(trials):
            name = names[trial % len(names)]
            time.sleep(rng.uniform(0, spread))
            side.queue.rpush(list_key(name), "job")
            wait(name, time.monotonic())
            reset(side, api, [name], timeout)
    return {"latencies": latencies, "missed": missed, "trials": trials}


# --- sleep, in flight, outage ---------------------------------------------------------------


def wake_one(side: Side, name: str, timeout: float = 120) -> None:
    pushed = time.monotonic()
    side.queue.rpush(list_key(name), "job")
    if side.watcher.first(name, lambda r: r >= 1, since=pushed, timeout=timeout) is None:
        raise RuntimeError(f"{side.name} {name} did not wake in {timeout} s")


def sleep_trial(side: Side, name: str, pause: float) -> float | None:
    """Wake; `pause` seconds later (a random moment against the polls) a consumer LPOPs the job
    and finishes it at once: seconds from then until `/scale` 0."""
    wake_one(side, name)
    time.sleep(pause)
    done = time.monotonic()
    side.queue.lpop(list_key(name))
    seen = side.watcher.first(name, lambda r: r == 0, since=done, timeout=COOLDOWN + 600)
    return None if seen is None else seen - done


def held_trial(side: Side, name: str) -> dict[str, Any]:
    """Wake, then a consumer LPOPs the job and holds it for HOLD seconds: when does `/scale`
    reach 0 (before the job is done = under it)?"""
    wake_one(side, name)
    taken = time.monotonic()
    side.queue.lpop(list_key(name))
    seen = side.watcher.first(name, lambda r: r == 0, since=taken, timeout=HOLD + COOLDOWN + 600)
    return {"to_zero": None if seen is None else seen - taken, "hold": HOLD}


def stream_held_trial(side: Side, name: str, grace: float) -> dict[str, Any]:
    """XADD an entry; a consumer of the group reads it (XREADGROUP) as soon as the group is
    awake, or after `grace` seconds if it is not (0: at once, a consumer outside the group), and
    holds it HOLD seconds before XACK: the replicas from the XADD until COOLDOWN + 90 s after."""
    key = stream_key(name)
    added = time.monotonic()
    side.queue.xadd(key, {"job": "1"})
    if grace:
        side.watcher.first(name, lambda r: r >= 1, since=added, timeout=grace)
    read = side.queue.xreadgroup(STREAM_GROUP, "worker-1", {key: ">"}, count=1)
    ((_, [(entry, _)]),) = read
    taken = time.monotonic()
    time.sleep(max(0.0, taken + HOLD - time.monotonic()))
    side.queue.xack(key, STREAM_GROUP, entry)
    acked = time.monotonic()
    time.sleep(COOLDOWN + 90)
    changes = side.watcher.between(name, added, time.monotonic())
    woke = next((t for t, r in changes if t >= added and r >= 1), None)
    under = next((t for t, r in changes if woke and t > woke and r == 0 and t < acked), None)
    return {
        "read": taken - added,
        "timeline": timeline(changes, added),
        "woke": None if woke is None else woke - added,
        "zero_under_job": None if under is None else under - added,
        "acked": acked - added,
    }


def stream_unread_trial(side: Side, name: str) -> dict[str, Any]:
    """XADD an entry nobody reads (no consumer runs while the group is at 0): does it wake?"""
    added = time.monotonic()
    side.queue.xadd(stream_key(name), {"job": "1"})
    seen = side.watcher.first(name, lambda r: r >= 1, since=added, timeout=UNREAD_WAIT)
    return {"woke": None if seen is None else seen - added, "waited": UNREAD_WAIT}


def configure_streams(ground: Ground) -> None:
    """The stream members: each side's streams with the group made (as a worker would at its
    start; KEDA's and autozero's reads both need it), then both fleets."""
    for side in ground.sides:
        for name in STREAM_MEMBERS:
            side.queue.xgroup_create(stream_key(name), STREAM_GROUP, id="$", mkstream=True)
    keda, autozero = stream_fleets(
        STREAM_MEMBERS,
        ground.keda.address,
        ground.autozero.address,
        BEHAVIOUR_KEDA,
        BEHAVIOUR_AUTOZERO,
        COOLDOWN,
    )
    apply(ground.cluster, keda)
    apply(ground.cluster, autozero)


def behaviour_rows(ground: Ground, outage: float, rng: random.Random) -> dict[str, dict[str, Any]]:
    extras = [*SLEEP_MEMBERS, HELD_MEMBER]
    for side in ground.sides:
        create_worker_deployments(
            ground.api, side.namespace, [*extras, *OUTAGE_MEMBERS, *STREAM_MEMBERS]
        )
    configure(ground, extras, BEHAVIOUR_KEDA, BEHAVIOUR_AUTOZERO, COOLDOWN)
    for name, fallback in OUTAGE_MEMBERS.items():
        configure(ground, [name], BEHAVIOUR_KEDA, BEHAVIOUR_AUTOZERO, COOLDOWN, fallback=fallback)
    configure_streams(ground)
    wait_fleets_ready(ground, [*extras, *OUTAGE_MEMBERS, *STREAM_MEMBERS], timeout=300)
    result: dict[str, dict[str, Any]] = {s.name: {} for s in ground.sides}
    pauses = [rng.uniform(0, BEHAVIOUR_KEDA.polling) for _ in SLEEP_MEMBERS]  # the same for both
    with ThreadPoolExecutor((len(extras) + len(STREAM_MEMBERS)) * 2) as pool:
        sleeps = {
            s.name: [
                pool.submit(sleep_trial, s, n, p)
                for n, p in zip(SLEEP_MEMBERS, pauses, strict=True)
            ]
            for s in ground.sides
        }
        held = {s.name: pool.submit(held_trial, s, HELD_MEMBER) for s in ground.sides}
        streams = {
            s.name: (
                pool.submit(stream_held_trial, s, STREAM_HELD, READ_GRACE),
                pool.submit(stream_held_trial, s, STREAM_OUTSIDE, 0.0),
                pool.submit(stream_unread_trial, s, STREAM_UNREAD),
            )
            for s in ground.sides
        }
        for side in ground.sides:
            result[side.name]["sleep"] = [f.result() for f in sleeps[side.name]]
            result[side.name]["held"] = held[side.name].result()
            result[side.name]["stream_held"] = streams[side.name][0].result()
            result[side.name]["stream_outside"] = streams[side.name][1].result()
            result[side.name]["stream_unread"] = streams[side.name][2].result()
    print("  sleep, in-flight and stream rows done", flush=True)
    for side in ground.sides:
        for name in OUTAGE_MEMBERS:
            wake_one(side, name)
    stopped = time.monotonic()
    for side in ground.sides:
        side.redis_server.stop()
    time.sleep(outage)
    for side in ground.sides:
        side.redis_server.start()
    restarted = time.monotonic()
    for side in ground.sides:
        # Persisted (appendonly): the job outlived the stop; recorded, so the row can say so.
        result[side.name]["outage_jobs_after_restart"] = {
            name: side.queue.llen(list_key(name)) for name in OUTAGE_MEMBERS
        }
    time.sleep(60)
    end = time.monotonic()
    for side in ground.sides:
        result[side.name]["outage"] = {
            name: {
                "during": timeline(side.watcher.between(name, stopped, restarted), stopped),
                "after": timeline(side.watcher.between(name, restarted, end), restarted),
            }
            for name in OUTAGE_MEMBERS
        }
    return result


# --- one size -------------------------------------------------------------------------------


def measure(
    size: int, trials: int, idle: float, outage: float, seed: int, phases: bool = True
) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix=f"autozero-keda-{size}-"))
    rng = random.Random(seed)
    print(f"N={size}: starting the test ground in {workdir}", flush=True)
    ground, stops = start_ground(workdir, size)
    names = [member(i) for i in range(size)]
    out: dict[str, Any] = {"size": size, "outage": outage, "phases": [], "load_average": []}
    try:
        for index, phase in enumerate(PHASES if phases else ()):
            settled = None
            if index:
                configure(ground, names, phase.keda, phase.autozero, WAKE_COOLDOWN)
                previous = PHASES[index - 1]
                settled = wait_polling(
                    ground,
                    size,
                    {
                        "KEDA": (previous.keda, phase.keda),
                        "autozero": (previous.autozero, phase.autozero),
                    },
                )
            time.sleep(2 * max(phase.keda.polling, phase.autozero.polling) + 10)
            print(f"  {phase.name}: idle window", flush=True)
            idle_result = idle_window(ground, idle)
            print(f"  {phase.name}: wake trials", flush=True)
            runs: dict[str, Any] = {}
            with ThreadPoolExecutor(2) as pool:
                for side, mode, timed in (
                    (ground.keda, phase.keda, phase.keda_trials),
                    (ground.autozero, phase.autozero, phase.autozero_trials),
                ):
                    if timed:
                        spread = 1.0 if mode.push else float(mode.polling)
                        side_rng = random.Random(rng.random())
                        runs[side.name] = pool.submit(
                            wake_trials, side, ground.api, names, trials, spread, side_rng
                        )
                wake = {name: future.result() for name, future in runs.items()}
            out["phases"].append(
                {
                    "name": phase.name,
                    "keda": phase.keda.label("KEDA"),
                    "autozero": phase.autozero.label("autozero"),
                    "settled": settled,
                    "idle": idle_result,
                    "wake": wake,
                }
            )
            out["load_average"].append(load_average())
        print("  sleep, in flight, outage", flush=True)
        out["behaviour"] = behaviour_rows(ground, outage, rng)
    finally:
        for stop in stops:
            stop()
    return out


# --- the table ------------------------------------------------------------------------------


def rows(result: dict[str, Any]) -> list[str]:
    n = f"{result['size']:,}"
    lines = []

    def row(what: str, keda: str, autozero: str) -> None:
        lines.append(f"| {n} | {what} | {keda} | {autozero} |")

    for phase in result["phases"]:
        wake = phase["wake"]
        keda_cell = (
            latency_cell(wake["KEDA"]["latencies"], wake["KEDA"]["trials"])
            if "KEDA" in wake
            else "— (no push mode)"
        )
        row(
            f"wake LPUSH → /scale 1, p50 / p99: {phase['keda']} · {phase['autozero']}",
            keda_cell,
            latency_cell(wake["autozero"]["latencies"], wake["autozero"]["trials"]),
        )
    for phase in result["phases"]:
        idle = phase["idle"]
        keda, az = idle["KEDA"], idle["autozero"]
        what = f"idle, {phase['keda']} · {phase['autozero']}"
        row(
            f"{what}: CPU s/min, RSS",
            f"{keda['cpu_per_minute']:.2f} s, {keda['rss_mib']:.0f} MiB",
            f"{az['cpu_per_minute']:.2f} s, {az['rss_mib']:.0f} MiB",
        )
        row(
            f"{what}: apiserver requests/min (audit log, by user)",
            rates_cell(keda["apiserver_per_minute"])
            + f"; its HPAs cost the HPA controller {rates_cell(keda['hpa_controller_per_minute'])}",
            rates_cell(az["apiserver_per_minute"]),
        )
        row(
            f"{what}: Redis commands/min (INFO commandstats)",
            rates_cell(keda["redis_per_minute"]),
            rates_cell(az["redis_per_minute"]),
        )
    behaviour = result["behaviour"]

    def sleep_cell(side: str) -> str:
        values = behaviour[side]["sleep"]
        seen = [v for v in values if v is not None]
        text = ", ".join(f"{v:.1f}" for v in seen) + " s"
        return text if len(seen) == len(values) else f"{text}; {len(values) - len(seen)} never"

    def held_cell(side: str) -> str:
        held = behaviour[side]["held"]
        if held["to_zero"] is None:
            return "stayed up"
        at = held["to_zero"]
        if at < held["hold"]:
            return f"yes: 0 at +{at:.0f} s, the job running until +{held['hold']:.0f} s"
        return (
            f"not this time: 0 at +{at:.0f} s, {at - held['hold']:.0f} s after the job ended "
            "(where the LPOP fell among the polls; a list cannot say what is in flight)"
        )

    row(
        f"sleep, last job done → /scale 0 (cooldownPeriod = idleFor = {COOLDOWN} s)",
        sleep_cell("KEDA"),
        sleep_cell("autozero"),
    )
    row(
        f"a job LPOPed and held {HOLD:.0f} s: scaled to 0 under it?",
        held_cell("KEDA"),
        held_cell("autozero"),
    )
    if "stream_held" in behaviour["KEDA"]:
        lines.extend(stream_rows(n, behaviour))
    for name, label in (("outage-plain", "without"), ("outage-fallback", "with")):
        cells = [
            "during: {during}; after: {after}".format(**behaviour[s]["outage"][name])
            for s in ("KEDA", "autozero")
        ]
        kept = [
            behaviour[s].get("outage_jobs_after_restart", {}).get(name)
            for s in ("KEDA", "autozero")
        ]
        back = (
            "Redis back with its lists (appendonly), the job still queued"
            if kept == [1, 1]
            else f"Redis back with {kept} jobs"
            if None not in kept
            else "Redis back empty, the job pushed again at once"
        )
        down = f"{result['outage']:.0f} s"
        row(
            f"Redis down {down} with the group awake, {label} fallback: replicas during; after "
            f"({back})",
            *cells,
        )
    return lines


def stream_rows(n: str, behaviour: dict[str, Any]) -> list[str]:
    """The stream rows: KEDA's `redis-streams` trigger (pendingEntriesCount) beside the policy
    `autozero convert keda` prints for it."""

    def held(side: str, row: str = "stream_held") -> str:
        trial = behaviour[side][row]
        if trial["woke"] is None:
            verdict = "never woke"
        elif trial["zero_under_job"] is not None:
            verdict = f"yes: 0 at +{trial['zero_under_job']:.0f} s"
        else:
            verdict = "no"
        read = f"read at +{trial['read']:.1f} s, " if "read" in trial else ""
        return f"{verdict} ({read}XACK at +{trial['acked']:.0f} s; replicas {trial['timeline']})"

    def unread(side: str) -> str:
        trial = behaviour[side]["stream_unread"]
        if trial["woke"] is None:
            return f"no: still 0 after {trial['waited']:.0f} s"
        return f"yes, in {trial['woke']:.1f} s"

    what = "a Redis stream with a consumer group (KEDA `redis-streams`, pendingEntriesCount)"
    lines = [
        f"| {n} | {what}: an entry read by the group's worker once it is awake (after "
        f"{READ_GRACE:.0f} s if it is not) and held {HOLD:.0f} s before XACK: scaled to 0 under "
        f"it? | {held('KEDA')} | {held('autozero')} |",
    ]
    if "stream_outside" in behaviour["KEDA"]:
        lines.append(
            f"| {n} | {what}: an entry read at once by a consumer outside the group, held "
            f"{HOLD:.0f} s: woke, and scaled to 0 under it? "
            f"| {held('KEDA', 'stream_outside')} | {held('autozero', 'stream_outside')} |"
        )
    return [
        *lines,
        f"| {n} | {what}: an entry nobody reads (no consumer while at 0): woke? "
        f"| {unread('KEDA')} | {unread('autozero')} |",
    ]


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    redis_version = (
        subprocess.run(
            [str(debian_binary("redis-server")), "--version"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        )
        .stdout.split()[2]
        .removeprefix("v=")
    )
    import autozero

    return (
        f"KEDA {VERSIONS['KEDA_VERSION']}, autozero {autozero.__version__}, kube-apiserver "
        f"{VERSIONS['KUBERNETES_VERSION']}, Redis {redis_version}; {platform.python_version()}; "
        f"{os.cpu_count()} CPUs ({cpu}), "
        f"Linux {platform.release()}"
    )


def main() -> int:
    """`make bench-keda`: a failure to set the ground up is one line, never a traceback."""
    return run_command(_main, "bench-keda")


def _main() -> int:
    parser = argparse.ArgumentParser(prog="make bench-keda")
    parser.add_argument("--size", type=positive(int), nargs="+", default=[1, 100])
    parser.add_argument("--trials", type=positive(int), default=20, help="wake trials per mode")
    parser.add_argument(
        "--idle", type=positive(float), default=60.0, help="seconds of each idle window"
    )
    parser.add_argument(
        "--outage", type=positive(float), default=120.0, help="seconds Redis is down"
    )
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--out", type=Path, default=Path("keda-compare.json"))
    parser.add_argument(
        "--behaviour-only",
        action="store_true",
        help="only the sleep, in-flight, stream and outage rows (no idle or wake phases)",
    )
    parser.add_argument("--table", type=Path, help="only print the table of a saved --out file")
    args = parser.parse_args()
    if args.table:
        saved = json.loads(args.table.read_text())
        print(saved["machine"])
        print("| N | measure | KEDA | autozero |\n| --- | --- | --- | --- |")
        for result in saved["results"]:
            print("\n".join(rows(result)))
        return 0

    # A SIGTERM (or SIGINT, ignored by a shell's background jobs) stops the servers on the way out.
    def stop(*_: object) -> None:
        CANCELLED.set()
        sys.exit(143)

    signal.signal(signal.SIGTERM, stop)
    header = machine()
    print(header, flush=True)
    results = []
    for size in args.size:
        results.append(
            measure(size, args.trials, args.idle, args.outage, args.seed, not args.behaviour_only)
        )
        args.out.write_text(json.dumps({"machine": header, "results": results}, indent=1))
        print("| N | measure | KEDA | autozero |\n| --- | --- | --- | --- |", flush=True)
        for result in results:
            print("\n".join(rows(result)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
