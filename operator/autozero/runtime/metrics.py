"""Prometheus metrics of the runtime, the same for the operator and `autozero run`; bounded labels.

Labels are namespace, policy, group, metric and small enums (action, result, kind); never a value,
a message or a URL, so the series count is bounded by the policies' size.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from autozero.engine.readings import Failure, Reading
from autozero.runtime.report import CycleReport
from autozero.runtime.series import Family

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


class CacheSize(Collector):
    """`autozero_informer_objects{kind}`: the objects the informers hold, counted at scrape time
    (a sharded replica holds its share of the workloads, not the namespace's)."""

    labelnames = ("kind",)

    def __init__(self) -> None:
        self.count: Callable[[], Mapping[str, int]] = dict

    def describe(self) -> Iterator[Metric]:
        yield self._family()

    def collect(self) -> Iterator[Metric]:
        family = self._family()
        for kind, count in sorted(self.count().items()):
            family.add_metric([kind], count)
        yield family

    def _family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "autozero_informer_objects",
            "Objects held in the informers' caches",
            labels=list(self.labelnames),
        )


class Metrics:
    """The runtime's families, registered in one registry (`series.Family`: compact series)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.replicas = Family(
            "autozero_group_replicas",
            "Replicas of a group (current, desired; suspended, stopped: its standby pool)",
            [*P, "group", "kind"],
            "gauge",
        )
        self.decisions = Family(
            "autozero_decisions_total", "Decisions by action", [*P, "group", "action"], "counter"
        )
        self.scale_actions = Family(
            "autozero_scale_actions_total",
            "Scale actions carried out, by result",
            [*P, "group", "result"],
            "counter",
        )
        self.metric_value = Family(
            "autozero_metric_value", "Last value read of a metric", [*P, "metric"], "gauge"
        )
        self.source_errors = Family(
            "autozero_source_errors_total",
            "Failed reads by kind",
            [*P, "metric", "kind"],
            "counter",
        )
        self.duration = Family(
            "autozero_reconcile_duration_seconds",
            "Time one cycle of a policy took",
            P,
            "histogram",
        )
        self.last_evaluation = Family(
            "autozero_last_evaluation_timestamp_seconds",
            "When the policy was last looked at (a pass: its reads, its changes, its deadlines)",
            P,
            "gauge",
        )
        self.invalid = Family(
            "autozero_policy_invalid", "1 while a policy cannot be used", P, "gauge"
        )
        self.families = (
            self.replicas,
            self.decisions,
            self.scale_actions,
            self.metric_value,
            self.source_errors,
            self.duration,
            self.last_evaluation,
            self.invalid,
        )
        for family in self.families:
            self.registry.register(family)
        # A sharded operator's replicas (`operator --sharding`): one series per replica.
        self.shard_policies = Gauge(
            "autozero_shard_policies",
            "Policies this replica serves",
            ["replica"],
            registry=self.registry,
        )
        self.shard_rebalances = Counter(
            "autozero_shard_rebalances_total",
            "Hand-overs of slots (acquired from or released to other replicas)",
            ["replica", "direction"],
            registry=self.registry,
        )
        self.cache_size = CacheSize()
        self.registry.register(self.cache_size)

    def forget(self, namespace: str, policy: str) -> int:
        """Drop every series of a policy (it was deleted): no stale gauges. Returns how many."""
        return self.forget_all({(namespace, policy)})

    def forget_all(self, policies: Collection[tuple[str, str]]) -> int:
        """Drop every series of these policies (a sharded replica hands hundreds over at once):
        one dict entry per policy and family."""
        return sum(family.forget(policy) for policy in set(policies) for family in self.families)

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
            seen = group.observed
            if seen is not None and seen.standby_delay is not None:  # a kind with pools
                self.replicas.labels(*labels, group.group, "suspended").set(seen.suspended)
                self.replicas.labels(*labels, group.group, "stopped").set(seen.stopped)
            self.decisions.labels(*labels, group.group, decision.action.value).inc()
            if group.acted and decision.target != decision.current:
                error = group.error
                result = "ok" if error is None else "error" if error.failure else "withdrawn"
                self.scale_actions.labels(*labels, group.group, result).inc()
