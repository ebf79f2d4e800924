"""A chaos campaign: real jobs, random faults at seeded times, invariants from independent evidence.

Run: .venv/bin/python benchmarks/chaos.py --seed 22 --faults 100 [--gap 4] [--out DIR] [--json]

Two groups, each woken by its own RQ queue (pending and in flight, read by autozero's `rq` source
through a TCP relay the campaign can cut): a GCE managed instance group in the emulator, whose
instances each run a real `rq worker`, and a Deployment, whose replicas the campaign follows with
`rq worker` processes (there is no kubelet). Waves of jobs of 1-3 s keep work often in flight,
and quiet spells of 8-14 s (one wave in three) let the groups sleep and wake under the faults.
The operator runs as a child process, polling every second. Faults come one after another, at
seeded random gaps, each drawn from: SIGKILL or SIGTERM of the operator (restarted after a
pause), a kube-apiserver restart, the Redis relay cut (every source read fails), a burst of
Compute 429/503 answers, Compute latency of 2-5 s, Compute operations that end in error, the GCE
policy edited, the Deployment policy deleted and created again, and the Deployment scaled by
hand; one fault in four comes with a second one of another kind at the same time. Then the
faults stop, the waves stop, and every job must be processed and both groups back at 0.

Invariants, from evidence autozero does not write: the emulator's request log (resizes), the
apiserver's audit log (writes to deployments/scale, with the replicas asked), the workers' own
job logs (benchmarks/chaos_jobs.py) and the campaign's own clock for its faults:
1. never scaled to 0 while a job of the group was running (and no job cut short);
2. never scaled down while the source reads were failing (the relay cut, and one interval after);
3. after each fault, converged within 3 polling intervals (from the fault's end, from when a
   restarted operator serves /metrics, or, for Compute latency, from when the last Compute call
   begun before the fault's end was answered): every group with work has a replica. A fault
   followed by the next one within those 3 intervals is judged with the next one;
4. no duplicated resize: no two accepted resizes of one group to the same size in a row;
5. every job of every wave processed;
6. no policy starved: outside the faults (and 3 intervals after each), every policy's
   `autozero_last_evaluation_timestamp_seconds` on the operator's /metrics is never more than
   2 intervals old;
and the operator exits within 30 s of a SIGTERM (Kubernetes' grace period).
The report gives the faults by kind, each violation with its first evidence line, the worst
convergence, and the seed that replays the schedule.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
import yaml
from kubernetes import client as k8s
from kubernetes.config import new_client_from_config

ROOT = Path(__file__).resolve().parents[1]
for extra in (ROOT / "scripts", ROOT / "emulators" / "gce"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from gce_emulator import EmulatorServer, Settings  # noqa: E402
from testground.gce import compute_client, create_mig  # noqa: E402
from testground.kube import (  # noqa: E402
    KubeCluster,
    TcpRelay,
    create_secret,
    create_worker_deployment,
    start_cluster,
)
from testground.process import free_port, wait_for  # noqa: E402
from testground.redis_server import RedisServer  # noqa: E402

NAMESPACE = "chaos"
PROJECT, ZONE, MIG = "chaos", "europe-west1-c", "mig"
INTERVAL = 1.0  # the policies' pollingInterval, in seconds
IDLE = 3.0  # activation.idleFor
STOP_GRACE = 30.0  # Kubernetes' default terminationGracePeriodSeconds
CALL_TIMEOUT = 10  # seconds: the campaign's own calls to the apiserver
POLICIES = ("gce", "dep")
LAST_EVALUATION = "autozero_last_evaluation_timestamp_seconds"
FAULT_KINDS = (
    "operator-sigkill",
    "operator-sigterm",
    "apiserver-restart",
    "redis-cut",
    "compute-errors",
    "compute-latency",
    "compute-failed-ops",
    "policy-edit",
    "policy-delete",
    "scale-by-hand",
)
# What each kind of fault acts on: two faults at once never share one, and the apiserver is never
# restarted while a fault needs it (kubectl and the scale API).
SUBJECT = {
    "operator-sigkill": "operator",
    "operator-sigterm": "operator",
    "apiserver-restart": "apiserver",
    "redis-cut": "redis",
    "compute-errors": "compute",
    "compute-latency": "compute",
    "compute-failed-ops": "compute",
    "policy-edit": "apiserver-client",
    "policy-delete": "apiserver-client",
    "scale-by-hand": "apiserver-client",
}
APART = {frozenset({"apiserver", "apiserver-client"})}
OVERLAP = 0.25  # the share of faults injected together with a second one
AUDIT_POLICY = """
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Request
    resources: [{group: apps, resources: [deployments/scale]}]
    verbs: [update, patch]
  - level: None
"""


def policy(
    name: str,
    queue: str,
    target: dict[str, Any],
    maximum: int = 3,
    handoff: dict[str, Any] | None = None,
) -> dict[str, Any]:
    group: dict[str, Any] = {
        "name": name,
        "target": target,
        "capacity": {"minimum": 0, "maximum": maximum, "default": 1},
        "activation": {"metric": "jobs", "idleFor": f"{IDLE:g}s"},
    }
    if handoff is not None:
        group["handoff"] = handoff
    return {
        "apiVersion": "autozero.dev/v1alpha1",
        "kind": "ScalingPolicy",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "pollingInterval": f"{INTERVAL:g}s",
            "metrics": [
                {
                    "name": "jobs",
                    "rq": {
                        "urlFrom": {"secretKeyRef": {"name": "rq", "key": "url"}},
                        "queue": queue,
                    },
                }
            ],
            "groups": [group],
        },
    }


def gce_autoscaler(maximum: int) -> dict[str, Any]:
    """`--handoff`: awake, the MIG is the GCE autoscaler's (1 to `maximum` instances)."""
    return {
        "gceAutoscaler": {
            "minReplicas": 1,
            "maxReplicas": maximum,
            "coolDownPeriod": "60s",
            "cpuUtilizationTarget": 0.8,
        }
    }


def converged(sizes: dict[str, int], work: dict[str, int]) -> bool:
    """Every group with work has a replica; with handoff, the MIG has an autoscaler exactly
    while it is awake (none left on a sleeping group, none missing on an awake one)."""
    groups = all(sizes[g] >= 1 or not work[g] for g in ("mig", "dep"))
    if "autoscaler" not in sizes:
        return groups
    return groups and bool(sizes["autoscaler"]) == (sizes["mig"] >= 1)


GCE_POLICY = (
    "gce",
    "mig",
    {"gce": {"project": PROJECT, "zone": ZONE, "instanceGroupManager": MIG}},
)
DEP_POLICY = (
    "dep",
    "dep",
    {"kubernetes": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "dep"}},
)


@dataclass
class Fault:
    kind: str
    started: float
    ended: float = 0.0
    serving_again: float = 0.0  # when the operator answered again (operator kinds), else ended
    converged_after: float | None = None  # seconds from serving_again to converged
    slow_until: float = 0.0  # Compute latency: when the last call begun under it was answered
    judged_with_next: bool = False  # the next fault began before this one's bound elapsed
    together: bool = False  # injected with another one, at the same time
    first_evaluation: float | None = None  # operator kinds: from serving_again to both evaluated


@dataclass
class Violation:
    invariant: str
    evidence: str


@dataclass
class Report:
    seed: int
    faults: list[Fault] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    jobs: int = 0
    processed: int = 0
    seconds: float = 0.0
    evidence: dict[str, int] = field(default_factory=dict)  # lines read, by source

    def by_kind(self) -> dict[str, int]:
        return dict(sorted(Counter(f.kind for f in self.faults).items()))

    def slowest_start(self) -> float:
        return max((f.first_evaluation or 0.0 for f in self.faults), default=0.0)

    def worst_convergence(self) -> tuple[float, str]:
        timed = [(f.converged_after or 0.0, f.kind) for f in self.faults]
        return max(timed, default=(0.0, "-"))

    def to_json(self) -> dict[str, Any]:
        worst, kind = self.worst_convergence()
        return {
            "seed": self.seed,
            "seconds": round(self.seconds, 1),
            "faults": len(self.faults),
            "faults_by_kind": self.by_kind(),
            "jobs": self.jobs,
            "processed": self.processed,
            "evidence": self.evidence,
            "worst_convergence_s": round(worst, 2),
            "worst_convergence_after": kind,
            "judged_with_the_next_fault": sum(f.judged_with_next for f in self.faults),
            "slowest_first_evaluation_after_a_restart_s": round(self.slowest_start(), 2),
            "violations": [
                {"invariant": v.invariant, "evidence": v.evidence} for v in self.violations
            ],
        }

    def text(self) -> str:
        worst, kind = self.worst_convergence()
        lines = [
            f"chaos campaign, seed {self.seed}: {len(self.faults)} faults in {self.seconds:.0f} s, "
            f"{self.processed}/{self.jobs} jobs processed",
            "faults: " + ", ".join(f"{k} {n}" for k, n in self.by_kind().items()),
            "evidence: " + ", ".join(f"{k} {n}" for k, n in self.evidence.items()),
            f"worst convergence: {worst:.1f} s (after {kind}); "
            f"{sum(f.judged_with_next for f in self.faults)} faults judged with the next one",
            f"slowest first evaluation after an operator restart: {self.slowest_start():.1f} s "
            "after its /metrics answered",
            f"violations: {len(self.violations)}",
        ]
        first: dict[str, Violation] = {}
        counts = Counter(v.invariant for v in self.violations)
        for violation in self.violations:
            first.setdefault(violation.invariant, violation)
        for name, violation in first.items():
            lines.append(f"  {name} ({counts[name]}): {violation.evidence}")
        lines.append(f"replay: benchmarks/chaos.py --seed {self.seed} --faults {len(self.faults)}")
        return "\n".join(lines)


class Followers:
    """What a kubelet would do for the Deployment: as many `rq worker` processes as it has
    replicas, the newest stopped with SIGTERM (RQ's warm shutdown: the job in hand finishes)."""

    def __init__(
        self, command: list[str], env: dict[str, str], replicas: Callable[[], int]
    ) -> None:
        self.command, self.env, self.replicas = command, env, replicas
        self.running: list[subprocess.Popen[bytes]] = []
        self.stopping: list[subprocess.Popen[bytes]] = []
        self.stop = threading.Event()
        self.count = 0
        self.thread = threading.Thread(target=self._run, name="followers", daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(0.3):
            try:
                want = self.replicas()
            except Exception:  # the apiserver restarting: keep what runs, ask again
                continue
            while len(self.running) < want:
                self.count += 1
                env = {**self.env, "GCE_INSTANCE": f"dep-{self.count}"}
                self.running.append(subprocess.Popen(self.command, env=env, start_new_session=True))
            while len(self.running) > want:
                process = self.running.pop()
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
                self.stopping.append(process)
            self.stopping = [p for p in self.stopping if p.poll() is None]

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=10)
        for process in self.running + self.stopping:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


class Campaign:
    def __init__(
        self,
        seed: int,
        faults: int,
        gap: float,
        out: Path,
        tree: Path = ROOT,
        handoff: bool = False,
    ) -> None:
        self.seed, self.fault_count, self.gap, self.out = seed, faults, gap, out
        self.handoff = handoff  # the MIG handed to the GCE autoscaler while awake
        self.tree = tree  # whose operator runs (a snapshot: a long run ignores later edits)
        # Faults, their times and parameters from one stream, the jobs from another: the
        # waves follow the wall clock, so the schedule of faults replays whatever they do.
        self.rng = random.Random(seed)
        self.jobs_rng = random.Random(seed + 1)
        self.report = Report(seed)
        self.cuts: list[tuple[float, float]] = []  # when source reads failed
        self.samples: list[tuple[float, dict[str, int], dict[str, int]]] = []  # t, size, work
        self.evaluations: list[tuple[float, dict[str, float]]] = []  # t, last evaluation by policy
        self.operator: subprocess.Popen[bytes] | None = None
        self.metrics_url = ""
        self.stop = threading.Event()
        self.enqueued: list[str] = []

    # -- the system ---------------------------------------------------------------------------
    def start(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        self.worker_log = self.out / "jobs.jsonl"
        self.worker_log.touch()
        self.cluster: KubeCluster = start_cluster(
            Path(tempfile.mkdtemp(prefix="autozero-chaos-")), audit_policy=AUDIT_POLICY
        )
        self.redis = RedisServer()
        self.redis.start()
        self.relay = TcpRelay(self.redis.port)
        self.queue = redis.Redis.from_url(self.redis.url, socket_timeout=5)
        worker = [
            str(Path(sys.executable).with_name("rq")), "worker", "--url", self.redis.url,
            "--path", str(ROOT / "benchmarks"), "--logging_level", "WARNING",
        ]  # fmt: skip
        env = {**os.environ, "CHAOS_WORKER_LOG": str(self.worker_log)}
        self.emulator = EmulatorServer(
            settings=Settings(
                operation_seconds=0.5,
                instance_boot_seconds=0.5,
                instance_command=[*worker, "mig"],
                instance_env={"CHAOS_WORKER_LOG": str(self.worker_log)},
            )
        ).start()
        self.compute = compute_client(self.emulator.api_endpoint)
        create_mig(self.compute, PROJECT, MIG, zone=ZONE)
        self.api = new_client_from_config(config_file=str(self.cluster.kubeconfig))
        self.api.user_agent = "chaos-campaign"  # its hand scaling, told apart in the audit log
        self.cluster.kubectl_run(
            "apply", "-f", str(ROOT / "crds" / "scalingpolicies.autozero.dev.yaml")
        )
        self.cluster.wait_established("scalingpolicies.autozero.dev")
        k8s.CoreV1Api(self.api).create_namespace(
            k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=NAMESPACE))
        )
        relayed = f"redis://127.0.0.1:{self.relay.port}/0"
        create_secret(self.api, NAMESPACE, "rq", {"url": relayed})
        create_worker_deployment(self.api, NAMESPACE, "dep")
        self.apply(self.gce_policy(3))
        self.apply(policy(*DEP_POLICY))
        self.followers = Followers([*worker, "dep"], env, lambda: self.size("dep"))
        self.followers.thread.start()
        self.serving = self.start_operator()  # the first operator: its start is not judged
        self.sampler = threading.Thread(target=self._sample, name="sampler", daemon=True)
        self.sampler.start()
        self.scraper = threading.Thread(target=self._scrape, name="scraper", daemon=True)
        self.scraper.start()

    def close(self) -> None:
        self.stop.set()
        if self.operator is not None and self.operator.poll() is None:
            self.operator.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.operator.wait(timeout=30)
            if self.operator.poll() is None:
                self.operator.kill()
                self.operator.wait(timeout=10)
        for close in (
            getattr(self, "followers", None) and self.followers.close,
            getattr(self, "emulator", None) and self.emulator.stop,
            getattr(self, "relay", None) and self.relay.close,
            getattr(self, "redis", None) and self.redis.stop,
            getattr(self, "cluster", None) and self.cluster.stop,
        ):
            if close:
                close()

    def apply(self, manifest: dict[str, Any]) -> None:
        self.cluster.kubectl_run("apply", "-f", "-", input_text=yaml.safe_dump(manifest))

    def start_operator(self) -> float:
        """Start the operator; return when its /metrics answers (the time)."""
        port = free_port()
        self.metrics_url = f"http://127.0.0.1:{port}/metrics"
        log = (self.out / "operator.log").open("ab")
        args = [
            *("--kubeconfig", str(self.cluster.kubeconfig), "--metrics-port", str(port)),
            *("--namespace", NAMESPACE, "--gce-endpoint", self.emulator.api_endpoint),
            *("--gce-allow", f"{NAMESPACE}={PROJECT}"),
        ]
        self.operator = subprocess.Popen(
            [sys.executable, "-m", "autozero.cli", "operator", *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(self.tree / "operator"), "PYTHONUNBUFFERED": "1"},
        )
        log.close()
        wait_for(self._metrics_answer, timeout=120, interval=0.1)
        return time.time()

    def _metrics_answer(self) -> bool:
        try:
            with urllib.request.urlopen(self.metrics_url, timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def gce_policy(self, maximum: int) -> dict[str, Any]:
        handoff = gce_autoscaler(maximum) if self.handoff else None
        return policy(*GCE_POLICY, maximum=maximum, handoff=handoff)

    def size(self, group: str) -> int:
        if group == "mig":
            state = self.emulator.control("state", method="GET")
            return int(next(g["targetSize"] for g in state["groups"] if g["name"] == MIG))
        scale = k8s.AppsV1Api(self.api).read_namespaced_deployment_scale(
            "dep", NAMESPACE, _request_timeout=CALL_TIMEOUT
        )
        return int(scale.spec.replicas or 0)

    def work(self, queue: str) -> int:
        """Jobs queued or running on `queue`, as RQ keeps them (what the workers see)."""
        pipe = self.queue.pipeline()
        pipe.llen(f"rq:queue:{queue}")
        pipe.zcard(f"rq:wip:{queue}")
        queued, started = pipe.execute()
        return int(queued) + int(started)

    def _sample(self) -> None:
        while not self.stop.wait(0.25):
            with contextlib.suppress(Exception):  # the apiserver restarting: no sample
                sizes = {g: self.size(g) for g in ("mig", "dep")}
                if self.handoff:
                    state = self.emulator.control("state", method="GET")["groups"]
                    mig = next(g for g in state if g["name"] == MIG)
                    sizes["autoscaler"] = int(bool(mig.get("status", {}).get("autoscaler")))
                work = {g: self.work(g) for g in ("mig", "dep")}
                self.samples.append((time.time(), sizes, work))

    def _scrape(self) -> None:
        """Twice a second, when each policy was last evaluated, from the operator's /metrics (a
        restarting operator answers nothing: no scrape)."""
        while not self.stop.wait(0.5):
            try:
                with urllib.request.urlopen(self.metrics_url, timeout=2) as response:
                    text = response.read().decode()
            except OSError:
                continue
            self.evaluations.append((time.time(), last_evaluations(text)))

    # -- work ---------------------------------------------------------------------------------
    def wave(self) -> None:
        from rq import Queue

        for queue in ("mig", "dep"):
            rq_queue = Queue(queue, connection=self.queue)
            for _ in range(self.jobs_rng.randint(1, 4)):
                job = f"{queue}-{uuid.UUID(int=self.jobs_rng.getrandbits(128)).hex[:12]}"
                seconds = round(self.jobs_rng.uniform(1.0, 3.0), 2)
                rq_queue.enqueue("chaos_jobs.work", job, seconds, job_timeout=60)
                self.enqueued.append(job)

    # -- faults -------------------------------------------------------------------------------
    def inject(self, kind: str, rng: random.Random | None = None) -> Fault:
        fault = Fault(kind, time.time())
        rng = rng or self.rng
        if kind in ("operator-sigkill", "operator-sigterm"):
            assert self.operator is not None
            self.operator.send_signal(signal.SIGKILL if kind.endswith("kill") else signal.SIGTERM)
            try:
                self.operator.wait(timeout=STOP_GRACE)
            except subprocess.TimeoutExpired:
                self.report.violations.append(
                    Violation(
                        "exits on SIGTERM",
                        f"the operator (pid {self.operator.pid}) still ran {STOP_GRACE:.0f} s "
                        "after SIGTERM; killed (its log: operator.log)",
                    )
                )
                self.operator.kill()
                self.operator.wait(timeout=30)
            time.sleep(rng.uniform(0.5, 3.0))
            fault.ended = time.time()
            fault.serving_again = self.start_operator()
            return fault
        if kind == "apiserver-restart":
            self.cluster.restart_apiserver()
        elif kind == "redis-cut":
            self.relay.cut()
            time.sleep(rng.uniform(2.0, 6.0))
            self.relay.restore()
            self.cuts.append((fault.started, time.time()))
        elif kind == "compute-errors":
            self.emulator.control(
                "faults", {"rate": 0.7, "codes": [429, 503], "seed": rng.randrange(1 << 30)}
            )
            time.sleep(rng.uniform(2.0, 6.0))
            self.emulator.control("faults", {})
        elif kind == "compute-latency":
            self.emulator.control("faults", {"latencyMs": rng.randint(2000, 5000)})
            time.sleep(rng.uniform(3.0, 8.0))
            self.emulator.control("faults", {})
        elif kind == "compute-failed-ops":
            self.emulator.control("settings", {"failedOperations": 0.7})
            time.sleep(rng.uniform(2.0, 6.0))
            self.emulator.control("settings", {"failedOperations": 0.0})
        elif kind == "policy-edit":
            self.apply(self.gce_policy(rng.randint(1, 4)))
        elif kind == "policy-delete":
            self.cluster.kubectl_run("delete", "scalingpolicy", "dep", "-n", NAMESPACE)
            time.sleep(rng.uniform(0.5, 2.0))
            self.apply(policy(*DEP_POLICY))
        elif kind == "scale-by-hand":
            k8s.AppsV1Api(self.api).patch_namespaced_deployment_scale(
                "dep",
                NAMESPACE,
                {"spec": {"replicas": rng.randint(0, 3)}},
                _request_timeout=CALL_TIMEOUT,
            )
        fault.ended = time.time()
        fault.serving_again = fault.ended
        return fault

    @staticmethod
    def apart(first: str, second: str) -> bool:
        """Whether two kinds of fault may be injected at once."""
        subjects = frozenset({SUBJECT[first], SUBJECT[second]})
        return len(subjects) == 2 and subjects not in APART

    def together(self, first: str, second: str) -> list[Fault]:
        """Two faults at once, the second begun 0-1 s after the first; the system is judged
        once both have ended."""
        lag = self.rng.uniform(0.0, 1.0)
        # Each fault's parameters from its own stream, seeded from the campaign's: the schedule
        # replays whichever thread draws first.
        streams = [random.Random(self.rng.randrange(1 << 30)) for _ in range(2)]
        faults: list[Fault] = []
        thread = threading.Thread(target=lambda: faults.append(self.inject(first, streams[0])))
        thread.start()
        time.sleep(lag)
        second_fault = self.inject(second, streams[1])
        thread.join()
        both = [*faults, second_fault]
        end = max(f.serving_again for f in both)
        for fault in both:
            fault.serving_again = end
            fault.together = True
        return both

    def run(self) -> Report:
        started = time.time()
        next_wave = 0.0
        while len(self.report.faults) < self.fault_count:
            deadline = time.time() + self.rng.uniform(0.5, 1.5) * self.gap
            while time.time() < deadline:
                if time.time() >= next_wave:
                    self.wave()
                    # Now and then a quiet spell longer than idleFor: the groups go to sleep and
                    # wake again, so faults also meet sleeps, wakes and the jobs around them.
                    quiet = self.jobs_rng.random() < 0.3
                    pause = self.jobs_rng.uniform(8.0, 14.0) if quiet else 0.0
                    next_wave = time.time() + self.jobs_rng.uniform(2.0, 6.0) + pause
                time.sleep(0.2)
            kind = self.rng.choice(FAULT_KINDS)
            partners = [k for k in FAULT_KINDS if self.apart(kind, k)]
            if self.rng.random() < OVERLAP and len(self.report.faults) + 2 <= self.fault_count:
                self.report.faults.extend(self.together(kind, self.rng.choice(partners)))
            else:
                self.report.faults.append(self.inject(kind))
            kinds = " + ".join(f.kind for f in self.report.faults if f.started >= deadline)
            print(f"[chaos] {len(self.report.faults)}/{self.fault_count} {kinds}", flush=True)
        # The end: the last jobs, every one processed, both groups back at 0.
        self.wave()
        with contextlib.suppress(AssertionError):
            wait_for(lambda: len(self.ended()) >= len(self.enqueued), timeout=180, interval=1)
        with contextlib.suppress(AssertionError):
            wait_for(
                lambda: self.size("mig") == 0 and self.size("dep") == 0,
                timeout=IDLE + 3 * INTERVAL + 30,
                interval=0.5,
            )
        self.report.seconds = time.time() - started
        self.check()
        self.keep_evidence()  # after the check: the faults' convergence times are known
        return self.report

    def keep_evidence(self) -> None:
        """The Events (autozero's own account, to read beside the evidence), the samples and
        the fault times, in the output directory."""
        events = k8s.CoreV1Api(self.api).list_namespaced_event(NAMESPACE).items
        lines = sorted(
            f"{e.last_timestamp or e.event_time} {e.involved_object.name} {e.reason}: {e.message}"
            for e in events
        )
        (self.out / "events.txt").write_text("\n".join(lines) + "\n")
        with (self.out / "samples.jsonl").open("w") as out:
            for at, sizes, work in self.samples:
                out.write(json.dumps({"at": at, "size": sizes, "work": work}) + "\n")
        with (self.out / "faults.jsonl").open("w") as out:
            for fault in self.report.faults:
                out.write(json.dumps(fault.__dict__) + "\n")
        with (self.out / "evaluations.jsonl").open("w") as out:
            for at, last in self.evaluations:
                out.write(json.dumps({"at": at, "last_evaluation": last}) + "\n")
        with (self.out / "compute.jsonl").open("w") as out:  # the emulator's request log
            for call in self.emulator.control("requests", method="GET")["requests"]:
                out.write(json.dumps(call) + "\n")

    # -- evidence and invariants -------------------------------------------------------------
    def job_events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.worker_log.read_text().splitlines() if line]

    def ended(self) -> set[str]:
        return {e["job"] for e in self.job_events() if e["event"] == "end"}

    def resizes(self) -> list[tuple[float, str, int, str]]:
        """(time, group, size, evidence) of every accepted scale write: MIG resizes from the
        emulator's log, Deployment /scale writes from the apiserver's audit log."""
        found: list[tuple[float, str, int, str]] = []
        for entry in self.emulator.control("requests", method="GET")["requests"]:
            if entry.get("api") == "instanceGroupManagers.resize" and entry["status"] == 200:
                query = dict(p.split("=", 1) for p in entry["query"].split("&") if "=" in p)
                # An accepted resize whose operation then failed changed nothing.
                group = "mig-failed" if self.operation_failed(entry.get("operation")) else "mig"
                found.append(
                    (entry["at"], group, int(query["size"]), f"emulator: {json.dumps(entry)}")
                )
        assert self.cluster.audit_log is not None
        for line in self.cluster.audit_log.read_text().splitlines():
            event = json.loads(line)
            status = (event.get("responseStatus") or {}).get("code")
            body = event.get("requestObject") or {}
            replicas = (body.get("spec") or {}).get("replicas")
            if event.get("stage") != "ResponseComplete" or status != 200 or replicas is None:
                continue
            import datetime as dt

            at = dt.datetime.fromisoformat(event["requestReceivedTimestamp"].replace("Z", "+00:00"))
            agent = str(event.get("userAgent", ""))
            evidence = (
                f"audit: {at.isoformat()} {event['verb']} replicas={replicas} by {agent[:40]}"
            )
            group = (
                "dep" if "autozero" in agent.lower() or "python" in agent.lower() else "dep-hand"
            )
            found.append((at.timestamp(), group, int(replicas), evidence))
        return sorted(found)

    def operation_failed(self, name: str | None) -> bool:
        """Whether a Compute operation ended in error, as the API itself tells (operations.get)."""
        if not name:
            return False
        operation = (
            self.compute.zoneOperations()
            .get(project=PROJECT, zone=ZONE, operation=name)
            .execute(num_retries=3)
        )
        return bool(operation.get("error"))

    def check(self) -> None:
        report = self.report
        events = self.job_events()
        started: dict[str, dict[str, Any]] = {}
        ended: dict[str, dict[str, Any]] = {}
        for event in events:
            (started if event["event"] == "start" else ended)[event["job"]] = event
        report.jobs, report.processed = len(self.enqueued), len(set(self.enqueued) & set(ended))
        for job in self.enqueued:
            if job not in ended:
                how = f"started on {started[job]['worker']}" if job in started else "never started"
                report.violations.append(Violation("every job processed", f"job {job}: {how}"))
        resizes = self.resizes()
        report.evidence = {
            "job log lines": len(events),
            "MIG resizes": sum(1 for r in resizes if r[1] == "mig"),
            "MIG resizes whose operation failed": sum(1 for r in resizes if r[1] == "mig-failed"),
            "autozero Deployment scale writes": sum(1 for r in resizes if r[1] == "dep"),
            "hand scale writes": sum(1 for r in resizes if r[1] == "dep-hand"),
            "samples": len(self.samples),
        }
        # 1. never 0 while a job of the group is running
        for at, group, size, evidence in resizes:
            if size != 0 or group in ("dep-hand", "mig-failed"):
                continue
            running = [
                j
                for j, s in started.items()
                if j.startswith(group) and s["at"] < at and ended.get(j, {"at": 1e18})["at"] > at
            ]
            if running:
                report.violations.append(
                    Violation(
                        "never 0 while a job runs", f"{evidence[:300]} while {running[0]} ran"
                    )
                )
        # 2. never scaled down while the source reads failed (and one interval after)
        last: dict[str, int] = defaultdict(int)
        for at, group, size, evidence in resizes:
            if group == "mig-failed":
                continue
            target = "dep" if group == "dep-hand" else group
            if group != "dep-hand" and size < last[target]:
                for cut_start, cut_end in self.cuts:
                    if cut_start <= at <= cut_end + INTERVAL:
                        report.violations.append(
                            Violation(
                                "no scale-down during a failing read",
                                f"{evidence[:300]} (from {last[target]}; reads cut "
                                f"{cut_start:.1f}-{cut_end:.1f})",
                            )
                        )
            last[target] = size
        # 4. no duplicated resize: two accepted resizes of the MIG to one size in a row
        previous: tuple[float, int] | None = None
        for at, group, size, evidence in resizes:
            if group != "mig":
                continue
            if previous is not None and previous[1] == size:
                report.violations.append(
                    Violation(
                        "no duplicated resize", f"{evidence[:300]} (same size as {previous[0]:.2f})"
                    )
                )
            previous = (at, size)
        # 3. converged within 3 intervals of each fault: every group with work has a replica
        self.judge_convergence()
        # 6. no policy starved
        self.judge_starvation()

    def judge_convergence(self) -> None:
        report = self.report
        calls = self.emulator.control("requests", method="GET")["requests"]
        for n, fault in enumerate(report.faults):
            if fault.kind == "compute-latency":
                # A call begun under the latency carries it after the fault's end: the runtime
                # can neither hurry it nor, without risking a second writer, pass beside it.
                fault.slow_until = max(
                    (c["answered"] for c in calls if c["at"] <= fault.ended < c["answered"]),
                    default=0.0,
                )
                fault.serving_again = max(fault.serving_again, fault.slow_until)
            bound = fault.serving_again + 3 * INTERVAL
            following = report.faults[n + 1].started if n + 1 < len(report.faults) else math.inf
            after = [s for s in self.samples if fault.serving_again <= s[0] <= following]
            good = next((t for t, sizes, work in after if converged(sizes, work)), None)
            if good is not None:
                fault.converged_after = good - fault.serving_again
            if good is not None and good <= bound:
                continue
            if following < bound:  # cut short by the next fault: judged with it
                fault.judged_with_next = True
                fault.converged_after = None
                continue
            report.violations.append(
                Violation(
                    "converged within 3 intervals",
                    f"{fault.kind} at {fault.started:.1f}: "
                    + (f"{fault.converged_after:.1f} s" if good is not None else "never"),
                )
            )

    def judge_starvation(self) -> None:
        """From its first evaluation on, outside the faults and their 3 intervals of grace,
        every policy's last evaluation is at most 2 intervals old at every scrape. A restarted
        operator's first evaluations are not judged here but measured (`first_evaluation`):
        building every policy again takes it longer than 3 intervals on this test ground."""
        unhealthy = [(0.0, self.serving + 3 * INTERVAL)]
        for fault in self.report.faults:
            end = fault.serving_again + 3 * INTERVAL
            if fault.kind.startswith("operator-"):
                first = next(
                    (
                        at
                        for at, last in self.evaluations
                        if at >= fault.serving_again
                        and all(last.get(f"{NAMESPACE}/{n}", 0.0) >= fault.ended for n in POLICIES)
                    ),
                    None,
                )
                if first is not None:
                    fault.first_evaluation = first - fault.serving_again
                    end = max(end, first)
            unhealthy.append((fault.started, end))
        starved: set[str] = set()
        begun: set[str] = set()  # policies evaluated once: the first start is not judged
        for at, last in self.evaluations:
            begun |= {name for name in POLICIES if f"{NAMESPACE}/{name}" in last}
            if any(start <= at <= end for start, end in unhealthy):
                continue
            for name in POLICIES:
                seen = last.get(f"{NAMESPACE}/{name}")
                if name in starved or name not in begun:
                    continue
                if seen is not None and at - seen <= 2 * INTERVAL:
                    continue
                starved.add(name)
                how = "no series" if seen is None else f"{at - seen:.1f} s old"
                self.report.violations.append(
                    Violation(
                        "no policy starved",
                        f"{LAST_EVALUATION} of {NAMESPACE}/{name}: {how} at the scrape of {at:.1f}",
                    )
                )
        self.report.evidence["metrics scrapes"] = len(self.evaluations)


def last_evaluations(text: str) -> dict[str, float]:
    """`namespace/policy` -> the value of its last-evaluation gauge, from a /metrics page."""
    found: dict[str, float] = {}
    for line in text.splitlines():
        if not line.startswith(LAST_EVALUATION + "{"):
            continue
        labels, _, value = line[len(LAST_EVALUATION) + 1 :].rpartition("} ")
        pairs = {k: v.strip('"') for k, _, v in (p.partition("=") for p in labels.split(","))}
        found[f"{pairs.get('namespace')}/{pairs.get('policy')}"] = float(value)
    return found


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=22)
    parser.add_argument("--faults", type=int, default=100)
    parser.add_argument("--gap", type=float, default=4.0, help="mean seconds between faults")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--tree", type=Path, default=ROOT, help="run this checkout's operator")
    parser.add_argument(
        "--handoff", action="store_true", help="the MIG handed to the GCE autoscaler while awake"
    )
    args = parser.parse_args()
    out = args.out or Path.home() / ".cache" / "autozero" / "chaos" / f"seed-{args.seed}"
    campaign = Campaign(args.seed, args.faults, args.gap, out, args.tree, args.handoff)
    try:
        campaign.start()
        report = campaign.run()
    finally:
        campaign.close()
    (out / "report.json").write_text(json.dumps(report.to_json(), indent=2))
    print(json.dumps(report.to_json(), indent=2) if args.json else report.text())
    return 1 if report.violations else 0


if __name__ == "__main__":
    sys.exit(main())
