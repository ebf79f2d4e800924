"""Memory of the runtime's metrics for a fleet: prometheus_client's own children against the
compact series of `autozero.runtime.series`, filled the way `Metrics.record` fills them, side by
side in one process (tracemalloc before and after each), and the size of one exposition.

    .venv/bin/python benchmarks/metrics_memory.py --groups 10000
"""

from __future__ import annotations

import argparse
import sys
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "operator"))

from autozero.runtime.metrics import Metrics
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

PER_POLICY = 10


def client_families(registry: CollectorRegistry) -> dict[str, Any]:
    """The same families as `Metrics`, as prometheus_client objects (what it used before)."""
    p = ("namespace", "policy")
    return {
        "replicas": Gauge("g_replicas", "", [*p, "group", "kind"], registry=registry),
        "decisions": Counter("g_decisions_total", "", [*p, "group", "action"], registry=registry),
        "metric_value": Gauge("g_metric_value", "", [*p, "metric"], registry=registry),
        "duration": Histogram("g_duration_seconds", "", p, registry=registry),
        "last_evaluation": Gauge("g_last_evaluation", "", p, registry=registry),
        "invalid": Gauge("g_invalid", "", p, registry=registry),
    }


def fill(families: Any, groups: int) -> None:
    """What a fleet of asleep groups leaves behind: per policy its pass gauges, per group its
    replicas and a Wake and a Sleep decision."""
    get = families.__getitem__ if isinstance(families, dict) else families.__getattribute__
    for p in range(groups // PER_POLICY):
        labels = ("fleet", f"fleet-{p}")
        get("invalid").labels(*labels).set(0)
        get("duration").labels(*labels).observe(0.01)
        get("last_evaluation").labels(*labels).set(1.0)
        get("metric_value").labels(*labels, "backlog").set(0)
        for g in range(PER_POLICY):
            group = f"w-{p}-{g}"
            get("replicas").labels(*labels, group, "current").set(0)
            get("replicas").labels(*labels, group, "desired").set(0)
            get("decisions").labels(*labels, group, "Wake").inc()
            get("decisions").labels(*labels, group, "Sleep").inc()


def measure(name: str, groups: int) -> tuple[str, float, float]:
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    if name == "prometheus_client":
        registry = CollectorRegistry()
        fill(client_families(registry), groups)
    else:
        metrics = Metrics()
        registry = metrics.registry
        fill(metrics, groups)
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return name, held / 2**20, len(generate_latest(registry)) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=10_000)
    args = parser.parse_args()
    print(f"| metrics of {args.groups:,} groups | held (tracemalloc) | one exposition |")
    print("| --- | --- | --- |")
    for name in ("prometheus_client", "autozero series"):
        _, held, size = measure(name, args.groups)
        print(f"| {name} | {held:.1f} MiB | {size:.1f} MiB |")


if __name__ == "__main__":
    main()
