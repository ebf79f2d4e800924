"""A chaos campaign: real jobs, random faults at seeded times, invariants from independent evidence.

Run: .venv/bin/python benchmarks/chaos.py --seed 22 --faults 100 [--gap 4] [--out DIR] [--json]
     [--handoff] [--replicas N] [--pods] [--standby] [--kinds K,K]

With `--replicas N` the operator runs as N sharded replicas (`--sharding`, each its own Lease,
SHARD_LEASE's timings); an operator fault stops the replica serving a policy drawn at random
(as its status.servedBy names it) and starts a new one under a new identity, as a Deployment
would. The fault lasts until its policies may move: the killed replica's Lease run out, or the
stopped one's deleted, and a round of the others.
With `--standby` `mig-run` sleeps into a standby pool of suspended VMs and wakes from it; a
move into the pool is judged as the group going to 0.

Four groups, each woken by its own queue:
- `mig`, a GCE managed instance group in the emulator driven by the operator, whose instances each
  run a real `rq worker` (autozero's `rq` source, through a TCP relay the campaign can cut);
- `dep`, a Deployment driven by the operator, whose replicas the campaign follows with `rq worker`
  processes, or, with `--pods`, runs as Pods of `rq worker` on a real node (containerd, a kubelet);
- `sts`, a StatefulSet driven by the operator and fed by a RabbitMQ queue (autozero's `rabbitmq`
  source over the management API), followed by RabbitMQ consumers (chaos_workers.py: prefetch 1,
  ack after the job, reconnecting after a broker restart; with `--pods`, Pods of them);
- `mig-run`, a second MIG driven by `autozero run` (a child process with a --state file and its
  own /metrics) and fed by an MRQ raw queue (the `mrq` source: the Redis list through the same
  relay, FerretDB's `mrq_jobs` for in flight), whose instances run MRQ workers (chaos_workers.py).
Waves of jobs of 1-3 s keep work often in flight, and quiet spells of 8-14 s (one wave in three)
let the groups sleep and wake under the faults. Operator and runner poll every second. Faults
come one after another, at seeded random gaps, each drawn from: SIGKILL or SIGTERM of the
operator or of the runner (restarted after a pause, the runner with its --state file), a
kube-apiserver restart, the Redis relay cut (the rq and mrq reads fail), a RabbitMQ restart (the
broker stopped and started again on its ports, durable queue, persistent messages: the sts reads
fail meanwhile), a burst of Compute 429/503 answers, Compute latency of 2-5 s, Compute operations
that end in error, the GCE policy edited, the Deployment policy deleted and created again, and
the Deployment scaled by hand; one fault in four comes with a second one of another subject at
the same time. Then the faults stop, the waves stop, and every job must be processed and every
group back at 0.

Invariants (chaos_invariants.py), from evidence autozero does not write: the emulator's request
log (resizes, the group named by the request path), the apiserver's audit log (writes to
deployments/scale and statefulsets/scale, told apart by objectRef), the workers' own job logs
(chaos_jobs.py) and the campaign's own clock for its faults:
1. never scaled to 0 while a job of the group was running (and no job cut short). RabbitMQ's
   management API, which the `rabbitmq` source reads, shows a job taken from the queue up to
   2 s late (its counts come from samples): a scale of `sts` to 0 under a job the API had not
   shown by one read (1.5 s) before the write is counted apart if the job finished (the
   consumers finish the job in hand on SIGTERM), a violation if it was cut short; the campaign
   reads the API beside the source, four times a second, for this evidence;
2. never scaled down while the group's source reads were failing (one interval after too);
3. after each fault, converged within 3 polling intervals (from the fault's end, from when a
   restarted operator or runner serves /metrics, or, for Compute latency, from when the last
   Compute call begun before the fault's end was answered): every group with work has a
   replica. A fault followed by the next one within those 3 intervals is judged with the next;
4. no duplicated resize: no two accepted resizes of one MIG to the same size in a row;
5. every job of every wave processed (a job redelivered by RabbitMQ may run twice);
6. no policy starved: outside the faults (and 3 intervals after each), every policy's
   `autozero_last_evaluation_timestamp_seconds` on its evaluator's /metrics (the operator's, or
   the runner's) is never more than 2 intervals old, unless its own group was written meanwhile
   (its pass waiting for its operations: served, not starved);
and the operator and the runner exit within 30 s of a SIGTERM (Kubernetes' grace period).
The report (chaos_report.py) gives the faults by kind, each violation with its first evidence
line, the worst convergence, and the seed that replays the schedule.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import redis
import urllib3
import yaml
from kubernetes import client as k8s
from kubernetes.config import new_client_from_config

ROOT = Path(__file__).resolve().parents[1]
for extra in (ROOT / "scripts", ROOT / "emulators" / "gce", ROOT / "benchmarks"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from chaos_invariants import (  # noqa: E402
    EVALUATED_BY,
    GROUPS,
    INTERVAL,
    NAMESPACE,
    Evidence,
    audit_resizes,
    emulator_resizes,
    job_group,
    judge,
    last_evaluations,
)
from chaos_report import Fault, Report, Violation  # noqa: E402
from chaos_workers import Followers  # noqa: E402
from gce_emulator import EmulatorServer, Settings  # noqa: E402
from testground.cli import positive  # noqa: E402
from testground.cli import run as run_command  # noqa: E402
from testground.gce import compute_client, create_mig  # noqa: E402
from testground.kube import (  # noqa: E402
    KubeCluster,
    TcpRelay,
    create_secret,
    create_worker_deployment,
    create_worker_statefulset,
    start_cluster,
)
from testground.mongo import FerretDBServer  # noqa: E402
from testground.process import free_port, wait_for  # noqa: E402
from testground.rabbitmq import RabbitMQServer  # noqa: E402
from testground.redis_server import RedisServer  # noqa: E402

__all__ = ["Campaign", "Fault", "Report", "Violation"]

PROJECT, ZONE, MIG, RUN_MIG = "chaos", "europe-west1-c", "mig", "mig-run"
MRQ_QUEUE = "run_raw"  # an MRQ raw queue: the name's suffix says so
IDLE = 3.0  # activation.idleFor
# The StatefulSet's idleFor: RabbitMQ's management API, which the `rabbitmq` source reads, shows
# a queue's counts up to 2 s late on the test ground (5 s with RabbitMQ's defaults), so a job
# taken and begun within that lag is invisible: with idleFor 3 s the group went to 0 under such
# jobs (seeds 22 and 23, 40 faults).
STS_IDLE = 8.0
# --replicas: the sharded replicas' Lease timings (seconds: lease, renew, retry). lease - renew,
# the allowance for a write sent before a silent replica stopped, covers the longest Compute call
# the faults make (5 s of latency); renew and retry are short so that a killed replica's policies
# move in 12 s (the flags' defaults, 15, 10, 2: 19 s).
SHARD_LEASE = ["--lease-seconds", "10", "--renew-seconds", "4", "--retry-seconds", "1"]
STOP_GRACE = 30.0  # Kubernetes' default terminationGracePeriodSeconds
CALL_TIMEOUT = 10  # seconds: the campaign's own calls to the apiserver
WORKERS = ROOT / "benchmarks" / "chaos_workers.py"
FAULT_KINDS = (
    "operator-sigkill",
    "operator-sigterm",
    "runner-sigkill",
    "runner-sigterm",
    "apiserver-restart",
    "redis-cut",
    "rabbitmq-restart",
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
    "runner-sigkill": "runner",
    "runner-sigterm": "runner",
    "apiserver-restart": "apiserver",
    "redis-cut": "redis",
    "rabbitmq-restart": "rabbitmq",
    "compute-errors": "compute",
    "compute-latency": "compute",
    "compute-failed-ops": "compute",
    "policy-edit": "apiserver-client",
    "policy-delete": "apiserver-client",
    "scale-by-hand": "apiserver-client",
}
APART = {frozenset({"apiserver", "apiserver-client"})}
OVERLAP = 0.25  # the share of faults injected together with a second one
# Whose source reads a fault makes fail: the relay carries the rq and mrq reads.
READS_FAILED = {
    "redis-cut": frozenset({"mig", "dep", "mig-run"}),
    "rabbitmq-restart": frozenset({"sts"}),
}
AUDIT_POLICY = """
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Request
    resources: [{group: apps, resources: [deployments/scale, statefulsets/scale]}]
    verbs: [update, patch]
  - level: None
"""


def policy(
    name: str,
    source: dict[str, Any],
    target: dict[str, Any],
    maximum: int = 3,
    handoff: dict[str, Any] | None = None,
    idle: float = IDLE,
) -> dict[str, Any]:
    group: dict[str, Any] = {
        "name": name,
        "target": target,
        "capacity": {"minimum": 0, "maximum": maximum, "default": 1},
        "activation": {"metric": "jobs", "idleFor": f"{idle:g}s"},
    }
    if handoff is not None:
        group["handoff"] = handoff
    return {
        "apiVersion": "autozero.dev/v1alpha1",
        "kind": "ScalingPolicy",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "pollingInterval": f"{INTERVAL:g}s",
            "metrics": [{"name": "jobs", **source}],
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


def rq_source(queue: str) -> dict[str, Any]:
    return {"rq": {"urlFrom": {"secretKeyRef": {"name": "rq", "key": "url"}}, "queue": queue}}


def workload(kind: str, name: str) -> dict[str, Any]:
    return {"kubernetes": {"apiVersion": "apps/v1", "kind": kind, "name": name}}


def gce(group: str) -> dict[str, Any]:
    return {"gce": {"project": PROJECT, "zone": ZONE, "instanceGroupManager": group}}


DEP_POLICY = ("dep", rq_source("dep"), workload("Deployment", "dep"))
# `--handoff`: awake, the Deployment is an HPA's (created on wake, deleted before sleep). No
# metrics server runs here, so the HPA controller reads no CPU and never scales: it holds the
# group at what autozero woke it to, and the campaign judges the handoff itself.
DEP_HPA = {"hpa": {"minReplicas": 1, "maxReplicas": 3}}
# `--standby`: `mig-run` sleeps into a pool of suspended VMs (their MRQ workers' processes
# frozen, resumed as they were on wake) instead of deleting them.
STANDBY = {"mode": "Suspend", "size": 2}


def run_policy(standby: bool) -> dict[str, Any]:
    """`autozero run`'s policy: its Secrets from --secrets-dir (DIR/mrq/redis, DIR/mrq/mongodb)."""
    target = gce(RUN_MIG)
    if standby:
        target["gce"]["standby"] = STANDBY
    return policy(
        "run",
        {
            "mrq": {
                "queue": MRQ_QUEUE,
                "redis": {"urlFrom": {"secretKeyRef": {"name": "mrq", "key": "redis"}}},
                "mongodb": {"urlFrom": {"secretKeyRef": {"name": "mrq", "key": "mongodb"}}},
            }
        },
        target,
    )


class Campaign:
    def __init__(
        self,
        seed: int,
        faults: int,
        gap: float,
        out: Path,
        tree: Path = ROOT,
        handoff: bool = False,
        kinds: tuple[str, ...] = FAULT_KINDS,
        replicas: int = 1,
        pods: bool = False,
        standby: bool = False,
    ) -> None:
        self.seed, self.fault_count, self.gap, self.out = seed, faults, gap, out
        self.kinds = kinds  # the kinds drawn from (all of them but to chase one)
        self.handoff = handoff  # the MIG to the GCE autoscaler, the Deployment to an HPA
        self.tree = tree  # whose operator runs (a snapshot: a long run ignores later edits)
        # One operator, or `replicas` sharded ones ("operator/0", ...): each restart of one is a
        # new Pod, a new identity, as a Deployment's would be.
        self.operators = (
            ["operator"] if replicas == 1 else [f"operator/{n}" for n in range(replicas)]
        )
        self.identities: dict[str, str] = {}
        self.generation = 0
        # Faults, their times and parameters from one stream, the jobs from another: the
        # waves follow the wall clock, so the schedule of faults replays whatever they do.
        self.rng = random.Random(seed)
        self.jobs_rng = random.Random(seed + 1)
        self.report = Report(seed, options=[f"--gap {gap:g}"])
        self.report.options += ["--handoff"] if handoff else []
        self.report.options += [f"--replicas {replicas}"] if replicas > 1 else []
        # The Deployment's and StatefulSet's workers as Pods on a real node (containerd and a
        # kubelet), rather than processes the campaign starts for each replica.
        self.pods = pods
        self.report.options += ["--pods"] if pods else []
        self.standby = standby  # `mig-run` sleeps into a pool of suspended VMs
        self.report.options += ["--standby"] if standby else []
        self.report.options += [f"--kinds {','.join(kinds)}"] if kinds != FAULT_KINDS else []
        self.reads_failed: list[tuple[float, float, frozenset[str]]] = []
        self.samples: list[tuple[float, dict[str, int], dict[str, int]]] = []  # t, size, work
        self.sts_seen: list[tuple[float, int]] = []  # t, messages the management API showed
        self.evaluations: list[tuple[float, str, dict[str, float]]] = []  # t, by, last
        self.children: dict[str, subprocess.Popen[bytes]] = {}  # "operator", "runner"
        self.metrics_urls: dict[str, str] = {}
        self.serving: dict[str, float] = {}  # when each child first answered
        self.stop = threading.Event()
        self.enqueued: dict[str, str] = {}  # job -> group
        self.log_offset = 0  # how far `running` has read the job log
        self.open_runs: dict[str, int] = defaultdict(int)  # group -> runs begun, not ended

    # -- the system ---------------------------------------------------------------------------
    def start(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        # A run's evidence only: an output directory used before (a seed's default) starts empty.
        for old in self.out.glob("*.log"):
            old.unlink()
        self.worker_log = self.out / "jobs.jsonl"
        self.worker_log.write_text("")
        self.cluster: KubeCluster = start_cluster(audit_policy=AUDIT_POLICY, with_nodes=self.pods)
        if self.pods:
            from testground.images import build_all
            from testground.node import start_node

            self.node = start_node(self.cluster, build_all())
        self.redis = RedisServer()
        self.redis.start()
        self.relay = TcpRelay(self.redis.port)
        self.queue = redis.Redis.from_url(self.redis.url, socket_timeout=5)
        self.rabbitmq = RabbitMQServer()
        self.rabbitmq.start()
        self.declare_sts_queue()
        self.mongo = FerretDBServer()
        self.mongo.start()
        import pymongo

        self.mrq_jobs: Any = pymongo.MongoClient(
            self.mongo.url, serverSelectionTimeoutMS=5000
        ).get_default_database()["mrq_jobs"]
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
                group_commands={RUN_MIG: [sys.executable, str(WORKERS), "mrq"]},
                instance_env={
                    "CHAOS_WORKER_LOG": str(self.worker_log),
                    "CHAOS_QUEUE": MRQ_QUEUE,
                    "CHAOS_REDIS_URL": self.redis.url,
                    "CHAOS_MONGO_URL": self.mongo.url,
                },
            )
        ).start()
        self.compute = compute_client(self.emulator.api_endpoint)
        create_mig(self.compute, PROJECT, MIG, zone=ZONE)
        create_mig(self.compute, PROJECT, RUN_MIG, zone=ZONE)
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
        if self.pods:
            self.apply(self.worker_pods("dep"))
            self.apply(self.worker_pods("sts"))
        else:
            create_worker_deployment(self.api, NAMESPACE, "dep")
            create_worker_statefulset(self.api, NAMESPACE, "sts")
        self.apply(self.gce_policy(3))
        self.apply(self.dep_policy())
        self.apply(self.sts_policy())
        self.followers = (
            []
            if self.pods
            else [
                Followers("dep", [*worker, "dep"], env, lambda: self.size("dep")),
                Followers(
                    "sts",
                    [sys.executable, str(WORKERS), "rabbitmq"],
                    {**env, "CHAOS_AMQP_URL": self.rabbitmq.amqp_url, "CHAOS_QUEUE": "sts"},
                    lambda: self.size("sts"),
                ),
            ]
        )
        for followers in self.followers:
            followers.thread.start()
        secrets = self.out / "secrets" / "mrq"
        secrets.mkdir(parents=True, exist_ok=True)
        (secrets / "redis").write_text(relayed)
        (secrets / "mongodb").write_text(self.mongo.url)
        (self.out / "run-policy.yaml").write_text(yaml.safe_dump(run_policy(self.standby)))
        self.state_file = self.out / "run-state.json"
        self.state_file.unlink(missing_ok=True)
        # The first starts are not judged.
        self.serving = {"operator": max(self.start_child(who) for who in self.operators)}
        self.serving["runner"] = self.start_child("runner")
        self.sampler = threading.Thread(target=self._sample, name="sampler", daemon=True)
        self.sampler.start()
        self.scraper = threading.Thread(target=self._scrape, name="scraper", daemon=True)
        self.scraper.start()

    def close(self) -> None:
        self.stop.set()
        for child in self.children.values():
            if child.poll() is None:
                child.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.wait(timeout=30)
                if child.poll() is None:
                    child.kill()
                    child.wait(timeout=10)
        closes = [f.close for f in getattr(self, "followers", [])]
        failed: list[Exception] = []  # each stops, whatever another's stop raised
        for close in (
            *closes,
            getattr(self, "node", None) and self.node.stop,  # its Pods first: needs the apiserver
            getattr(self, "emulator", None) and self.emulator.stop,
            getattr(self, "relay", None) and self.relay.close,
            getattr(self, "redis", None) and self.redis.stop,
            getattr(self, "rabbitmq", None) and self.rabbitmq.stop,
            getattr(self, "mongo", None) and self.mongo.stop,
            getattr(self, "cluster", None) and self.cluster.stop,
        ):
            if close:
                try:
                    close()
                except Exception as exc:
                    failed.append(exc)
        if failed:
            raise failed[0]

    def worker_pods(self, group: str) -> dict[str, Any]:
        """`dep` (a Deployment of `rq worker`s) or `sts` (a StatefulSet of RabbitMQ consumers) at
        0 replicas, as Pods on the node: the worker image, on the host's network (the servers
        listen on loopback), this checkout's benchmarks/ mounted for the jobs and the consumer,
        the output directory for the job log; SIGTERM finishes the job in hand within the grace
        period, as the processes the campaign starts without a node do."""
        labels = {"app": group}
        env = [
            {"name": "CHAOS_WORKER_LOG", "value": "/out/jobs.jsonl"},
            {"name": "GCE_INSTANCE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "PYTHONPATH", "value": "/chaos:/opt/worker/lib/jobs"},
        ]
        if group == "dep":
            command: dict[str, Any] = {
                "args": ["--url", self.redis.url, "--path", "/chaos", "--logging_level", "WARNING",
                         "dep"],
            }  # fmt: skip
        else:
            command = {"command": ["python", "/chaos/chaos_workers.py", "rabbitmq"]}
            env += [
                {"name": "CHAOS_AMQP_URL", "value": self.rabbitmq.amqp_url},
                {"name": "CHAOS_QUEUE", "value": "sts"},
            ]
        mounts = {"chaos": (ROOT / "benchmarks", "/chaos"), "out": (self.out.resolve(), "/out")}
        spec: dict[str, Any] = {
            "replicas": 0,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "hostNetwork": True,
                    "terminationGracePeriodSeconds": 30,
                    "securityContext": {"runAsUser": 0},  # writes the job log the host reads
                    "volumes": [
                        {"name": name, "hostPath": {"path": str(host), "type": "Directory"}}
                        for name, (host, _) in mounts.items()
                    ],
                    "containers": [
                        {
                            "name": "worker",
                            "image": self.node.images.worker.ref,
                            "imagePullPolicy": "Never",
                            **command,
                            "env": env,
                            "volumeMounts": [
                                {"name": name, "mountPath": path}
                                for name, (_, path) in mounts.items()
                            ],
                        }
                    ],
                },
            },
        }
        if group == "sts":
            spec["serviceName"] = "sts"
        kind = "Deployment" if group == "dep" else "StatefulSet"
        return {
            "apiVersion": "apps/v1",
            "kind": kind,
            "metadata": {"name": group, "namespace": NAMESPACE},
            "spec": spec,
        }

    def apply(self, manifest: dict[str, Any]) -> None:
        self.cluster.kubectl_run("apply", "-f", "-", input_text=yaml.safe_dump(manifest))

    def declare_sts_queue(self) -> None:
        """The StatefulSet's queue: durable, so a broker restart keeps it and its messages."""
        import pika

        connection = pika.BlockingConnection(pika.URLParameters(self.rabbitmq.amqp_url))
        try:
            connection.channel().queue_declare("sts", durable=True)
        finally:
            connection.close()

    def start_child(self, who: str, *, wait: bool = True) -> float:
        """Start the operator or `autozero run`; return when its /metrics answers (the time), or
        at once without `wait`."""
        port = free_port()
        self.metrics_urls[who] = f"http://127.0.0.1:{port}/metrics"
        common = [
            *("--metrics-port", str(port), "--gce-endpoint", self.emulator.api_endpoint),
            *("--gce-allow", f"{NAMESPACE}={PROJECT}"),
        ]
        if who.startswith("operator"):
            args = [
                "operator", *common, "--kubeconfig", str(self.cluster.kubeconfig),
                "--namespace", NAMESPACE,
            ]  # fmt: skip
            if len(self.operators) > 1:
                self.identities[who] = f"op-{self.generation}"
                self.generation += 1
                args += [
                    "--sharding", "--identity", self.identities[who],
                    "--lease-namespace", NAMESPACE, *SHARD_LEASE,
                ]  # fmt: skip
        else:  # the same --state file across restarts: the runner resumes its idle clocks
            args = [
                "run", *common, "-f", str(self.out / "run-policy.yaml"),
                "--state", str(self.state_file), "--secrets-dir", str(self.out / "secrets"),
            ]  # fmt: skip
        log = (self.out / f"{who.replace('/', '-')}.log").open("ab")
        self.children[who] = subprocess.Popen(
            [sys.executable, "-m", "autozero.cli", *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(self.tree / "operator"), "PYTHONUNBUFFERED": "1"},
        )
        log.close()
        if wait:
            wait_for(lambda: self._metrics_answer(who), timeout=120, interval=0.1)
        return time.time()

    def _metrics_answer(self, who: str) -> bool:
        try:
            with urllib.request.urlopen(self.metrics_urls[who], timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def gce_policy(self, maximum: int) -> dict[str, Any]:
        handoff = gce_autoscaler(maximum) if self.handoff else None
        return policy("gce", rq_source("mig"), gce(MIG), maximum=maximum, handoff=handoff)

    def dep_policy(self) -> dict[str, Any]:
        return policy(*DEP_POLICY, handoff=DEP_HPA if self.handoff else None)

    def sts_policy(self) -> dict[str, Any]:
        source = {"rabbitmq": {"managementUrl": self.rabbitmq.management_url, "queue": "sts"}}
        return policy("sts", source, workload("StatefulSet", "sts"), idle=STS_IDLE)

    def size(self, group: str) -> int:
        if group in (MIG, RUN_MIG):
            state = self.emulator.control("state", method="GET")
            return int(next(g["targetSize"] for g in state["groups"] if g["name"] == group))
        apps = k8s.AppsV1Api(self.api)
        read = (
            apps.read_namespaced_deployment_scale
            if group == "dep"
            else apps.read_namespaced_stateful_set_scale
        )
        scale = read(group, NAMESPACE, _request_timeout=CALL_TIMEOUT)
        return int(scale.spec.replicas or 0)

    def has_hpa(self) -> bool:
        """Whether the Deployment's HPA (`--handoff`) exists."""
        listed = k8s.AutoscalingV2Api(self.api).list_namespaced_horizontal_pod_autoscaler(
            NAMESPACE, _request_timeout=CALL_TIMEOUT
        )
        return any(h.metadata.name == "autozero-dep" for h in listed.items)

    def work(self, group: str) -> int:
        """Jobs queued or running for `group`, as its queue keeps them (what the workers see)."""
        if group == "sts":
            # The ready messages as the management API shows them (late, as autozero sees them;
            # none while the broker restarts or before its first sample), and the jobs the job
            # log shows running (its unacknowledged count lags the same, and outlives the job).
            ready, _ = self.sts_counts()
            return ready + self.running("sts")
        if group == RUN_MIG:
            queued = int(self.queue.llen(f"mrq:q:{MRQ_QUEUE}"))
            return queued + int(
                self.mrq_jobs.count_documents({"queue": MRQ_QUEUE, "status": "started"})
            )
        pipe = self.queue.pipeline()
        pipe.llen(f"rq:queue:{group}")
        pipe.zcard(f"rq:wip:{group}")
        queued, started = pipe.execute()
        return int(queued) + int(started)

    def sts_counts(self) -> tuple[int, int]:
        """The StatefulSet queue's ready and unacknowledged messages as the management API shows
        them (what the `rabbitmq` source reads), recorded for the judge; none while it answers
        nothing."""
        try:
            queue = self.rabbitmq.api("queues/%2F/sts")
        except OSError:
            return 0, 0
        ready, unacked = (
            int(queue.get(k, 0)) for k in ("messages_ready", "messages_unacknowledged")
        )
        if "messages_ready" in queue:
            self.sts_seen.append((time.time(), ready + unacked))
        return ready, unacked

    def sts_sampled(self) -> bool:
        """Whether the management API shows the StatefulSet's queue's counts again."""
        try:
            return "messages_ready" in self.rabbitmq.api("queues/%2F/sts")
        except OSError:
            return False

    def running(self, group: str) -> int:
        """Runs of `group`'s jobs begun and not ended, from the job log (read on from where the
        last call stopped)."""
        with self.worker_log.open("rb") as log:
            log.seek(self.log_offset)
            for line in log:
                if not line.endswith(b"\n"):
                    break  # a line still being written: the next call reads it
                self.log_offset += len(line)
                event = json.loads(line)
                self.open_runs[job_group(event["job"])] += 1 if event["event"] == "start" else -1
        return self.open_runs[group]

    def _sample(self) -> None:
        while not self.stop.wait(0.25):
            with contextlib.suppress(Exception):  # a server restarting: no sample
                sizes = {g: self.size(g) for g in GROUPS}
                if self.handoff:
                    state = self.emulator.control("state", method="GET")["groups"]
                    mig = next(g for g in state if g["name"] == MIG)
                    sizes["autoscaler"] = int(bool(mig.get("status", {}).get("autoscaler")))
                    sizes["hpa"] = int(self.has_hpa())
                work = {g: self.work(g) for g in GROUPS}
                self.samples.append((time.time(), sizes, work))

    def _scrape(self) -> None:
        """Twice a second, when each policy was last evaluated, from the operator's and the
        runner's /metrics (one restarting answers nothing: no scrape of it). Sharded replicas
        make one scrape: each policy's latest evaluation by any of them (one that lost a policy
        keeps its old series)."""
        while not self.stop.wait(0.5):
            merged: dict[str, float] = {}
            answered = False
            for who, url in list(self.metrics_urls.items()):
                try:
                    with urllib.request.urlopen(url, timeout=2) as response:
                        text = response.read().decode()
                except OSError:
                    continue
                if not who.startswith("operator"):
                    self.evaluations.append((time.time(), who, last_evaluations(text)))
                    continue
                answered = True
                for key, at in last_evaluations(text).items():
                    merged[key] = max(at, merged.get(key, 0.0))
            if answered:
                self.evaluations.append((time.time(), "operator", merged))

    # -- work ---------------------------------------------------------------------------------
    def wave(self) -> None:
        import pika
        from rq import Queue

        jobs: dict[str, list[tuple[str, float]]] = {}
        for group in GROUPS:
            jobs[group] = [
                (
                    f"{group}/{uuid.UUID(int=self.jobs_rng.getrandbits(128)).hex[:12]}",
                    round(self.jobs_rng.uniform(1.0, 3.0), 2),
                )
                for _ in range(self.jobs_rng.randint(1, 4))
            ]
        for group in ("mig", "dep"):
            rq_queue = Queue(group, connection=self.queue)
            for job, seconds in jobs[group]:
                rq_queue.enqueue("chaos_jobs.work", job, seconds, job_timeout=60)
        self.queue.rpush(f"mrq:q:{MRQ_QUEUE}", *[f"{j} {s}" for j, s in jobs[RUN_MIG]])
        connection = pika.BlockingConnection(pika.URLParameters(self.rabbitmq.amqp_url))
        try:
            channel = connection.channel()
            channel.confirm_delivery()  # published means kept: the broker confirmed each
            for job, seconds in jobs["sts"]:
                channel.basic_publish(
                    "",
                    "sts",
                    f"{job} {seconds}".encode(),
                    pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent),
                )
        finally:
            connection.close()
        self.enqueued.update({job: group for group, js in jobs.items() for job, _ in js})

    # -- faults -------------------------------------------------------------------------------
    def restart_child(self, who: str, kind: str, fault: Fault, rng: random.Random) -> None:
        """SIGKILL or SIGTERM the operator (one of the sharded replicas: the one serving a
        policy drawn at random) or the runner, wait, start it again."""
        if who == "operator" and len(self.operators) > 1:
            who = self.serving_replica(rng.choice(EVALUATED_BY["operator"]))
            fault.subject = self.identities[who]
        child = self.children[who]
        child.send_signal(signal.SIGKILL if kind.endswith("kill") else signal.SIGTERM)
        try:
            child.wait(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired:
            self.report.violations.append(
                Violation(
                    "exits on SIGTERM",
                    f"the {who} (pid {child.pid}) still ran {STOP_GRACE:.0f} s after SIGTERM; "
                    f"killed (its log: {who.replace('/', '-')}.log)",
                )
            )
            child.kill()
            child.wait(timeout=30)
        gone = time.time()
        time.sleep(rng.uniform(0.5, 3.0))
        fault.ended = time.time()
        fault.serving_again = self.start_child(who)
        if who != "operator" and who.startswith("operator"):
            # Its policies may move once the others have seen its Lease run out (SIGKILL: the
            # lease after they last saw it renewed, at most a round before the kill) or deleted
            # (SIGTERM: at their next round), and a round later, once their claims are checked
            # (docs/concepts.md, Sharded replicas).
            lease, _, retry = (float(v) for v in SHARD_LEASE[1::2])
            moves = gone + (lease if kind.endswith("kill") else 0.0) + 3 * retry
            fault.serving_again = max(fault.serving_again, moves)

    def serving_replica(self, name: str) -> str:
        """The replica whose identity the policy's status.servedBy names (or, none named or the
        apiserver restarting, the first)."""
        try:
            policy: dict[str, Any] = k8s.CustomObjectsApi(self.api).get_namespaced_custom_object(
                "autozero.dev", "v1alpha1", NAMESPACE, "scalingpolicies", name,
                _request_timeout=CALL_TIMEOUT,
            )  # fmt: skip
        except (k8s.ApiException, OSError, urllib3.exceptions.HTTPError):
            return self.operators[0]
        served_by = (policy.get("status") or {}).get("servedBy")
        return next((w for w, i in self.identities.items() if i == served_by), self.operators[0])

    def inject(self, kind: str, rng: random.Random | None = None) -> Fault:
        fault = Fault(kind, time.time())
        rng = rng or self.rng
        if kind.startswith(("operator-", "runner-")):
            self.restart_child(kind.split("-", 1)[0], kind, fault, rng)
            return fault
        if kind == "apiserver-restart":
            self.cluster.restart_apiserver()
        elif kind == "redis-cut":
            self.relay.cut()
            time.sleep(rng.uniform(2.0, 6.0))
            self.relay.restore()
        elif kind == "rabbitmq-restart":
            self.rabbitmq.stop()
            time.sleep(rng.uniform(0.5, 2.0))
            self.rabbitmq.start()
            fault.ended = time.time()
            # The source reads fail (no data) until the management API has sampled the queue
            # again: the fault lasts until then.
            wait_for(self.sts_sampled, timeout=60, interval=0.2)
            fault.serving_again = time.time()
            self.reads_failed.append((fault.started, fault.serving_again, READS_FAILED[kind]))
            return fault
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
            self.apply(self.dep_policy())
        elif kind == "scale-by-hand":
            k8s.AppsV1Api(self.api).patch_namespaced_deployment_scale(
                "dep",
                NAMESPACE,
                {"spec": {"replicas": rng.randint(0, 3)}},
                _request_timeout=CALL_TIMEOUT,
            )
        fault.ended = time.time()
        fault.serving_again = fault.ended
        if kind in READS_FAILED:
            self.reads_failed.append((fault.started, fault.ended, READS_FAILED[kind]))
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
            kind = self.rng.choice(self.kinds)
            partners = [k for k in self.kinds if self.apart(kind, k)]
            room = len(self.report.faults) + 2 <= self.fault_count
            if self.rng.random() < OVERLAP and room and partners:
                self.report.faults.extend(self.together(kind, self.rng.choice(partners)))
            else:
                self.report.faults.append(self.inject(kind))
            kinds = " + ".join(f.kind for f in self.report.faults if f.started >= deadline)
            print(f"[chaos] {len(self.report.faults)}/{self.fault_count} {kinds}", flush=True)
        # The end: the last jobs, every one processed, every group back at 0.
        self.wave()
        with contextlib.suppress(AssertionError):
            wait_for(lambda: len(self.ended()) >= len(self.enqueued), timeout=180, interval=1)
        with contextlib.suppress(AssertionError):
            wait_for(
                lambda: all(self.size(g) == 0 for g in GROUPS),
                timeout=STS_IDLE + 3 * INTERVAL + 30,
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
        with (self.out / "sts-seen.jsonl").open("w") as out:  # what the management API showed
            for at, messages in self.sts_seen:
                out.write(json.dumps({"at": at, "messages": messages}) + "\n")
        with (self.out / "faults.jsonl").open("w") as out:
            for fault in self.report.faults:
                out.write(json.dumps(fault.__dict__) + "\n")
        with (self.out / "evaluations.jsonl").open("w") as out:
            for at, by, last in self.evaluations:
                out.write(json.dumps({"at": at, "by": by, "last_evaluation": last}) + "\n")
        with (self.out / "compute.jsonl").open("w") as out:  # the emulator's request log
            for call in self.emulator.control("requests", method="GET")["requests"]:
                out.write(json.dumps(call) + "\n")

    # -- evidence -----------------------------------------------------------------------------
    def job_events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.worker_log.read_text().splitlines() if line]

    def ended(self) -> set[str]:
        return {e["job"] for e in self.job_events() if e["event"] == "end"}

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
        calls = self.emulator.control("requests", method="GET")["requests"]
        assert self.cluster.audit_log is not None
        audit = self.cluster.audit_log.read_text().splitlines()
        evidence = Evidence(
            jobs=self.enqueued,
            events=self.job_events(),
            resizes=emulator_resizes(calls, self.operation_failed) + audit_resizes(audit),
            reads_failed=self.reads_failed,
            samples=self.samples,
            seen={"sts": self.sts_seen},
            evaluations=self.evaluations,
            calls=calls,
            serving=self.serving,
        )
        judge(evidence, self.report)


def main() -> int:
    """`make chaos`: a failure to set the campaign up is one line, never a traceback."""
    return run_command(_main, "chaos")


def _main() -> int:
    parser = argparse.ArgumentParser(prog="make chaos")
    parser.add_argument("--seed", type=int, default=22)
    parser.add_argument("--faults", type=positive(int), default=100)
    parser.add_argument(
        "--gap", type=positive(float), default=4.0, help="mean seconds between faults"
    )
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--tree", type=Path, default=ROOT, help="run this checkout's operator")
    parser.add_argument(
        "--handoff",
        action="store_true",
        help="awake, the MIG is handed to the GCE autoscaler and the Deployment to an HPA",
    )
    parser.add_argument(
        "--pods",
        action="store_true",
        help="run the Deployment's and StatefulSet's workers as Pods on a real node",
    )
    parser.add_argument(
        "--replicas",
        type=positive(int),
        default=1,
        help="run the operator as this many sharded replicas (--sharding); an operator fault "
        "stops the one serving a policy drawn at random",
    )
    parser.add_argument(
        "--standby",
        action="store_true",
        help="autozero run's MIG sleeps into a standby pool of suspended VMs (resumed on wake)",
    )
    parser.add_argument(
        "--kinds",
        default=",".join(FAULT_KINDS),
        help="the kinds of fault to draw from, comma-separated (default: all; another set draws "
        "another schedule from the same seed)",
    )
    args = parser.parse_args()
    kinds = tuple(args.kinds.split(","))
    if unknown := set(kinds) - set(FAULT_KINDS):
        parser.error(f"unknown kinds of fault: {', '.join(sorted(unknown))}")
    out = args.out or Path.home() / ".cache" / "autozero" / "chaos" / f"seed-{args.seed}"
    campaign = Campaign(
        args.seed,
        args.faults,
        args.gap,
        out,
        args.tree,
        args.handoff,
        kinds,
        args.replicas,
        pods=args.pods,
        standby=args.standby,
    )
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
