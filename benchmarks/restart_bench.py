"""How quickly a restarted operator serves again: SIGKILL it, start it again, and measure when its
/metrics answers, when both of the chaos campaign's policies have been evaluated again, the CPU
it spent until then, and the next evaluations (a slow first pass shows as a gap after it).

The test ground is the chaos campaign's (benchmarks/chaos.py): a kube-apiserver, Redis,
RabbitMQ, FerretDB, the GCE emulator; the operator serves a MIG and a Deployment woken by RQ
queues and a StatefulSet woken by RabbitMQ (and `autozero run` a second MIG), a wave of jobs
before the first restart.

Run: .venv/bin/python benchmarks/restart_bench.py [--trials 5] [--tree DIR]
"""

from __future__ import annotations

import argparse
import signal
import statistics
import sys
import tempfile
import time
import urllib.request
from itertools import pairwise
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from chaos import NAMESPACE, Campaign  # noqa: E402
from chaos_invariants import EVALUATED_BY, last_evaluations  # noqa: E402
from procstats import cpu_seconds  # noqa: E402

POLICIES = EVALUATED_BY["operator"]


def evaluations(url: str) -> dict[str, float]:
    """`policy` -> its last evaluation, from the operator's /metrics ({} when it does not
    answer)."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return {}
    prefix = f"{NAMESPACE}/"
    return {k[len(prefix) :]: v for k, v in last_evaluations(text).items() if k.startswith(prefix)}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--tree", type=Path, default=ROOT, help="run this checkout's operator")
    parser.add_argument("--follow", type=float, default=4.0, help="seconds of evaluations kept")
    args = parser.parse_args()
    campaign = Campaign(0, 0, 4.0, Path(tempfile.mkdtemp(prefix="autozero-restart-")), args.tree)
    rows: list[tuple[float, float, float, float]] = []
    try:
        campaign.start()
        campaign.wave()
        time.sleep(5)
        for trial in range(args.trials):
            operator = campaign.children["operator"]
            operator.send_signal(signal.SIGKILL)
            operator.wait()
            begun = time.time()
            serving = campaign.start_child("operator") - begun
            pid = campaign.children["operator"].pid
            url = campaign.metrics_urls["operator"]
            while not all(evaluations(url).get(p, 0.0) >= begun for p in POLICIES):
                time.sleep(0.02)
            evaluated = time.time() - begun
            cpu = cpu_seconds(pid)
            seen: dict[str, set[float]] = {p: set() for p in POLICIES}
            until = time.time() + args.follow
            while time.time() < until:
                for name, at in evaluations(url).items():
                    seen[name].add(round(at - begun, 2))
                time.sleep(0.05)
            # The longest wait between two evaluations of a policy after its first.
            gap = max(
                (b - a for times in map(sorted, seen.values()) for a, b in pairwise(times)),
                default=0.0,
            )
            rows.append((serving, evaluated, cpu, gap))
            print(
                f"trial {trial}: /metrics answered {serving:.2f} s after the start, every policy "
                f"evaluated at {evaluated:.2f} s, CPU {cpu:.2f} s; the longest gap between "
                f"evaluations over the next {args.follow:g} s: {gap:.2f} s",
                flush=True,
            )
            for name in sorted(seen):
                print(f"    {name}: {sorted(seen[name])}", flush=True)
    finally:
        campaign.close()
    medians = [statistics.median(column) for column in zip(*rows, strict=True)]
    names = ("/metrics", "all evaluated", "CPU", "longest gap")
    print("median: " + ", ".join(f"{n} {m:.2f} s" for n, m in zip(names, medians, strict=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
