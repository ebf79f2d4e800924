"""Prometheus metrics of the runtime, the same for the operator and `autozero run`; bounded labels.

Labels are namespace, policy, group, metric and small enums (action, result, kind); never a value,
a message or a URL, so the series count is bounded by the policies' size.
"""

from __future__ import annotations

from collections.abc import Collection

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from autozero.engine.readings import Failure, Reading
from autozero.runtime.report import CycleReport

P = ("namespace", "policy")


class MetricsPortError(Exception):
    """/metrics cannot be served on the port asked for (in use, out of range, privileged)."""


def serve(port: int, registry: CollectorRegistry) -> None:
    """Serve `registry` on every address at `port`, in a daemon thread."""
    try:
        start_http_server(port, registry=registry)
    except OverflowError:
        raise MetricsPortError(f"--metrics-port {port}: a port is 0 to 65535") from None
    except OSError as exc:
        raise MetricsPortError(
            f"--metrics-port {port}: cannot serve /metrics there: {exc.strerror}; "
            "choose another port"
        ) from None


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.replicas = Gauge(
            "autozero_group_replicas",
            "Replicas of a group (current, desired)",
            [*P, "group", "kind"],
            registry=r,
        )
        self.decisions = Counter(
            "autozero_decisions_total", "Decisions by action", [*P, "group", "action"], registry=r
        )
        self.scale_actions = Counter(
            "autozero_scale_actions_total",
            "Scale actions carried out, by result",
            [*P, "group", "result"],
            registry=r,
        )
        self.metric_value = Gauge(
            "autozero_metric_value", "Last value read of a metric", [*P, "metric"], registry=r
        )
        self.source_errors = Counter(
            "autozero_source_errors_total",
            "Failed reads by kind",
            [*P, "metric", "kind"],
            registry=r,
        )
        self.duration = Histogram(
            "autozero_reconcile_duration_seconds", "Time one cycle of a policy took", P, registry=r
        )
        self.last_evaluation = Gauge(
            "autozero_last_evaluation_timestamp_seconds",
            "When the policy was last looked at (a pass: its reads, its changes, its deadlines)",
            P,
            registry=r,
        )
        self.invalid = Gauge(
            "autozero_policy_invalid", "1 while a policy cannot be used", P, registry=r
        )
        # A sharded operator's replicas (`operator --sharding`): one series per replica.
        self.shard_policies = Gauge(
            "autozero_shard_policies", "Policies this replica serves", ["replica"], registry=r
        )
        self.shard_rebalances = Counter(
            "autozero_shard_rebalances_total",
            "Hand-overs of slots (acquired from or released to other replicas)",
            ["replica", "direction"],
            registry=r,
        )

    def forget(self, namespace: str, policy: str) -> int:
        """Drop every series of a policy (it was deleted): no stale gauges. Returns how many."""
        return self.forget_all({(namespace, policy)})

    def forget_all(self, policies: Collection[tuple[str, str]]) -> int:
        """Drop every series of these policies in one scan of the series (a sharded replica
        hands hundreds over at once: one scan per policy would take seconds)."""
        wanted = set(policies)
        removed = 0
        for collector in (
            self.replicas,
            self.decisions,
            self.scale_actions,
            self.metric_value,
            self.source_errors,
            self.duration,
            self.last_evaluation,
            self.invalid,
        ):
            names = collector._labelnames
            seen: set[tuple[str, ...]] = set()
            for family in collector.collect():
                for sample in family.samples:
                    values = tuple(sample.labels.get(n, "") for n in names)
                    if (values[0], values[1]) in wanted and values not in seen:
                        seen.add(values)
            for values in seen:
                collector.remove(*values)
                removed += 1
        return removed

    def record(self, namespace: str, report: CycleReport, seconds: float) -> None:
        """One pass: its reads (when it made some) and the decisions it made."""
        labels = (namespace, report.policy)
        self.invalid.labels(*labels).set(0)
        self.duration.labels(*labels).observe(seconds)
        self.last_evaluation.labels(*labels).set(report.at.timestamp())
        if report.read:
            for metric, reading in report.readings.items():
                if isinstance(reading, Reading):
                    self.metric_value.labels(*labels, metric).set(reading.value)
                elif isinstance(reading, Failure):
                    self.source_errors.labels(*labels, metric, reading.kind).inc()
        for group in report.fresh():
            if group.decision is None:
                continue
            decision = group.decision
            self.replicas.labels(*labels, group.group, "current").set(decision.current)
            self.replicas.labels(*labels, group.group, "desired").set(decision.target)
            self.decisions.labels(*labels, group.group, decision.action.value).inc()
            if group.acted and decision.target != decision.current:
                result = "error" if group.error else "ok"
                self.scale_actions.labels(*labels, group.group, result).inc()
