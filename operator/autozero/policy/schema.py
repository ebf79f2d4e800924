"""The ScalingPolicy CRD's OpenAPI schema, written once here; the CRD file and the policy
reference are generated from it (`python -m autozero.policy.schema crd|docs`).

What a schema can say is said here (types, enums, patterns, ranges, CEL rules), so the apiserver
rejects it at `kubectl apply`; the parser (`parse.py`) checks the same and what only code can
(time zones, grain vs polling interval). Tests feed both the same good and bad manifests.

Each metric source and each target kind writes its own fragment, in its own module; this one
gathers them from the registries (`sources.registry`, `targets.registry`), which import no
client library.
"""

from __future__ import annotations

import sys

import yaml

from autozero.engine.spec import ActionType, Direction, Operator, Statistic, TimeAggregation
from autozero.policy.fields import (
    POSITIVE_DURATION,
    Schema,
    boolean,
    duration,
    either,
    enum,
    exactly_one,
    integer,
    name,
    named_list,
    number,
    obj,
    string,
)
from autozero.policy.model import API_GROUP, API_VERSION, DAYS, KIND, NAME_PATTERN
from autozero.sources.registry import SOURCES
from autozero.targets.registry import TARGETS

# List bounds keep the CEL cost estimate within the apiserver's budget.
MAX_METRICS = 20
MAX_GROUPS = 50
MAX_PROFILES = 10
MAX_RULES = 20


def _capacity(description: str) -> Schema:
    return obj(
        description,
        {
            "minimum": integer(
                "The fewest replicas; 0 lets the group sleep.", minimum=0, default=0
            ),
            "maximum": integer("The most replicas.", minimum=1),
            "default": integer(
                "The count a waking group starts at (at least 1). Defaults to max(1, minimum).",
                minimum=0,
            ),
        },
        required=["maximum"],
        rules=[
            ("self.minimum <= self.maximum", "minimum must not exceed maximum"),
            (
                "!has(self.default) || "
                "(self.minimum <= self.default && self.default <= self.maximum)",
                "default must lie between minimum and maximum",
            ),
        ],
    )


def _rule() -> Schema:
    return obj(
        "A rule: aggregate a metric over a window, then compare the value with a threshold "
        "(a threshold rule: operator, threshold, action; Azure's) or track a target with it (a "
        "target rule: target; the HPA's).",
        {
            "metric": string("The name of a metric declared in spec.metrics.", minLength=1),
            "timeGrain": duration(
                "The grain: samples within one grain are reduced with statistic.",
                "1m",
                positive_because="samples are reduced per grain of this length",
            ),
            "statistic": enum(
                "How samples within a grain are reduced across instances.",
                [s.value for s in Statistic],
                "Average",
            ),
            "timeWindow": duration(
                "The window: the last timeWindow/timeGrain grains are reduced "
                "with timeAggregation. Every grain needs data.",
                "5m",
                positive_because="the window must hold at least one grain",
            ),
            "timeAggregation": enum(
                "How the grains of the window are reduced.",
                [a.value for a in TimeAggregation],
                "Average",
            ),
            "target": _target(),
            "operator": enum(
                "How the value is compared with the threshold (threshold rules).",
                [o.value for o in Operator],
            ),
            "threshold": number("The value compared against (threshold rules)."),
            "perInstance": boolean(
                "Divide the value by the current replica count (e.g. backlog "
                "per worker) before comparing (threshold rules)."
            ),
            "action": obj(
                "What to do when the rule fires (threshold rules).",
                {
                    "direction": enum(
                        "Increase rules fire on ANY; Decrease rules need ALL.",
                        [d.value for d in Direction],
                    ),
                    "type": enum(
                        "ChangeCount adds/removes value replicas; PercentChangeCount "
                        "value percent (rounded away from zero, at least 1); ExactCount "
                        "sets value.",
                        [t.value for t in ActionType],
                        "ChangeCount",
                    ),
                    "value": integer("The count, percentage or exact count.", minimum=0, default=1),
                    "cooldown": duration(
                        "After any scale action of the group, this rule waits "
                        "this long before it may fire again.",
                        "5m",
                    ),
                },
                required=["direction"],
                rules=[
                    (
                        "self.type == 'ExactCount' || self.value >= 1",
                        "value must be at least 1 for ChangeCount and PercentChangeCount",
                    )
                ],
            ),
        },
        required=["metric"],
        rules=[
            (
                "duration(self.timeGrain) <= duration(self.timeWindow)",
                "timeGrain must not exceed timeWindow",
            ),
            (RULE_HAS_A_FORM, "a rule needs either target, or operator, threshold and action"),
            (TARGET_RULE_ONLY, "a target rule takes no operator, threshold or action"),
            (
                TARGET_RULE_NOT_PER_INSTANCE,
                "perInstance does not apply to a target rule (averageValue divides by the "
                "replica count itself)",
            ),
        ],
    )


#: A rule is a threshold rule (operator, threshold, action) or a target rule (target).
RULE_HAS_A_FORM = (
    "has(self.target) || (has(self.operator) && has(self.threshold) && has(self.action))"
)
TARGET_RULE_ONLY = (
    "!has(self.target) || !(has(self.operator) || has(self.threshold) || has(self.action))"
)
TARGET_RULE_NOT_PER_INSTANCE = "!has(self.target) || !self.perInstance"


def _target() -> Schema:
    return obj(
        "Target tracking, the HPA's semantics (a target rule): the count is set so that the "
        "aggregated value meets the target. Set exactly one of averageValue or value.",
        {
            "averageValue": number(
                "One replica per this much of the value, taken as the group's total (a "
                "backlog): desired = ceil(value / averageValue). KEDA's and the HPA's "
                "AverageValue: 'one replica per 50 messages' is averageValue: 50."
            ),
            "value": number(
                "The target of a value measured at the current count (a CPU ratio): desired "
                "= ceil(current x value / target). The HPA's Value."
            ),
            "tolerance": number(
                "Within this ratio of the target (|1 - value/target| <= tolerance) the count "
                "does not change: the HPA's tolerance.",
                minimum=0,
                maximum=1,
                default=0.1,
            ),
        },
        rules=[
            (exactly_one(["averageValue", "value"]), "set exactly one of averageValue or value"),
            ("!has(self.averageValue) || self.averageValue > 0", "averageValue must be above 0"),
            ("!has(self.value) || self.value > 0", "value must be above 0"),
        ],
    )


def _scaling_rules(direction: str, stabilization: str, why: str) -> Schema:
    return obj(
        f"Stabilization and rate policies of a {direction}, the HPA's HPAScalingRules.",
        {
            "stabilizationWindow": duration(
                f"The count goes {'down' if direction == 'scale-down' else 'up'} only as far as "
                f"the {'highest' if direction == 'scale-down' else 'lowest'} count the rules "
                f"recommended within this window (at most 1h). {why}",
                stabilization,
            )
            | {
                "x-kubernetes-validations": [
                    {"rule": "duration(self) <= duration('1h')", "message": "at most 1h"}
                ]
            },
            "selectPolicy": enum(
                "Max: the policy allowing the largest change applies; Min: the smallest; "
                f"Disabled: no {direction} by the rules at all.",
                ["Max", "Min", "Disabled"],
                "Max",
            ),
            "policies": {
                "type": "array",
                "description": f"Rate policies; none: the {direction} is not rate-limited.",
                "maxItems": 10,
                "items": obj(
                    "At most value replicas (Pods) or value percent of the count at the "
                    "period's start (Percent) per period.",
                    {
                        "type": enum("Pods or Percent.", ["Pods", "Percent"]),
                        "value": integer("The replicas or the percentage.", minimum=1),
                        "period": duration(
                            "The period, at most 30m.",
                            positive_because="a rate needs a period",
                        )
                        | {
                            "x-kubernetes-validations": [
                                {"rule": POSITIVE_DURATION, "message": "must be longer than 0s"},
                                {
                                    "rule": "duration(self) <= duration('30m')",
                                    "message": "at most 30m",
                                },
                            ]
                        },
                    },
                    required=["type", "value", "period"],
                ),
            },
        },
    )


def _behavior() -> Schema:
    return obj(
        "Rate policies on the count autozero's rules recommend (the HPA's behavior; never on a "
        "wake, a sleep, a profile's bounds or a fallback). Unset, autozero's defaults, which "
        "are not the HPA's: scale-up is not limited (a queue wants its workers now), and "
        "scale-down is stabilized over 5m in a profile with a target rule, as in the HPA.",
        {
            "scaleUp": _scaling_rules(
                "scale-up", "0s", "0s: the count follows the rules up at once."
            ),
            "scaleDown": _scaling_rules(
                "scale-down",
                "5m",
                "With behavior.scaleDown set, it applies to every profile, to threshold rules too.",
            ),
        },
    )


def _profile() -> Schema:
    return obj(
        "A profile (an Azure 'condition'): capacity bounds and rules, active on a schedule or, "
        "without one, by default.",
        {
            "name": name("profile"),
            "recurrence": obj(
                "Weekly start times. The profile runs from each start until the next start of "
                "any recurrence profile, or for duration.",
                {
                    "timeZone": string("An IANA time zone, e.g. Europe/Paris.", default="UTC"),
                    "days": {
                        "type": "array",
                        "description": "Days of the week.",
                        "minItems": 1,
                        "maxItems": 7,
                        "items": enum("A day.", list(DAYS)),
                    },
                    "hours": {
                        "type": "array",
                        "description": "Start hours (0-23).",
                        "minItems": 1,
                        "maxItems": 24,
                        "items": integer("An hour.", minimum=0, maximum=23),
                    },
                    "minutes": {
                        "type": "array",
                        "description": "Start minutes (0-59); [0] if unset.",
                        "maxItems": 60,
                        "items": integer("A minute.", minimum=0, maximum=59),
                    },
                    "duration": duration(
                        "How long each run lasts; unset: until the next profile starts.",
                        positive_because="a profile that lasts 0s is never active",
                    ),
                },
                required=["days", "hours"],
            ),
            "fixedDate": obj(
                "A one-off window; fixed dates win over recurrences.",
                {
                    "timeZone": string(
                        "The zone of start and end when they have no offset.", default="UTC"
                    ),
                    "start": string("Start, e.g. 2026-11-27T08:00:00 (inclusive)."),
                    "end": string("End (exclusive)."),
                },
                required=["start", "end"],
            ),
            "capacity": _capacity(
                "Bounds while this profile is active; the group's capacity if unset."
            ),
            "rules": {
                "type": "array",
                "description": "Threshold and target rules (docs/concepts.md: how they combine).",
                "maxItems": MAX_RULES,
                "items": _rule(),
            },
        },
        required=["name"],
        rules=[
            (
                "!(has(self.recurrence) && has(self.fixedDate))",
                "set recurrence or fixedDate, not both",
            )
        ],
    )


def _group() -> Schema:
    handoffs = {k.handoff.key: k.handoff for k in TARGETS.values() if k.handoff is not None}
    handoff_targets = {k.handoff.key: k.key for k in TARGETS.values() if k.handoff is not None}
    return obj(
        "A worker group: one scale target and how to drive it.",
        {
            "name": name("group"),
            "target": obj(
                f"What to scale: exactly one of {either(list(TARGETS))}.",
                {key: kind.schema() for key, kind in TARGETS.items()},
                rules=[(exactly_one(list(TARGETS)), f"set exactly one of {either(list(TARGETS))}")],
            ),
            "capacity": _capacity("The group's bounds (profiles may narrow them)."),
            "activation": obj(
                "Wake when the metric shows pending work; go to zero after idleFor with nothing "
                "pending nor in flight.",
                {
                    "metric": string("A metric declared in spec.metrics.", minLength=1),
                    "idleFor": duration(
                        "How long the group must be idle (pending at or below threshold, nothing "
                        "in flight) before it goes to zero. Checked at each poll: 0s sleeps the "
                        "group at the first poll that finds it idle, and anything up to "
                        "pollingInterval at the next one, with no grace for work that arrives in "
                        "bursts."
                    ),
                    "threshold": number(
                        "The group wakes only when pending work exceeds this, and counts as idle "
                        "only while it stays at or below it (KEDA's activationValue). Unset: 0, "
                        "any pending work wakes the group. Required when the metric is "
                        f"{_values_what()}: only a count of work falls to 0 when there is none.",
                        minimum=0,
                    ),
                },
                required=["metric", "idleFor"],
            ),
            "handoff": obj(
                "While awake, let a native autoscaler own the count (autozero only wakes and "
                "sleeps the group).",
                {key: handoff.schema() for key, handoff in handoffs.items()},
                rules=[
                    (
                        exactly_one(list(handoffs)),
                        f"set exactly one of {either(list(handoffs))}",
                    )
                ],
            ),
            "behavior": _behavior(),
            "profiles": named_list(
                "Profiles; the first whose schedule matches is active, else "
                "the one without a schedule.",
                _profile(),
                MAX_PROFILES,
            ),
            "fallback": obj(
                "What to do when a source keeps failing.",
                {
                    "failureThreshold": integer(
                        "Failed reads in a row before the group is Degraded.", minimum=1, default=3
                    ),
                    "replicas": integer(
                        "While Degraded, raise (never lower) the group to this count.", minimum=0
                    ),
                },
            ),
            "skip": boolean("Declare the group but never touch it."),
        },
        required=["name", "target", "capacity"],
        rules=[
            (
                "self.capacity.minimum > 0 || has(self.activation)",
                "activation (with idleFor) is required when capacity.minimum is 0",
            ),
            *(
                (
                    f"!has(self.handoff) || !has(self.handoff.{key}) || has(self.target.{target})",
                    f"handoff.{key} needs a {target} target",
                )
                for key, target in handoff_targets.items()
            ),
            (
                "!has(self.profiles) || self.profiles.filter(p, !has(p.recurrence) && "
                "!has(p.fixedDate)).size() <= 1",
                "only one profile may have no schedule (the default profile)",
            ),
            (
                "!has(self.fallback) || !has(self.fallback.replicas) || "
                "self.fallback.replicas <= self.capacity.maximum",
                "fallback.replicas must not exceed capacity.maximum",
            ),
            (PROFILES_WITHIN_GROUP, "every profile's capacity must lie within the group's"),
            (
                "!has(self.handoff) || !has(self.behavior)",
                "behavior applies to autozero's rules, which a handoff replaces: put it in "
                "handoff.hpa.behavior",
            ),
        ],
    )


#: The group's capacity caps every profile's: a profile narrows the bounds, never widens them.
#: (A profile's default lies between its own minimum and maximum, so within the group's too.)
PROFILES_WITHIN_GROUP = (
    "!has(self.profiles) || self.profiles.all(p, !has(p.capacity) || "
    "(p.capacity.minimum >= self.capacity.minimum && "
    "p.capacity.maximum <= self.capacity.maximum))"
)

#: Cross-field rules of the spec. The apiserver can only report them on `spec`; `autozero
#: validate` names the element and the value instead (validate.py explains them).
ACTIVATION_METRICS_DECLARED = (
    "self.groups.all(g, !has(g.activation) || (has(self.metrics) && "
    "self.metrics.exists(m, m.name == g.activation.metric)))"
)


def value_sources() -> list[str]:
    """The sources whose value counts no work (a query), in the registry's order."""
    return [key for key, source in SOURCES.items() if not source.counts_work]


def _values_what() -> str:
    return " or ".join(SOURCES[key].what for key in value_sources())


def activation_threshold_rule() -> str:
    """A value that counts no work may never fall to 0 (a CPU ratio, a rate): as an activation
    metric it needs an explicit threshold, or the group could never sleep."""
    has = " || ".join(f"has(m.{key})" for key in value_sources())
    has = has if len(value_sources()) == 1 else f"({has})"
    return (
        "self.groups.all(g, !has(g.activation) || has(g.activation.threshold) || "
        "!has(self.metrics) || !self.metrics.exists(m, m.name == g.activation.metric && "
        f"{has}))"
    )


RULE_METRICS_DECLARED = (
    "self.groups.all(g, !has(g.profiles) || g.profiles.all(p, !has(p.rules) || "
    "p.rules.all(r, has(self.metrics) && self.metrics.exists(m, m.name == r.metric))))"
)


def spec_schema() -> Schema:
    metric = obj(
        "A named metric source: exactly one source key.",
        {"name": name("metric"), **{key: source.schema() for key, source in SOURCES.items()}},
        required=["name"],
        rules=[(exactly_one(list(SOURCES)), f"set exactly one source: {either(list(SOURCES))}")],
    )
    return obj(
        "What to scale, on which signals, and how.",
        {
            "pollingInterval": duration(
                "How often each group is evaluated.",
                "15s",
                positive_because="it is the time between two evaluations",
            ),
            "paused": boolean(
                'Evaluate and report, never scale (also: annotation autozero.dev/paused: "true").'
            ),
            "dryRun": boolean("Decide and report, never scale."),
            "serviceAccountName": string(
                "A ServiceAccount of the policy's namespace that bounds what the policy may "
                "scale: before acting, autozero asks the apiserver (SubjectAccessReview) whether "
                "it may get and patch each Kubernetes target's /scale, and create and delete "
                "HorizontalPodAutoscalers when a group hands off to one. Unset: the operator's "
                "--default-service-account, if it has one; else only the same-namespace rule.",
                maxLength=253,
                pattern=NAME_PATTERN,
            ),
            "metrics": named_list("The metrics groups read.", metric, MAX_METRICS),
            "groups": {**named_list("The worker groups.", _group(), MAX_GROUPS), "minItems": 1},
        },
        required=["groups"],
        rules=[
            (
                ACTIVATION_METRICS_DECLARED,
                "every activation.metric must name a metric declared in spec.metrics",
            ),
            (
                RULE_METRICS_DECLARED,
                "every rule's metric must name a metric declared in spec.metrics",
            ),
            *(
                [
                    (
                        activation_threshold_rule(),
                        f"an activation metric that is {_values_what()} needs "
                        "activation.threshold, the value at or below which the group counts as "
                        "idle",
                    )
                ]
                if value_sources()
                else []
            ),
        ],
    )


def crd() -> Schema:
    status = {
        "type": "object",
        "description": "What autozero observed and decided.",
        "x-kubernetes-preserve-unknown-fields": True,
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"scalingpolicies.{API_GROUP}"},
        "spec": {
            "group": API_GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": "scalingpolicies",
                "singular": "scalingpolicy",
                "shortNames": ["sp"],
                "categories": ["autozero"],
            },
            "versions": [
                {
                    "name": API_VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {
                            "name": "Groups",
                            "type": "integer",
                            "jsonPath": ".status.summary.groups",
                            "description": "Worker groups in the policy.",
                        },
                        {
                            "name": "Awake",
                            "type": "integer",
                            "jsonPath": ".status.summary.awake",
                            "description": "Groups with more than zero replicas.",
                        },
                        {
                            "name": "Last Decision",
                            "type": "string",
                            "jsonPath": ".status.summary.lastDecision",
                            "description": "The latest scale action and its reason.",
                        },
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                    ],
                    "schema": {
                        "openAPIV3Schema": obj(
                            "A ScalingPolicy drives worker groups down to zero when idle and "
                            "back up "
                            "when work arrives.",
                            {
                                "apiVersion": string("The API version."),
                                "kind": string("The kind."),
                                # The apiserver allows nothing more than the type here.
                                "metadata": {"type": "object"},
                                "spec": spec_schema(),
                                "status": status,
                            },
                            required=["spec"],
                        )
                    },
                }
            ],
        },
    }


def crd_yaml() -> str:
    header = (
        "# Generated by `python -m autozero.policy.schema crd`; edit schema.py, not this file.\n"
    )
    return header + yaml.safe_dump(crd(), sort_keys=False, width=100)


if __name__ == "__main__":
    if sys.argv[1:] == ["crd"]:
        sys.stdout.write(crd_yaml())
    else:
        sys.exit("usage: python -m autozero.policy.schema crd")
