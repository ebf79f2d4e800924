"""Compact metric families expose exactly what prometheus_client's own would, minus `_created`."""

from __future__ import annotations

import threading

import pytest
from autozero.runtime.series import Family
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LABELS = ("namespace", "policy", "group")


def exposition(registry: CollectorRegistry) -> list[str]:
    text = generate_latest(registry).decode()
    return [line for line in text.splitlines() if "_created" not in line]


def test_gauges_counters_and_histograms_match_prometheus_client() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    pairs = [
        (
            Family("t_replicas", "Replicas", LABELS, "gauge"),
            Gauge("t_replicas", "Replicas", LABELS, registry=theirs),
        ),
        (
            Family("t_decisions_total", "Decisions", LABELS, "counter"),
            Counter("t_decisions_total", "Decisions", LABELS, registry=theirs),
        ),
        (
            Family("t_seconds", "Pass time", LABELS, "histogram"),
            Histogram("t_seconds", "Pass time", LABELS, registry=theirs),
        ),
    ]
    for family, _ in pairs:
        ours.register(family)
    (g, pg), (c, pc), (h, ph) = pairs
    for labels in (("ns", "p", "a"), ("ns", "p", "b"), ("other", "p", "a")):
        for metric in (g, pg):
            metric.labels(*labels).set(3)
            metric.labels(*labels).set(2.5)
        for metric in (c, pc):
            metric.labels(*labels).inc()
            metric.labels(*labels).inc(2)
        for metric in (h, ph):
            for value in (0.001, 0.005, 0.3, 12.0, 7.5):
                metric.labels(*labels).observe(value)
    assert exposition(ours) == exposition(theirs)


def test_forgetting_a_policy_drops_its_series_only() -> None:
    family = Family("t_replicas", "Replicas", LABELS, "gauge")
    family.labels("ns", "gone", "a").set(1)
    family.labels("ns", "gone", "b").set(1)
    family.labels("ns", "kept", "a").set(1)
    family.labels("other", "gone", "a").set(1)
    assert family.forget(("ns", "gone")) == 2
    assert family.forget(("ns", "gone")) == 0
    [metric] = family.collect()
    assert sorted((s.labels["namespace"], s.labels["policy"]) for s in metric.samples) == [
        ("ns", "kept"),
        ("other", "gone"),
    ]


def test_misuse_is_refused() -> None:
    with pytest.raises(ValueError, match="first labels must be namespace and policy"):
        Family("t_total", "T", ("policy", "namespace"), "counter")
    family = Family("t_total", "T", LABELS, "counter")
    with pytest.raises(ValueError, match="2 label values for"):
        family.labels("ns", "p")
    with pytest.raises(ValueError, match="a counter only goes up"):
        family.labels("ns", "p", "g").inc(-1)


def test_a_scrape_while_series_are_added_sees_a_consistent_family() -> None:
    family = Family("t_replicas", "Replicas", LABELS, "gauge")
    registry = CollectorRegistry()
    registry.register(family)
    stop = threading.Event()
    errors: list[BaseException] = []

    def scrape() -> None:
        while not stop.is_set():
            try:
                generate_latest(registry)
            except BaseException as exc:  # reported below
                errors.append(exc)
                return

    scraper = threading.Thread(target=scrape)
    scraper.start()
    for n in range(20_000):
        family.labels("ns", f"p{n % 500}", f"g{n}").set(n)
        if n % 1000 == 0:
            family.forget(("ns", f"p{n % 500}"))
    stop.set()
    scraper.join()
    assert errors == []
