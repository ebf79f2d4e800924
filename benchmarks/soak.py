"""A soak of the operator: many policies, constant churn, sources failing and recovering.

Run: .venv/bin/python benchmarks/soak.py --minutes 120 [--policies 200] [--out DIR]
        [--sample 30] [--churn 0.2] [--outage-every 300] [--outage 20] [--tracemalloc]

`--policies` ScalingPolicies of one Deployment group each, each woken by its own Redis list, polled
every 2 s and back to zero 4 s after its list empties. Every `--churn` seconds one policy, at
random (seeded), is woken (LPUSH) or drained (DEL). Every `--outage-every` seconds one of the two
Redis servers (half the policies each) is stopped for `--outage` seconds: reads fail, then recover.
Every `--sample` seconds the operator's RSS, CPU time, open fds and sockets, threads and the number
of series on its /metrics go into `samples.csv`, and a SIGUSR2 asks it (benchmarks/soak_operator.py)
to append its live objects by type (and, with `--tracemalloc`, the allocation sites grown since the
first probe) to `probes.jsonl`. At the end: the RSS slope over the last hour (least squares; over
the whole run when shorter) and the other figures, also written to `summary.json`.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import redis
import yaml
from kubernetes import client as k8s
from kubernetes.config import new_client_from_config

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from testground.kube import create_secret, create_worker_deployments, start_cluster  # noqa: E402
from testground.process import free_port, stop_child, wait_for  # noqa: E402
from testground.redis_server import RedisServer  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
NAMESPACE = "soak"
FIELDS = ("elapsed_s", "rss_mib", "cpu_s", "fds", "sockets", "threads", "series", "redis_down")


def policy(index: int, secret: str) -> dict[str, object]:
    return {
        "apiVersion": "autozero.dev/v1alpha1",
        "kind": "ScalingPolicy",
        "metadata": {"name": f"soak-{index}", "namespace": NAMESPACE},
        "spec": {
            "pollingInterval": "2s",
            "metrics": [
                {
                    "name": "backlog",
                    "redis": {
                        "urlFrom": {"secretKeyRef": {"name": secret, "key": "url"}},
                        "key": f"jobs:{index}",
                        "type": "list",
                    },
                }
            ],
            "groups": [
                {
                    "name": "g",
                    "target": {
                        "kubernetes": {
                            "apiVersion": "apps/v1",
                            "kind": "Deployment",
                            "name": f"w-{index}",
                        }
                    },
                    "capacity": {"minimum": 0, "maximum": 3},
                    "activation": {"metric": "backlog", "idleFor": "4s"},
                }
            ],
        },
    }


def proc_figures(pid: int) -> dict[str, float]:
    """RSS, CPU seconds, fds, sockets and threads of a live process, from /proc."""
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    fds = sockets = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        fds += 1
        with contextlib.suppress(OSError):  # closed between the listing and the readlink
            sockets += os.readlink(fd).startswith("socket:")
    return {
        "rss_mib": int(status["VmRSS"].split()[0]) / 1024,
        "cpu_s": (int(stat[11]) + int(stat[12])) / TICKS,
        "fds": fds,
        "sockets": sockets,
        "threads": int(status["Threads"]),
    }


def series_count(url: str) -> int:
    """Series on /metrics; -1 when it did not answer within 30 s (counted, not fatal: a soak
    on a shared machine must outlive one slow scrape, and the summary says how many there were)."""
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            text = response.read().decode()
    except OSError:
        return -1
    return sum(1 for line in text.splitlines() if line and not line.startswith("#"))


def slope_per_hour(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value) points, per hour."""
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    var = sum((x - mx) ** 2 for x, _ in points)
    if var == 0:
        return 0.0
    return 3600 * sum((x - mx) * (y - my) for x, y in points) / var


def heap_slopes(probes: Path, since: float) -> dict[str, float]:
    """MiB per hour, since the wall-clock `since`, of what the operator's probes say it holds.

    `heap_system`/`heap_in_use`: glibc's heap over all arenas; `traced`: what Python allocated
    (with `--tracemalloc`). Which of them follows RSS says where a drift lives.
    """
    if not probes.exists():
        return {}
    records = [json.loads(line) for line in probes.read_text().splitlines() if line.strip()]
    series: dict[str, list[tuple[float, float]]] = {}
    for record in records:
        if record["time"] < since:
            continue
        heap = record.get("heap") or {}
        figures = {"heap_system": heap.get("system"), "heap_in_use": heap.get("in_use")}
        figures["traced"] = record.get("traced_bytes")
        for name, value in figures.items():
            if value is not None:
                series.setdefault(name, []).append((record["time"], value / 2**20))
    return {
        f"{name}_slope_mib_per_h": round(slope_per_hour(points), 2)
        for name, points in series.items()
    }


@dataclass
class Churn:
    """Wakes and drains policies at random, and takes a Redis server down now and then."""

    servers: list[RedisServer]
    policies: int
    period: float
    outage_every: float
    outage: float
    seed: int
    stop: threading.Event
    wakes: int = 0
    drains: int = 0
    outages: int = 0
    down: int = -1  # the index of the Redis server now stopped, or -1

    def server_of(self, index: int) -> int:
        return index % len(self.servers)

    def run(self) -> None:
        rng = random.Random(self.seed)
        clients = [redis.Redis.from_url(s.url, socket_timeout=2) for s in self.servers]
        next_outage = time.monotonic() + self.outage_every
        while not self.stop.wait(self.period):
            if time.monotonic() >= next_outage:
                self.down = self.outages % len(self.servers)
                self.servers[self.down].stop()
                self.outages += 1
                self.stop.wait(self.outage)
                self.servers[self.down].start()
                self.down = -1
                next_outage = time.monotonic() + self.outage_every
                continue
            index = rng.randrange(self.policies)
            queue = clients[self.server_of(index)]
            try:
                if queue.llen(f"jobs:{index}"):
                    queue.delete(f"jobs:{index}")
                    self.drains += 1
                else:
                    queue.lpush(f"jobs:{index}", *range(rng.randint(1, 20)))
                    self.wakes += 1
            except redis.ConnectionError:
                pass  # the server came back a moment ago and this client reconnects next time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=120)
    parser.add_argument("--policies", type=int, default=200)
    parser.add_argument("--sample", type=float, default=30, help="seconds between samples")
    parser.add_argument("--churn", type=float, default=0.2, help="seconds between wake/drains")
    parser.add_argument("--outage-every", type=float, default=300)
    parser.add_argument("--outage", type=float, default=20, help="seconds a Redis stays down")
    parser.add_argument("--seed", type=int, default=22)
    parser.add_argument("--tracemalloc", action="store_true", help="trace allocations (slower)")
    parser.add_argument(
        "--tree",
        type=Path,
        default=ROOT,
        help="run the operator of this checkout (e.g. a `git archive` of a commit): a long soak "
        "then does not pick up edits made meanwhile",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path.home() / ".cache" / "autozero" / "soak" / time.strftime("%Y%m%dT%H%M%S"),
    )
    args = parser.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    cluster = start_cluster(Path(tempfile.mkdtemp(prefix="autozero-soak-")))
    servers = [RedisServer(), RedisServer()]
    for server in servers:
        server.start()
    operator = None
    stop = threading.Event()
    churn = Churn(
        servers, args.policies, args.churn, args.outage_every, args.outage, args.seed, stop
    )
    try:
        api = new_client_from_config(config_file=str(cluster.kubeconfig))
        cluster.kubectl_run("apply", "-f", str(ROOT / "crds" / "scalingpolicies.autozero.dev.yaml"))
        cluster.wait_established("scalingpolicies.autozero.dev")
        k8s.CoreV1Api(api).create_namespace(
            k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=NAMESPACE))
        )
        for n, server in enumerate(servers):
            create_secret(api, NAMESPACE, f"queue-{n}", {"url": server.url})
        create_worker_deployments(api, NAMESPACE, [f"w-{i}" for i in range(args.policies)])
        manifests = [policy(i, f"queue-{churn.server_of(i)}") for i in range(args.policies)]
        cluster.kubectl_run("apply", "-f", "-", input_text=yaml.safe_dump_all(manifests))
        port = free_port()
        metrics_url = f"http://127.0.0.1:{port}/metrics"
        env = {
            **os.environ,
            "PYTHONPATH": str(args.tree / "operator"),
            "AUTOZERO_SOAK_PROBE": str(out / "probes.jsonl"),
        }
        if args.tracemalloc:
            env["PYTHONTRACEMALLOC"] = "1"  # one frame: ten slowed the operator past its start
        with (out / "operator.log").open("ab") as log:
            operator = subprocess.Popen(
                [
                    *(sys.executable, str(ROOT / "benchmarks" / "soak_operator.py")),
                    *("--kubeconfig", str(cluster.kubeconfig), "--metrics-port", str(port)),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        custom = k8s.CustomObjectsApi(api)

        def all_reported() -> bool:
            items = custom.list_namespaced_custom_object(
                "autozero.dev", "v1alpha1", NAMESPACE, "scalingpolicies"
            )["items"]
            return all((i.get("status") or {}).get("groups") for i in items)

        wait_for(all_reported, timeout=600, interval=2)
        threading.Thread(target=churn.run, name="churn", daemon=True).start()
        started = time.monotonic()
        rows: list[dict[str, float]] = []
        wall_started = time.time()
        with (out / "samples.csv").open("w", newline="") as handle:
            writer = csv.DictWriter(handle, FIELDS)
            writer.writeheader()
            while True:
                if operator.poll() is not None:
                    raise RuntimeError(f"the operator exited with {operator.returncode}")
                row: dict[str, float] = {
                    "elapsed_s": round(time.monotonic() - started, 1),
                    **proc_figures(operator.pid),
                    "series": series_count(metrics_url),
                    "redis_down": churn.down,
                }
                os.kill(operator.pid, signal.SIGUSR2)
                writer.writerow(row)
                handle.flush()
                rows.append(row)
                print(", ".join(f"{k} {v:g}" for k, v in row.items()), flush=True)
                if row["elapsed_s"] >= args.minutes * 60:
                    break
                time.sleep(args.sample)
        last = rows[-1]["elapsed_s"]
        window = [r for r in rows if r["elapsed_s"] >= last - 3600]
        summary = {
            "minutes": round(last / 60, 1),
            "policies": args.policies,
            "rss_first_mib": round(rows[0]["rss_mib"], 1),
            "rss_last_mib": round(rows[-1]["rss_mib"], 1),
            "rss_max_mib": round(max(r["rss_mib"] for r in rows), 1),
            "rss_slope_last_hour_mib_per_h": round(
                slope_per_hour([(r["elapsed_s"], r["rss_mib"]) for r in window]), 2
            ),
            "rss_slope_window_minutes": round((last - window[0]["elapsed_s"]) / 60, 1),
            **heap_slopes(out / "probes.jsonl", wall_started + window[0]["elapsed_s"]),
            "cpu_share_of_one_core": round(
                (rows[-1]["cpu_s"] - rows[0]["cpu_s"]) / max(last, 1), 3
            ),
            **{
                f"{k}_first_last_max": [rows[0][k], rows[-1][k], max(r[k] for r in rows)]
                for k in ("fds", "sockets", "threads", "series")
            },
            "metrics_scrapes_timed_out": sum(1 for r in rows if r["series"] < 0),
            "wakes": churn.wakes,
            "drains": churn.drains,
            "redis_outages": churn.outages,
            "seed": args.seed,
        }
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
        print(json.dumps(summary, indent=2))
    finally:
        stop.set()
        if operator is not None:
            stop_child(operator)
        for server in servers:
            server.stop()
        cluster.stop()


if __name__ == "__main__":
    main()
