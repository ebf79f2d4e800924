"""The ScalingPolicy CRD's OpenAPI schema, written once here; the CRD file and the policy
reference are generated from it (`python -m autozero.policy.schema crd|docs`).

What a schema can say is said here (types, enums, patterns, ranges, CEL rules), so the apiserver
rejects it at `kubectl apply`; the parser (`parse.py`) checks the same and what only code can
(time zones, grain vs polling interval). Tests feed both the same good and bad manifests.
"""

from __future__ import annotations

import sys
from typing import Any

import yaml

from autozero.engine.durations import DURATION_PATTERN
from autozero.engine.spec import ActionType, Direction, Operator, Statistic, TimeAggregation
from autozero.policy.model import API_GROUP, API_VERSION, DAYS, KIND, NAME_PATTERN

Schema = dict[str, Any]

# List bounds keep the CEL cost estimate within the apiserver's budget.
MAX_METRICS = 20
MAX_GROUPS = 50
MAX_PROFILES = 10
MAX_RULES = 20


def string(description: str, **extra: Any) -> Schema:
    return {"type": "string", "description": description, **extra}


#: The CEL rule of a duration that must be positive (the pattern already refuses negatives).
POSITIVE_DURATION = "duration(self) > duration('0s')"


def duration(
    description: str, default: str | None = None, *, positive_because: str | None = None
) -> Schema:
    """A duration field; `positive_because` refuses 0s, saying why it cannot work."""
    schema = string(
        description + " A duration such as 30s, 5m or 1h30m.",
        pattern=DURATION_PATTERN,
        maxLength=32,
    )
    if default is not None:
        schema["default"] = default
    if positive_because is not None:
        schema["x-kubernetes-validations"] = [
            {"rule": POSITIVE_DURATION, "message": f"must be longer than 0s: {positive_because}"}
        ]
    return schema


def integer(description: str, **extra: Any) -> Schema:
    return {"type": "integer", "description": description, **extra}


def number(description: str, **extra: Any) -> Schema:
    return {"type": "number", "description": description, **extra}


def boolean(description: str, default: bool = False) -> Schema:
    return {"type": "boolean", "description": description, "default": default}


def enum(description: str, values: list[str], default: str | None = None) -> Schema:
    schema = string(description, enum=values)
    if default is not None:
        schema["default"] = default
    return schema


def obj(
    description: str,
    properties: dict[str, Schema],
    *,
    required: list[str] | None = None,
    rules: list[tuple[str, str]] = (),  # type: ignore[assignment]
) -> Schema:
    schema: Schema = {"type": "object", "description": description, "properties": properties}
    if required:
        schema["required"] = required
    if rules:
        schema["x-kubernetes-validations"] = [{"rule": r, "message": m} for r, m in rules]
    return schema


def named_list(description: str, items: Schema, max_items: int) -> Schema:
    """A list whose items are unique by `name` (the apiserver enforces it as a list map)."""
    return {
        "type": "array",
        "description": description,
        "items": items,
        "maxItems": max_items,
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["name"],
    }


def name(what: str) -> Schema:
    return string(
        f"The {what}'s name: lower-case letters, digits and '-'.",
        pattern=NAME_PATTERN,
        maxLength=63,
    )


def exactly_one(keys: list[str]) -> str:
    return " + ".join(f"(has(self.{k}) ? 1 : 0)" for k in keys) + " == 1"


#: A URL whose authority carries no user or password: credentials belong in a Secret.
URL_WITHOUT_CREDENTIALS = r"^[a-zA-Z][a-zA-Z0-9+.-]*://[^/@]*(/.*)?$"


def url(description: str) -> Schema:
    return string(
        description + " No credentials: put a URL with a password in a Secret.",
        pattern=URL_WITHOUT_CREDENTIALS,
        maxLength=2048,
    )


def secret_ref(what: str) -> Schema:
    return obj(
        f"Where to read {what}: a key of a Secret in the policy's own namespace.",
        {
            "secretKeyRef": obj(
                "A key of a Secret in the policy's namespace.",
                {
                    "name": string("The Secret's name.", maxLength=253),
                    "key": string("The key within the Secret.", maxLength=253),
                },
                required=["name", "key"],
            )
        },
        required=["secretKeyRef"],
    )


PUSH = boolean(
    "Let autozero turn on the server's keyspace notifications (CONFIG SET "
    "notify-keyspace-events) so new work wakes a sleeping group at once. Off: autozero uses "
    "them if the server has them, and polls."
)


def connection(what: str, example: str) -> dict[str, Schema]:
    return {
        "url": url(f"The {what} URL (e.g. {example})."),
        "urlFrom": secret_ref(f"the {what} URL (it may carry a password)"),
    }


def connection_rules(what: str) -> list[tuple[str, str]]:
    return [("has(self.url) != has(self.urlFrom)", f"set exactly one of url or urlFrom for {what}")]


def _sources() -> dict[str, Schema]:
    redis_conn = obj(
        "A Redis server.",
        {**connection("Redis", "redis://redis:6379/0"), "configureNotifications": PUSH},
        rules=connection_rules("Redis"),
    )
    mongo_conn = obj(
        "A MongoDB server.",
        connection("MongoDB", "mongodb://mongo:27017/mrq"),
        rules=connection_rules("MongoDB"),
    )
    return {
        "mrq": obj(
            "An MRQ queue. Regular queues keep their jobs in MongoDB (pending: status queued; in "
            "flight: status started); raw queues (names ending in _raw, _set, _sorted_set, "
            "_timed_set) live in Redis.",
            {
                "queue": string(
                    "The queue name; a name ending in '/' covers its subqueues.", minLength=1
                ),
                "prefix": string("MRQ's Redis key prefix.", default="mrq"),
                "redis": redis_conn,
                "mongodb": mongo_conn,
            },
            required=["queue"],
            rules=[
                (
                    "has(self.redis) || has(self.mongodb)",
                    "set redis (raw queues) or mongodb (regular queues), or both",
                )
            ],
        ),
        "redis": obj(
            "The length of Redis lists, sets, sorted sets or streams, summed.",
            {
                **connection("Redis", "redis://redis:6379/0"),
                "configureNotifications": PUSH,
                "key": string("One key."),
                "keyPattern": string("A SCAN pattern (e.g. jobs:*); matched keys are summed."),
                "type": enum(
                    "The key type; auto asks Redis.",
                    ["auto", "list", "set", "zset", "stream"],
                    "auto",
                ),
                "consumerGroup": string(
                    "For streams: the consumer group whose pending entries count as in flight."
                ),
            },
            rules=[
                *connection_rules("Redis"),
                ("has(self.key) != has(self.keyPattern)", "set exactly one of key or keyPattern"),
            ],
        ),
        "rq": obj(
            "An RQ queue: pending is the queue's length, in flight its started-job registry.",
            {
                **connection("Redis", "redis://redis:6379/0"),
                "configureNotifications": PUSH,
                "queue": string("The RQ queue name.", minLength=1, default="default"),
                "prefix": string("RQ's key prefix (RQ_KEY_PREFIX).", default="rq"),
            },
            rules=connection_rules("Redis"),
        ),
        "rabbitmq": obj(
            "RabbitMQ queues over the management HTTP API: pending is messages ready, in flight "
            "messages unacknowledged.",
            {
                "managementUrl": url("The management API's base URL (e.g. http://rabbitmq:15672)."),
                "usernameFrom": secret_ref("the management API user"),
                "passwordFrom": secret_ref("the management API password"),
                "vhost": string("The virtual host.", default="/"),
                "queue": string("One queue."),
                "queuePattern": string("A regular expression; matching queues are summed."),
            },
            required=["managementUrl"],
            rules=[
                (
                    "has(self.queue) != has(self.queuePattern)",
                    "set exactly one of queue or queuePattern",
                )
            ],
        ),
        "prometheus": obj(
            "A Prometheus instant query that returns a scalar or a one-element vector.",
            {
                "serverAddress": url("The Prometheus base URL (e.g. http://prometheus:9090)."),
                "query": string("The PromQL expression.", minLength=1),
                "emptyAs": number(
                    "The value to use when the query returns no series. Unset: "
                    "an empty result is 'no data', never zero."
                ),
                "timeout": duration(
                    "How long one query may take.",
                    "5s",
                    positive_because="a query given no time always fails",
                ),
                "bearerTokenFrom": secret_ref("a bearer token"),
                "usernameFrom": secret_ref("a basic-auth user"),
                "passwordFrom": secret_ref("a basic-auth password"),
                "insecureSkipVerify": boolean("Skip TLS certificate verification (tests only)."),
            },
            required=["serverAddress", "query"],
        ),
    }


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
    return obj(
        "A worker group: one scale target and how to drive it.",
        {
            "name": name("group"),
            "target": obj(
                "What to scale: exactly one of gce or kubernetes.",
                {
                    "gce": obj(
                        "A GCE managed instance group, zonal (zone) or regional (region).",
                        {
                            "project": string("The GCE project.", minLength=1),
                            "zone": string("The zone of a zonal group."),
                            "region": string("The region of a regional group."),
                            "instanceGroupManager": string("The group's name.", minLength=1),
                            "credentials": secret_ref(
                                "a service-account key (JSON) to call Compute Engine with "
                                "instead of the operator's own identity"
                            ),
                        },
                        required=["project", "instanceGroupManager"],
                        rules=[
                            (
                                "has(self.zone) != has(self.region)",
                                "set exactly one of zone or region",
                            )
                        ],
                    ),
                    "kubernetes": obj(
                        "A workload with a /scale subresource in the policy's namespace.",
                        {
                            "apiVersion": string("e.g. apps/v1.", minLength=1),
                            "kind": string("e.g. Deployment.", minLength=1),
                            "name": string("The workload's name.", minLength=1),
                            "namespace": string(
                                "The workload's namespace. Only the policy's own is allowed "
                                "(the default): any other is refused with the condition "
                                "reason TargetForbidden, and nothing is scaled.",
                                maxLength=63,
                            ),
                        },
                        required=["apiVersion", "kind", "name"],
                    ),
                },
                rules=[
                    (exactly_one(["gce", "kubernetes"]), "set exactly one of gce or kubernetes")
                ],
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
                        "any pending work wakes the group. Required when the metric is a "
                        "Prometheus query: only a count of work falls to 0 when there is none.",
                        minimum=0,
                    ),
                },
                required=["metric", "idleFor"],
            ),
            "handoff": obj(
                "While awake, let a native autoscaler own the count (autozero only wakes and "
                "sleeps the group).",
                {
                    "gceAutoscaler": obj(
                        "A GCE autoscaler created on wake and deleted before sleep.",
                        {
                            "minReplicas": integer("Autoscaler minimum.", minimum=1, default=1),
                            "maxReplicas": integer("Autoscaler maximum.", minimum=1),
                            "coolDownPeriod": duration("The VM initialisation period.", "60s"),
                            "cpuUtilizationTarget": number(
                                "CPU target (0-1].", minimum=0.01, maximum=1, default=0.6
                            ),
                            "stabilizationPeriod": duration("How long scale-in waits."),
                        },
                        required=["maxReplicas"],
                        rules=[
                            (
                                "self.minReplicas <= self.maxReplicas",
                                "minReplicas must not exceed maxReplicas",
                            )
                        ],
                    ),
                    "hpa": obj(
                        "A HorizontalPodAutoscaler created on wake and deleted before sleep.",
                        {
                            "minReplicas": integer("HPA minimum.", minimum=1, default=1),
                            "maxReplicas": integer("HPA maximum.", minimum=1),
                            "metrics": {
                                "type": "array",
                                "description": "autoscaling/v2 metrics.",
                                "items": {
                                    "type": "object",
                                    "description": "An autoscaling/v2 MetricSpec.",
                                    "x-kubernetes-preserve-unknown-fields": True,
                                },
                            },
                            "behavior": {
                                "type": "object",
                                "description": "autoscaling/v2 behavior.",
                                "x-kubernetes-preserve-unknown-fields": True,
                            },
                        },
                        required=["maxReplicas"],
                        rules=[
                            (
                                "self.minReplicas <= self.maxReplicas",
                                "minReplicas must not exceed maxReplicas",
                            )
                        ],
                    ),
                },
                rules=[
                    (
                        exactly_one(["gceAutoscaler", "hpa"]),
                        "set exactly one of gceAutoscaler or hpa",
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
            (
                "!has(self.handoff) || !has(self.handoff.gceAutoscaler) || has(self.target.gce)",
                "handoff.gceAutoscaler needs a gce target",
            ),
            (
                "!has(self.handoff) || !has(self.handoff.hpa) || has(self.target.kubernetes)",
                "handoff.hpa needs a kubernetes target",
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
#: A Prometheus query may never fall to 0 (a CPU ratio, a rate): as an activation metric it
#: needs an explicit threshold, or the group could never sleep.
ACTIVATION_THRESHOLD_FOR_QUERIES = (
    "self.groups.all(g, !has(g.activation) || has(g.activation.threshold) || "
    "!has(self.metrics) || !self.metrics.exists(m, m.name == g.activation.metric && "
    "has(m.prometheus)))"
)
RULE_METRICS_DECLARED = (
    "self.groups.all(g, !has(g.profiles) || g.profiles.all(p, !has(p.rules) || "
    "p.rules.all(r, has(self.metrics) && self.metrics.exists(m, m.name == r.metric))))"
)


def spec_schema() -> Schema:
    metric = obj(
        "A named metric source: exactly one source key.",
        {"name": name("metric"), **_sources()},
        required=["name"],
        rules=[
            (
                exactly_one(["mrq", "redis", "rq", "rabbitmq", "prometheus"]),
                "set exactly one source: mrq, redis, rq, rabbitmq or prometheus",
            )
        ],
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
            (
                ACTIVATION_THRESHOLD_FOR_QUERIES,
                "an activation metric that is a Prometheus query needs activation.threshold, the "
                "value at or below which the group counts as idle",
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
