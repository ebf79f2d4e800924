"""What a benchmark reads about a process and a sample: CPU time, RSS, percentiles; and which
checkouts it runs (`--tree`).

Shared by the benchmarks that run an operator as a child process (operator_scale_bench.py,
shard_bench.py, keda_compare.py), so that they measure a process the same way.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process, from /proc (its threads included, its children not)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank percentile (q in 0..1): with 20 values, p99 is the largest."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def load_average() -> tuple[float, float, float]:
    one, five, fifteen = os.getloadavg()
    return one, five, fifteen


def add_tree_option(parser: argparse.ArgumentParser, help: str) -> None:
    """`--tree NAME=PATH`, repeatable: also run the autozero package of another checkout."""
    parser.add_argument("--tree", action="append", default=[], metavar="NAME=PATH", help=help)


def trees(args: argparse.Namespace, root: Path) -> list[tuple[str, Path]]:
    """("this", root) and each `--tree` given, in order: the "before" and "after" of one run."""
    return [("this", root)] + [
        (name, Path(path)) for name, path in (t.split("=", 1) for t in args.tree)
    ]
