"""Sharded replicas with many asleep groups: spread, CPU and RSS per replica, takeover times, and
policies served twice (from the apiserver's audit log, not the replicas' word).

Run: .venv/bin/python benchmarks/shard_bench.py --groups 3000 [--replicas 3] [--idle 60]
        [--lease 20 --renew 10 --retry 2] [--no-takeover] [--tree before=/path/to/a/checkout]

`--tree NAME=PATH` runs the same replicas from another checkout's package on the same fleet,
after this tree's, so that both are measured side by side under the same load.

The fleet is operator_scale_bench.py's (10 Deployment groups per policy, one Redis list each,
asleep, polled every 15 s); `--replicas` operators run with `--sharding`. Once every policy has
had a pass:
- idle: over `--idle` seconds, each replica's CPU time and RSS, the policies it serves
  (`autozero_shard_policies`) and the stalest policy (`autozero_last_evaluation_timestamp_seconds`);
- kill: SIGKILL one replica; time until the others have made a pass over every policy (each
  replica's `autozero_last_evaluation_timestamp_seconds` series: set by a pass, dropped when the
  policy is handed over);
- term: SIGTERM another; the same;
- twice: from the audit log (status and /scale writes, by user agent), the policies whose
  writers' spans overlap (two replicas writing it within one window) or come back (A, B, A).
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import yaml
from kubernetes import client as k8s
from kubernetes.config import new_client_from_config

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from operator_scale_bench import (  # noqa: E402
    NAMESPACE,
    PER_POLICY,
    cpu_seconds,
    policy,
    rss_mib,
    samples,
    scrape,
)
from procstats import add_tree_option, load_average, trees  # noqa: E402
from testground.audit import AuditLog  # noqa: E402
from testground.kube import (  # noqa: E402
    KubeCluster,
    create_secret,
    create_worker_deployments,
    start_cluster,
)
from testground.process import free_port, stop_child, wait_for  # noqa: E402
from testground.redis_server import RedisServer  # noqa: E402

AUDIT = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
    verbs: [update, patch]
    resources:
      - {group: apps, resources: [deployments/scale]}
      - {group: autozero.dev, resources: [scalingpolicies/status]}
  - level: None
"""


def evaluated(port: int) -> set[str]:
    """The policies a replica has made a pass over and serves now (its
    `autozero_last_evaluation_timestamp_seconds` series: set by a pass, dropped on hand-over).
    Listing the policies' statuses instead moved 20 MB per poll at 30,000 groups."""
    try:
        text = scrape(f"http://127.0.0.1:{port}/metrics")
    except OSError:
        return set()
    return set(
        re.findall(
            r'^autozero_last_evaluation_timestamp_seconds\{[^}]*policy="([^"]+)"', text, re.M
        )
    )


MOST_IN_TWO = [0]  # the most policies two replicas said they served in one poll (their word)


def all_evaluated(ports: dict[str, int], policies: int) -> bool:
    sets = [evaluated(port) for port in ports.values()]
    both = set().union(*(a & b for a, b in itertools.combinations(sets, 2)))
    MOST_IN_TWO[0] = max(MOST_IN_TWO[0], len(both))
    return len(set().union(*sets)) >= policies


def takeover(ports: dict[str, int], policies: int, started: float) -> float:
    """Seconds from `started` until the replicas in `ports` have made a pass over every policy."""
    wait_for(lambda: all_evaluated(ports, policies), timeout=1200, interval=0.5)
    return time.monotonic() - started


def served_twice(log: AuditLog, mark: tuple[int, object]) -> tuple[int, int]:
    """(policies or Deployments with overlapping writer spans, with a writer coming back)."""
    spans: dict[str, dict[str, list[float]]] = defaultdict(dict)
    runs: dict[str, list[str]] = defaultdict(list)
    for request in sorted(log.requests(mark), key=lambda r: r.received):  # type: ignore[arg-type]
        found = re.search(r"\(replica ([^)]+)\)", request.user_agent)
        if found is None or request.code is None or request.code >= 300:
            continue
        who, at = found.group(1), request.received.timestamp()
        obj = f"{request.resource}/{request.name}"
        first, _ = spans[obj].get(who, [at, at])
        spans[obj][who] = [first, at]
        if not runs[obj] or runs[obj][-1] != who:
            runs[obj].append(who)
    overlapping = 0
    for writers in spans.values():
        ordered = sorted(writers.values())
        if any(later[0] < earlier[1] for earlier, later in itertools.pairwise(ordered)):
            overlapping += 1
    back = sum(len(r) != len(set(r)) for r in runs.values())
    return overlapping, back


def run_tree(
    label: str,
    tree: Path,
    args: argparse.Namespace,
    cluster: KubeCluster,
    audit: AuditLog,
    policies: int,
    workdir: Path,
) -> None:
    """Start `--replicas` operators from `tree`'s package, measure them idle, SIGKILL one and
    SIGTERM another, then stop the last and clear the Leases for the next tree."""
    mark = audit.mark()
    MOST_IN_TWO[0] = 0
    replicas: dict[str, subprocess.Popen[bytes]] = {}
    ports: dict[str, int] = {}
    try:
        for n in range(args.replicas):
            name = f"replica-{n}"
            ports[name] = free_port()
            replicas[name] = subprocess.Popen(
                [
                    *(sys.executable, "-m", "autozero.cli", "operator", "--sharding"),
                    *("--kubeconfig", str(cluster.kubeconfig), "--metrics-port", str(ports[name])),
                    *("--identity", name, "--lease-namespace", NAMESPACE),
                    *("--lease-seconds", str(args.lease), "--renew-seconds", str(args.renew)),
                    *("--retry-seconds", str(args.retry)),
                ],
                stdout=(workdir / f"{label}-{name}.log").open("w"),
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONPATH": str(tree / "operator")},
            )
        started = time.monotonic()
        wait_for(lambda: all_evaluated(ports, policies), timeout=args.wait, interval=5)
        print(
            f"[{label}] every policy served {time.monotonic() - started:.0f} s after start "
            f"(load {load():s})",
            flush=True,
        )
        time.sleep(20)  # past the first full interval after the last status
        before = {name: cpu_seconds(p.pid) for name, p in replicas.items()}
        time.sleep(args.idle)
        print(
            "| tree | replica | policies served | Deployments cached | CPU per 15 s "
            "| share of one core | RSS | stalest | load (1, 5, 15 min) |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for name, process in replicas.items():
            text = scrape(f"http://127.0.0.1:{ports[name]}/metrics")
            now = time.time()  # after the scrape: a pass made meanwhile is not in the future
            cpu = (cpu_seconds(process.pid) - before[name]) * 15 / args.idle
            seen = samples(text, "autozero_last_evaluation_timestamp_seconds")
            served = sum(samples(text, "autozero_shard_policies"))
            cached = re.search(r'^autozero_informer_objects\{kind="Deployment"\} (\S+)', text, re.M)
            print(
                f"| {label} | {name} | {served:.0f} "
                f"| {float(cached.group(1)) if cached else float('nan'):.0f} "
                f"| {cpu:.2f} s | {100 * cpu / 15:.1f} % "
                f"| {rss_mib(process.pid):.0f} MiB | {max(now - t for t in seen):.1f} s "
                f"| {load()} |",
                flush=True,
            )
        if args.no_takeover:
            return
        killed, stopped = "replica-0", "replica-1"
        count = len(evaluated(ports[killed]))
        t0 = time.monotonic()
        replicas[killed].send_signal(signal.SIGKILL)
        replicas[killed].wait()
        survivors = {name: port for name, port in ports.items() if name != killed}
        kill = takeover(survivors, policies, t0)
        print(
            f"[{label}] SIGKILL {killed} ({count} policies): all served again after {kill:.1f} s "
            f"(load {load()})",
            flush=True,
        )
        count = len(evaluated(ports[stopped]))
        t0 = time.monotonic()
        replicas[stopped].send_signal(signal.SIGTERM)
        last = {name: port for name, port in survivors.items() if name != stopped}
        term = takeover(last, policies, t0)
        print(
            f"[{label}] SIGTERM {stopped} ({count} policies): all served again after "
            f"{term:.1f} s (load {load()})",
            flush=True,
        )
        replicas[stopped].wait(timeout=60)
        time.sleep(5)  # the audit log's last events
        overlapping, back = served_twice(audit, mark)
        print(f"[{label}] objects written by two replicas at once: {overlapping}; again: {back}")
        print(
            f"[{label}] policies two replicas' /metrics both listed in one poll: {MOST_IN_TWO[0]}"
        )
    finally:
        for process in replicas.values():
            if process.poll() is None:
                stop_child(process)
        api = new_client_from_config(config_file=str(cluster.kubeconfig))
        k8s.CoordinationV1Api(api).delete_collection_namespaced_lease(NAMESPACE)
        api.close()


def load() -> str:
    return ", ".join(f"{x:.1f}" for x in load_average())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--groups", type=int, default=3000)
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--idle", type=float, default=60.0)
    parser.add_argument("--lease", type=int, default=20)
    parser.add_argument("--renew", type=int, default=10)
    parser.add_argument("--retry", type=int, default=2)
    parser.add_argument("--wait", type=float, default=3600.0, help="seconds for every first pass")
    parser.add_argument("--no-takeover", action="store_true", help="measure idle replicas only")
    add_tree_option(parser, "also run the autozero package of another checkout, on the same fleet")
    args = parser.parse_args()
    checkouts = trees(args, ROOT)
    workdir = Path(tempfile.mkdtemp(prefix="autozero-shard-"))
    cluster = start_cluster(workdir, controller_manager=False, audit_policy=AUDIT)
    server = RedisServer()
    server.start()
    try:
        assert cluster.audit_log is not None
        audit = AuditLog(cluster.audit_log)
        api = new_client_from_config(config_file=str(cluster.kubeconfig))
        core = k8s.CoreV1Api(api)
        cluster.kubectl_run("apply", "-f", str(ROOT / "crds" / "scalingpolicies.autozero.dev.yaml"))
        cluster.wait_established("scalingpolicies.autozero.dev")
        core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=NAMESPACE)))
        create_secret(api, NAMESPACE, "queue", {"url": server.url})
        policies = args.groups // PER_POLICY
        created = time.monotonic()
        create_worker_deployments(
            api, NAMESPACE, [f"w-{p}-{n}" for p in range(policies) for n in range(PER_POLICY)]
        )
        for start in range(0, policies, 500):
            manifests = [policy(p) for p in range(start, min(policies, start + 500))]
            cluster.kubectl_run("apply", "-f", "-", input_text=yaml.safe_dump_all(manifests))
        print(f"replicas' logs in {workdir}", flush=True)
        print(f"fleet created in {time.monotonic() - created:.0f} s (load {load()})", flush=True)
        for label, tree in checkouts:
            run_tree(label, tree, args, cluster, audit, policies, workdir)
    finally:
        server.stop()
        cluster.stop()


if __name__ == "__main__":
    main()
