"""Malformed ScalingPolicies: each breaks one thing. `path` is where `autozero validate` reports it,
`api_path` where the apiserver does: the same, except for the cross-field rules the apiserver can
only report on the node that holds them (`spec`, a group), which validate reports on the element
(`spec.groups[0].activation.metric`), and for list items with a duplicate name."""

from __future__ import annotations

from typing import Any

import pytest

from support.manifests import DELETE, mutate

G0 = "spec.groups[0]"
G1 = "spec.groups[1]"
RULE = f"{G1}.profiles[0].rules[0]"
ACTION = f"{RULE}.action"


def case(id: str, changes: dict[str, Any], path: str, api_path: str | None = None) -> Any:
    return pytest.param(mutate(changes), path, api_path or path, id=id)


CASES = [
    # metadata: a custom object's name is a DNS subdomain (found by tests/integration/
    # test_policy_fuzz.py, seed 22: validate passed these, the apiserver refused them)
    case("name-upper-case", {"metadata.name": "Batch"}, "metadata.name"),
    case("name-underscore", {"metadata.name": "batch_jobs"}, "metadata.name"),
    case("name-ends-with-a-dash", {"metadata.name": "batch-"}, "metadata.name"),
    case("name-too-long", {"metadata.name": "x" * 254}, "metadata.name"),
    # spec
    case("polling-not-a-string", {"spec.pollingInterval": 15}, "spec.pollingInterval"),
    case("polling-bad-duration", {"spec.pollingInterval": "15 seconds"}, "spec.pollingInterval"),
    case("polling-negative", {"spec.pollingInterval": "-5m"}, "spec.pollingInterval"),
    # 0s would evaluate without pause (simulate and run refused to start)
    case("polling-zero", {"spec.pollingInterval": "0s"}, "spec.pollingInterval"),
    case("polling-zero-ms", {"spec.pollingInterval": "0ms"}, "spec.pollingInterval"),
    case("paused-not-boolean", {"spec.paused": "yes"}, "spec.paused"),
    case("unknown-spec-field", {"spec.pollInterval": "15s"}, "spec.pollInterval"),
    case(
        "service-account-not-a-name",
        {"spec.serviceAccountName": "Batch_Scaler"},
        "spec.serviceAccountName",
    ),
    case(
        "gce-credentials-without-secret-ref",
        {f"{G0}.target.gce.credentials": {"name": "gce-key"}},
        f"{G0}.target.gce.credentials.name",
    ),
    # metrics
    case("metrics-not-a-list", {"spec.metrics": {"name": "x"}}, "spec.metrics"),
    case(
        "metric-without-name",
        {"spec.metrics[1].name": DELETE},
        "spec.metrics[1].name",
    ),
    case("metric-name-upper-case", {"spec.metrics[1].name": "Jobs"}, "spec.metrics[1].name"),
    case("metric-name-a-list", {"spec.metrics[1].name": ["jobs"]}, "spec.metrics[1].name"),
    case(
        "metric-two-sources",
        {"spec.metrics[1].rq": {"url": "redis://r:6379", "queue": "q"}},
        "spec.metrics[1]",
    ),
    case("metric-no-source", {"spec.metrics[1].redis": DELETE}, "spec.metrics[1]"),
    case(
        "duplicate-metric-name",
        {"spec.metrics[2].name": "jobs"},
        "spec.metrics[2].name",
        "spec.metrics[2]",
    ),
    case(
        "unknown-source-field",
        {"spec.metrics[0].mrq.queueName": "x"},
        "spec.metrics[0].mrq.queueName",
    ),
    case("mrq-without-a-store", {"spec.metrics[0].mrq.redis": DELETE}, "spec.metrics[0].mrq"),
    case(
        "redis-url-with-password",
        {"spec.metrics[1].redis.url": "redis://:pw@redis:6379"},
        "spec.metrics[1].redis.url",
    ),
    case(
        "redis-url-and-url-from",
        {"spec.metrics[1].redis.urlFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
        "spec.metrics[1].redis",
    ),
    case("redis-no-key", {"spec.metrics[1].redis.key": DELETE}, "spec.metrics[1].redis"),
    case(
        "redis-unknown-type", {"spec.metrics[1].redis.type": "hash"}, "spec.metrics[1].redis.type"
    ),
    case(
        "rabbitmq-queue-and-pattern",
        {"spec.metrics[2].rabbitmq.queuePattern": "inv.*"},
        "spec.metrics[2].rabbitmq",
    ),
    case(
        "prometheus-without-query",
        {"spec.metrics[3].prometheus.query": DELETE},
        "spec.metrics[3].prometheus.query",
    ),
    case(
        "prometheus-timeout-zero",
        {"spec.metrics[3].prometheus.timeout": "0s"},
        "spec.metrics[3].prometheus.timeout",
    ),
    # groups and targets
    case("no-groups", {"spec.groups": []}, "spec.groups"),
    case("group-name-underscore", {f"{G0}.name": "bid_workers"}, f"{G0}.name"),
    case("duplicate-group-name", {f"{G1}.name": "bids"}, f"{G1}.name", G1),
    case("unknown-group-field", {f"{G0}.skipped": True}, f"{G0}.skipped"),
    case("group-without-target", {f"{G0}.target": DELETE}, f"{G0}.target"),
    case(
        "target-gce-and-kubernetes",
        {f"{G0}.target.kubernetes": {"apiVersion": "v1", "kind": "X", "name": "x"}},
        f"{G0}.target",
    ),
    case("target-empty", {f"{G0}.target": {}}, f"{G0}.target"),
    case(
        "gce-standby-delay-over-an-hour",
        {f"{G0}.target.gce.standby": {"size": 2, "initialDelay": "61m"}},
        f"{G0}.target.gce.standby.initialDelay",
    ),
    case(
        "gce-standby-unknown-mode",
        {f"{G0}.target.gce.standby": {"size": 2, "mode": "Hibernate"}},
        f"{G0}.target.gce.standby.mode",
    ),
    case(
        "gce-standby-without-size",
        {f"{G0}.target.gce.standby": {"mode": "Stop"}},
        f"{G0}.target.gce.standby.size",
    ),
    case("gce-zone-and-region", {f"{G0}.target.gce.region": "europe-west1"}, f"{G0}.target.gce"),
    case(
        "gce-without-group-name",
        {f"{G0}.target.gce.instanceGroupManager": DELETE},
        f"{G0}.target.gce.instanceGroupManager",
    ),
    case(
        "kubernetes-without-kind",
        {f"{G1}.target.kubernetes.kind": DELETE},
        f"{G1}.target.kubernetes.kind",
    ),
    # capacity
    case("minimum-above-maximum", {f"{G0}.capacity.minimum": 11}, f"{G0}.capacity"),
    case("default-above-maximum", {f"{G0}.capacity.default": 12}, f"{G0}.capacity"),
    case("maximum-zero", {f"{G0}.capacity.maximum": 0}, f"{G0}.capacity.maximum"),
    case("minimum-negative", {f"{G0}.capacity.minimum": -1}, f"{G0}.capacity.minimum"),
    case("maximum-a-string", {f"{G0}.capacity.maximum": "10"}, f"{G0}.capacity.maximum"),
    # activation
    case("no-activation-at-minimum-0", {f"{G0}.activation": DELETE}, G0),
    case(
        "activation-without-idle-for",
        {f"{G0}.activation.idleFor": DELETE},
        f"{G0}.activation.idleFor",
    ),
    case(
        "activation-undeclared-metric",
        {f"{G0}.activation.metric": "ghost"},
        f"{G0}.activation.metric",
        "spec",
    ),
    case(
        # A CPU ratio never falls to 0 while the group runs: it could never sleep.
        "activation-query-without-threshold",
        {f"{G0}.activation.metric": "cpu"},
        f"{G0}.activation.threshold",
        "spec",
    ),
    case(
        "activation-threshold-negative",
        {f"{G0}.activation.threshold": -1},
        f"{G0}.activation.threshold",
    ),
    case(
        "activation-threshold-a-word",
        {f"{G0}.activation.threshold": "five"},
        f"{G0}.activation.threshold",
    ),
    # a profile's bounds lie within the group's
    case(
        "profile-maximum-above-the-group",
        {f"{G1}.profiles[1].capacity.maximum": 6},
        f"{G1}.profiles[1].capacity.maximum",
        G1,
    ),
    case(
        "profile-minimum-below-the-group",
        {f"{G1}.profiles[1].capacity.minimum": 0},
        f"{G1}.profiles[1].capacity.minimum",
        G1,
    ),
    # rules
    case("rule-undeclared-metric", {f"{RULE}.metric": "ghost"}, f"{RULE}.metric", "spec"),
    case("rule-unknown-operator", {f"{RULE}.operator": "Above"}, f"{RULE}.operator"),
    case("rule-unknown-statistic", {f"{RULE}.statistic": "Median"}, f"{RULE}.statistic"),
    case(
        "rule-unknown-aggregation", {f"{RULE}.timeAggregation": "Mean"}, f"{RULE}.timeAggregation"
    ),
    case("rule-grain-over-window", {f"{RULE}.timeGrain": "10m"}, RULE),
    case("rule-grain-zero", {f"{RULE}.timeGrain": "0s"}, f"{RULE}.timeGrain"),
    case("rule-window-zero", {f"{RULE}.timeWindow": "0m"}, f"{RULE}.timeWindow"),
    case("rule-threshold-a-word", {f"{RULE}.threshold": "ten"}, f"{RULE}.threshold"),
    case("rule-without-action", {f"{RULE}.action": DELETE}, f"{RULE}.action", RULE),
    # target rules
    case(
        "target-and-operator",
        {f"{RULE}.target": {"averageValue": 50}},
        f"{RULE}.operator",
        RULE,
    ),
    case(
        "target-both-forms",
        {RULE: {"metric": "jobs", "target": {"averageValue": 50, "value": 0.8}}},
        f"{RULE}.target",
    ),
    case("target-no-form", {RULE: {"metric": "jobs", "target": {}}}, f"{RULE}.target"),
    case(
        "target-average-value-zero",
        {RULE: {"metric": "jobs", "target": {"averageValue": 0}}},
        f"{RULE}.target",
    ),
    case(
        "target-tolerance-above-1",
        {RULE: {"metric": "jobs", "target": {"value": 0.8, "tolerance": 1.5}}},
        f"{RULE}.target.tolerance",
    ),
    case(
        "target-per-instance",
        {RULE: {"metric": "jobs", "perInstance": True, "target": {"averageValue": 50}}},
        f"{RULE}.perInstance",
        RULE,
    ),
    case(
        "target-value-a-word",
        {RULE: {"metric": "jobs", "target": {"averageValue": "fifty"}}},
        f"{RULE}.target.averageValue",
    ),
    # behavior
    case(
        "behavior-unknown-select-policy",
        {f"{G1}.behavior": {"scaleUp": {"selectPolicy": "Maximum"}}},
        f"{G1}.behavior.scaleUp.selectPolicy",
    ),
    case(
        "behavior-unknown-policy-type",
        {
            f"{G1}.behavior": {
                "scaleUp": {"policies": [{"type": "Pod", "value": 4, "period": "15s"}]}
            }
        },
        f"{G1}.behavior.scaleUp.policies[0].type",
    ),
    case(
        "behavior-period-zero",
        {
            f"{G1}.behavior": {
                "scaleUp": {"policies": [{"type": "Pods", "value": 4, "period": "0s"}]}
            }
        },
        f"{G1}.behavior.scaleUp.policies[0].period",
    ),
    case(
        "behavior-period-over-30m",
        {
            f"{G1}.behavior": {
                "scaleDown": {"policies": [{"type": "Pods", "value": 1, "period": "1h"}]}
            }
        },
        f"{G1}.behavior.scaleDown.policies[0].period",
    ),
    case(
        "behavior-policy-value-zero",
        {
            f"{G1}.behavior": {
                "scaleDown": {"policies": [{"type": "Percent", "value": 0, "period": "1m"}]}
            }
        },
        f"{G1}.behavior.scaleDown.policies[0].value",
    ),
    case(
        "behavior-stabilization-over-1h",
        {f"{G1}.behavior": {"scaleDown": {"stabilizationWindow": "2h"}}},
        f"{G1}.behavior.scaleDown.stabilizationWindow",
    ),
    case("behavior-with-a-handoff", {f"{G0}.behavior": {"scaleUp": {}}}, G0),
    case("action-unknown-direction", {f"{ACTION}.direction": "Up"}, f"{ACTION}.direction"),
    case("action-unknown-type", {f"{ACTION}.type": "Double"}, f"{ACTION}.type"),
    case("action-change-by-zero", {f"{ACTION}.value": 0}, ACTION),
    case("action-negative-value", {f"{ACTION}.value": -2}, f"{ACTION}.value"),
    case("action-bad-cooldown", {f"{ACTION}.cooldown": "5 minutes"}, f"{ACTION}.cooldown"),
    # profiles
    case(
        "recurrence-unknown-day",
        {f"{G1}.profiles[1].recurrence.days[0]": "Monday"},
        f"{G1}.profiles[1].recurrence.days[0]",
    ),
    case(
        "recurrence-duration-zero",
        {f"{G1}.profiles[1].recurrence.duration": "0h"},
        f"{G1}.profiles[1].recurrence.duration",
    ),
    case(
        "recurrence-hour-24",
        {f"{G1}.profiles[1].recurrence.hours[0]": 24},
        f"{G1}.profiles[1].recurrence.hours[0]",
    ),
    case(
        "recurrence-and-fixed-date",
        {
            f"{G1}.profiles[1].fixedDate": {
                "start": "2026-12-01T00:00:00",
                "end": "2026-12-02T00:00:00",
            }
        },
        f"{G1}.profiles[1]",
    ),
    case("two-default-profiles", {f"{G1}.profiles[1].recurrence": DELETE}, G1),
    case(
        "duplicate-profile-name",
        {f"{G1}.profiles[1].name": "default"},
        f"{G1}.profiles[1].name",
        f"{G1}.profiles[1]",
    ),
    # handoff and fallback
    case(
        "gce-autoscaler-on-a-deployment",
        {f"{G1}.handoff": {"gceAutoscaler": {"maxReplicas": 3}}},
        G1,
    ),
    case("two-handoffs", {f"{G0}.handoff.hpa": {"maxReplicas": 3}}, f"{G0}.handoff"),
    case(
        "cpu-target-above-1",
        {f"{G0}.handoff.gceAutoscaler.cpuUtilizationTarget": 1.5},
        f"{G0}.handoff.gceAutoscaler.cpuUtilizationTarget",
    ),
    case(
        "autoscaler-min-above-max",
        {f"{G0}.handoff.gceAutoscaler.minReplicas": 11},
        f"{G0}.handoff.gceAutoscaler",
    ),
    case("fallback-above-maximum", {f"{G0}.fallback.replicas": 11}, G0),
    case(
        "failure-threshold-zero",
        {f"{G0}.fallback.failureThreshold": 0},
        f"{G0}.fallback.failureThreshold",
    ),
]

# Valid to the CRD schema, refused by autozero's own checks (the operator reports them as a
# condition and an Event on the policy).
PARSER_ONLY = [
    pytest.param(
        mutate({f"{G1}.profiles[1].recurrence.timeZone": "Europe/Atlantis"}),
        f"{G1}.profiles[1].recurrence.timeZone",
        "unknown time zone",
        id="unknown-zone",
    ),
    pytest.param(
        mutate({f"{RULE}.timeGrain": "10s"}),
        f"{RULE}.timeGrain",
        "shorter than pollingInterval",
        id="grain-shorter-than-polling",
    ),
    pytest.param(
        mutate({f"{RULE}.timeGrain": "2m", f"{RULE}.timeWindow": "5m"}),
        f"{RULE}.timeWindow",
        "whole number of timeGrain",
        id="window-not-whole-grains",
    ),
    pytest.param(
        mutate(
            {
                f"{G1}.profiles[1].recurrence": DELETE,
                f"{G1}.profiles[1].fixedDate": {
                    "start": "2026-12-02T00:00:00",
                    "end": "2026-12-01T00:00:00",
                },
            }
        ),
        f"{G1}.profiles[1].fixedDate.end",
        "must be after start",
        id="fixed-date-reversed",
    ),
    pytest.param(
        mutate(
            {
                f"{G1}.profiles[1].recurrence": DELETE,
                f"{G1}.profiles[1].fixedDate": {"start": "Christmas", "end": "2026-12-01T00:00:00"},
            }
        ),
        f"{G1}.profiles[1].fixedDate.start",
        "must be a date-time",
        id="fixed-date-text",
    ),
]
