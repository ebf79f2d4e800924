"""An informer over many Deployments: time to sync, memory of its cache, and its cost when idle.

Run: .venv/bin/python benchmarks/informer_bench.py --objects 10000 [--idle 60]

Starts its own control plane (etcd + kube-apiserver; no controller-manager, so the Deployments
get no ReplicaSets and the apiserver's CPU is the informer's), creates `objects` Deployments at 0
replicas in one namespace, then runs the informer in a child process (so the RSS is the informer's,
not the creator's):

1. sync: LIST (pages of 500) until the cache holds every object; wall time, RSS and peak RSS;
2. idle: `--idle` seconds with nothing changing; the child's CPU time, and the apiserver's own
   `apiserver_request_total` deltas (a watch is counted when it ends);
3. memory (a second child, under tracemalloc): what the informer holds once synced, and what
   the same objects take as the dicts a plain LIST returns.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "scripts"), str(ROOT / "operator")]

NAMESPACE = "fleet"
MIB = 1024 * 1024


def status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child(kubeconfig: str, expected: int, trace: bool) -> None:
    """The informer's process: reports JSON lines on stdout, waits for the parent on stdin."""
    from autozero.runtime.informer import WorkloadInformer
    from kubernetes.config import new_client_from_config

    api = new_client_from_config(config_file=kubeconfig)
    gc.collect()
    if trace:
        tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0] if trace else 0
    rss_before = status_kib("VmRSS") / 1024
    started = time.monotonic()
    informer = WorkloadInformer(api, "apps/v1", "Deployment", NAMESPACE).start()
    if not informer.wait_synced(600):
        raise SystemExit(f"not synced: {informer.error}")
    sync_seconds = time.monotonic() - started
    assert len(informer) == expected, (len(informer), expected)
    while informer.stats.watch_requests < 1:  # the watch opens just after the sync
        time.sleep(0.01)
    time.sleep(1)  # ... and reaches the apiserver before the parent counts its requests
    gc.collect()
    report: dict[str, Any] = {
        "objects": len(informer),
        "sync_seconds": sync_seconds,
        "rss_before_mib": rss_before,
        "rss_synced_mib": status_kib("VmRSS") / 1024,
        "rss_peak_mib": status_kib("VmHWM") / 1024,
        "requests": informer.stats.requests,
    }
    if trace:
        report["held_mib"] = (tracemalloc.get_traced_memory()[0] - base) / MIB
        from autozero.runtime.kubeapi import get_json

        mark = tracemalloc.get_traced_memory()[0]
        listing = get_json(api, f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments", timeout=300)
        items = listing["items"]
        del listing
        gc.collect()
        report["as_dicts_mib"] = (tracemalloc.get_traced_memory()[0] - mark) / MIB
        report["dicts"] = len(items)
        del items
    print(json.dumps({"synced": report}), flush=True)
    sys.stdin.readline()  # the parent's "idle starts"
    cpu, stats = cpu_seconds(), informer.stats
    before = (stats.requests, stats.bookmarks)
    sys.stdin.readline()  # the parent's "idle ends"
    idle = {
        "cpu_seconds": cpu_seconds() - cpu,
        "informer_requests": informer.stats.requests - before[0],
        "bookmarks": informer.stats.bookmarks - before[1],
        "rss_mib": status_kib("VmRSS") / 1024,
    }
    print(json.dumps({"idle": idle}), flush=True)
    informer.stop()


def run_child(kubeconfig: Path, objects: int, *, trace: bool) -> subprocess.Popen[str]:
    argv = [sys.executable, __file__, "--child", str(kubeconfig), "--objects", str(objects)]
    if trace:
        argv.append("--trace")
    return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def read(process: subprocess.Popen[str], key: str) -> dict[str, Any]:
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        raise SystemExit(f"the informer process ended (code {process.wait()})")
    found: dict[str, Any] = json.loads(line)[key]
    return found


def tell(process: subprocess.Popen[str]) -> None:
    assert process.stdin is not None
    process.stdin.write("\n")
    process.stdin.flush()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=10000)
    parser.add_argument("--idle", type=float, default=60.0)
    parser.add_argument("--child", metavar="KUBECONFIG")
    parser.add_argument("--trace", action="store_true")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.objects, args.trace)
        return

    from kubernetes import client as k8s
    from kubernetes.config import new_client_from_config
    from testground.kube import create_worker_deployments, start_cluster
    from testground.process import stop_child

    cluster = start_cluster(
        Path(tempfile.mkdtemp(prefix="autozero-informer-")), controller_manager=False
    )
    try:
        api = new_client_from_config(config_file=str(cluster.kubeconfig))
        k8s.CoreV1Api(api).create_namespace(
            k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=NAMESPACE))
        )
        started = time.monotonic()
        create_worker_deployments(api, NAMESPACE, [f"w-{i:05d}" for i in range(args.objects)])
        print(
            f"created {args.objects} Deployments in {time.monotonic() - started:.1f} s", flush=True
        )

        process = run_child(cluster.kubeconfig, args.objects, trace=False)
        try:
            synced = read(process, "synced")
            counts = cluster.apiserver_requests()
            tell(process)
            time.sleep(args.idle)
            after = cluster.apiserver_requests()  # before the child stops (its watch would count)
            tell(process)
            idle = read(process, "idle")
        finally:
            stop_child(process)
        delta = {k: after.get(k, 0) - counts.get(k, 0) for k in after}
        on_deployments = sum(v for (verb, res, sub), v in delta.items() if res == "deployments")
        everything = sum(delta.values())
        busy = {
            f"{verb} {res}{'/' + sub if sub else ''}": v
            for (verb, res, sub), v in delta.items()
            if v
        }

        traced = run_child(cluster.kubeconfig, args.objects, trace=True)
        try:
            memory = read(traced, "synced")
            tell(traced)
            tell(traced)
            read(traced, "idle")
        finally:
            stop_child(traced)

        print(
            f"sync: {synced['objects']} objects in {synced['sync_seconds']:.2f} s "
            f"({synced['requests']} LIST pages + watch)"
        )
        print(
            f"RSS: {synced['rss_before_mib']:.0f} MiB before the informer, "
            f"{synced['rss_synced_mib']:.0f} MiB synced, peak {synced['rss_peak_mib']:.0f} MiB, "
            f"{idle['rss_mib']:.0f} MiB after the idle time"
        )
        print(
            f"held by the informer once synced (tracemalloc): {memory['held_mib']:.1f} MiB "
            f"({1024 * 1024 * memory['held_mib'] / memory['objects']:.0f} bytes per object); "
            f"the same {memory['dicts']} objects as LIST dicts: {memory['as_dicts_mib']:.1f} MiB"
        )
        print(
            f"idle {args.idle:.0f} s: {idle['cpu_seconds']:.3f} CPU-seconds, "
            f"{idle['informer_requests']} requests sent by the informer, "
            f"{idle['bookmarks']} bookmarks received"
        )
        print(
            f"apiserver_request_total during the idle time: {on_deployments:.0f} on deployments, "
            f"{everything:.0f} in all: {busy}"
        )
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
