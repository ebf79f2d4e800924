"""The operator's Prometheus metrics: what docs/metrics.md promises, and no stale series."""

from __future__ import annotations

import re
from pathlib import Path

from autozero.runtime.metrics import Metrics
from prometheus_client import generate_latest

DOC = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"


def documented() -> dict[str, tuple[str, tuple[str, ...]]]:
    rows = re.findall(r"^\| `(autozero_\w+)` \| (\w+) \| ([\w, ]+) \|", DOC.read_text(), re.M)
    return {
        name: (kind, tuple(label.strip() for label in labels.split(",")))
        for name, kind, labels in rows
    }


def test_every_metric_is_documented_with_its_type_and_labels() -> None:
    metrics = Metrics()
    served = {}
    for collector in metrics.registry._collector_to_names:  # every collector registered
        labelnames = getattr(collector, "labelnames", None) or collector._labelnames  # type: ignore[attr-defined]
        for family in collector.describe():  # type: ignore[attr-defined]
            name = family.name + ("_total" if family.type == "counter" else "")
            served[name] = (family.type, tuple(labelnames))
    assert set(metrics.families) <= set(metrics.registry._collector_to_names)
    assert served == documented()


def test_a_deleted_policys_series_are_removed_and_others_kept() -> None:
    metrics = Metrics()
    for policy in ("gone", "kept"):
        metrics.replicas.labels("ns", policy, "workers", "current").set(3)
        metrics.decisions.labels("ns", policy, "workers", "Wake").inc()
        metrics.source_errors.labels("ns", policy, "backlog", "Auth").inc()
        metrics.duration.labels("ns", policy).observe(0.2)
        metrics.invalid.labels("ns", policy).set(0)
    metrics.invalid.labels("other-ns", "gone").set(1)  # same name, another namespace
    assert metrics.forget("ns", "gone") == 5
    text = generate_latest(metrics.registry).decode()
    assert 'namespace="ns",policy="gone"' not in text
    assert 'namespace="ns",policy="kept"' in text
    assert 'namespace="other-ns",policy="gone"' in text
    assert metrics.forget("ns", "gone") == 0


def test_policies_handed_over_lose_their_series() -> None:
    metrics = Metrics()
    for n in range(5):
        metrics.replicas.labels("ns", f"p{n}", "workers", "current").set(n)
        metrics.invalid.labels("ns", f"p{n}").set(0)
    assert metrics.forget_all([("ns", "p1"), ("ns", "p3"), ("ns", "absent")]) == 4
    text = generate_latest(metrics.registry).decode()
    assert [n for n in range(5) if f'policy="p{n}"' in text] == [0, 2, 4]
