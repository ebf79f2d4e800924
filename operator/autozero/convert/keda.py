"""KEDA ScaledObjects (and their TriggerAuthentications) -> ScalingPolicy manifests.

The mapping, field by field, is in docs/migrating-from-keda.md (from KEDA's ScaledObject
specification and scaler pages). In short: `scaleTargetRef` becomes a Kubernetes target, the
replica counts its capacity, `cooldownPeriod` its `idleFor`, each queue or Prometheus trigger a
metric and a target rule (the trigger's `metricType` its form, its activation value the
`activation.threshold`), a cron trigger a profile on a weekly recurrence, the HPA's behavior
`behavior` (its defaults written out when the ScaledObject has none, to keep KEDA's pace), and a
TriggerAuthentication's `secretTargetRef` the `...From.secretKeyRef` fields.

Every field that cannot be carried, or is carried with a different meaning, becomes a `Note`
(file, object, field, why): nothing is dropped silently.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from autozero.convert.cron import CronUnsupported, window
from autozero.engine.durations import format_duration
from autozero.policy.model import API_GROUP, API_VERSION, DAYS, KIND
from autozero.quantity import parse_quantity

KEDA_API = "keda.sh/v1alpha1"
PAUSED = "autoscaling.keda.sh/paused"
PAUSED_REPLICAS = "autoscaling.keda.sh/paused-replicas"
PAUSED_SCALE_IN = "autoscaling.keda.sh/paused-scale-in"
PAUSED_SCALE_OUT = "autoscaling.keda.sh/paused-scale-out"
#: The HPA's default behavior (kube-controller-manager): what a ScaledObject without one gets.
HPA_SCALE_UP = {
    "stabilizationWindow": "0s",
    "selectPolicy": "Max",
    "policies": [
        {"type": "Percent", "value": 100, "period": "15s"},
        {"type": "Pods", "value": 4, "period": "15s"},
    ],
}
HPA_SCALE_DOWN = {
    "stabilizationWindow": "5m",
    "selectPolicy": "Max",
    "policies": [{"type": "Percent", "value": 100, "period": "15s"}],
}
#: The management plugin's default port: KEDA's AMQP host says nothing of it.
MANAGEMENT_PORT = 15672
_NAME = re.compile(r"[^a-z0-9-]+")


@dataclass(frozen=True, slots=True)
class Note:
    """A field not carried, or carried with another meaning; `where` is FILE:LINE."""

    where: str
    object: str  # "ScaledObject shop/orders"
    field: str  # "spec.triggers[0].metadata.mode"
    why: str

    def __str__(self) -> str:
        return f"{self.where}: {self.object}: {self.field}: {self.why}"


@dataclass(frozen=True, slots=True)
class Converted:
    """One ScaledObject's conversion: the policy, or None when it could not be made."""

    object: str
    policy: dict[str, Any] | None
    notes: tuple[Note, ...]


class _Refused(Exception):
    """A trigger (or an object) that cannot be converted; the note says why."""

    def __init__(self, path: str, why: str) -> None:
        super().__init__(why)
        self.path, self.why = path, why


@dataclass
class _Metric:
    name: str
    source: dict[str, Any]  # {"redis": {...}}
    target: dict[str, float]  # {"averageValue": 5}
    activation: float | None  # None: this metric cannot wake a group (CPU)
    path: str


#: The connection metadata both Redis triggers share (read by _redis_settings).
_REDIS_CONNECTION = frozenset(
    {"address", "host", "port", "enableTLS", "unsafeSsl", "databaseIndex"}
)


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _float(value: Any, path: str) -> float:
    try:
        return float(_text(value))
    except ValueError:
        raise _Refused(path, f"{value!r} is not a number") from None


def _int(value: Any, path: str, default: int) -> int:
    if value is None:
        return default
    try:
        return int(_text(value))
    except ValueError:
        raise _Refused(path, f"{value!r} is not a whole number") from None


def _bool(value: Any) -> bool:
    return _text(value).lower() == "true"


def _quantity(value: Any, path: str) -> float:
    try:
        return parse_quantity(value)
    except ValueError as exc:
        raise _Refused(path, str(exc)) from None


def _seconds(value: int) -> str:
    return format_duration(timedelta(seconds=value))


def _plain(value: float) -> float | int:
    """50.0 as 50, so the YAML reads as written."""
    return int(value) if value.is_integer() else value


def _name(text: str, fallback: str) -> str:
    cleaned = _NAME.sub("-", text.lower()).strip("-")[:63].strip("-")
    return cleaned or fallback


def _secret(ref: tuple[str, str]) -> dict[str, Any]:
    return {"secretKeyRef": {"name": ref[0], "key": ref[1]}}


class _Object:
    """One ScaledObject being converted; collects its notes."""

    def __init__(
        self,
        body: dict[str, Any],
        locate: Callable[[str], str],
        auths: Mapping[tuple[str, str], dict[str, Any]],
        prometheus: str | None,
    ) -> None:
        self.body = body
        self.metadata = body.get("metadata") or {}
        self.spec = body.get("spec") or {}
        self.namespace = _text(self.metadata.get("namespace")) or None
        self.label = f"ScaledObject {self.namespace or 'default'}/{self.metadata.get('name')}"
        self.locate = locate
        self.auths = auths
        self.prometheus = prometheus
        self.notes: list[Note] = []

    def note(self, path: str, why: str) -> None:
        self.notes.append(Note(self.locate(path), self.label, path, why))

    # --- triggers -----------------------------------------------------------------------------

    def _auth(self, trigger: dict[str, Any], path: str) -> dict[str, tuple[str, str]]:
        """The trigger's TriggerAuthentication as {parameter: (secret, key)}."""
        ref = trigger.get("authenticationRef")
        if not ref:
            return {}
        kind = _text(ref.get("kind")) or "TriggerAuthentication"
        if kind != "TriggerAuthentication":
            raise _Refused(
                f"{path}.authenticationRef.kind",
                f"{kind}: autozero reads Secrets of the policy's own namespace only",
            )
        name = _text(ref.get("name"))
        auth = self.auths.get((self.namespace or "default", name))
        if auth is None:
            raise _Refused(
                f"{path}.authenticationRef.name",
                f"TriggerAuthentication {name!r} is not among the files given",
            )
        spec = auth.get("spec") or {}
        for key in spec:
            if key != "secretTargetRef":
                self.note(
                    f"{path}.authenticationRef",
                    f"TriggerAuthentication {name}: spec.{key} not carried (autozero reads "
                    "credentials from Secrets of the policy's namespace: secretTargetRef only)",
                )
        return {
            _text(item.get("parameter")): (_text(item.get("name")), _text(item.get("key")))
            for item in spec.get("secretTargetRef") or []
        }

    def _target(self, trigger: dict[str, Any], path: str, value: float) -> dict[str, float]:
        kind = _text(trigger.get("metricType")) or "AverageValue"
        if kind == "AverageValue":
            return {"averageValue": _plain(value)}
        if kind == "Value":
            return {"value": _plain(value)}
        raise _Refused(f"{path}.metricType", f"{kind} applies to cpu and memory triggers only")

    def _unused(self, metadata: Mapping[str, Any], path: str, used: set[str], why: str) -> None:
        for key in metadata:
            if key not in used:
                self.note(f"{path}.metadata.{key}", why)

    def _redis_settings(
        self, trigger: dict[str, Any], path: str, meta: Mapping[str, Any]
    ) -> dict[str, Any]:
        """The connection part shared by the `redis` and `redis-streams` triggers: the URL (or
        the Secret key that holds it), with what is not carried noted."""
        auth = self._auth(trigger, path)
        for env in ("addressFromEnv", "hostFromEnv", "portFromEnv", "passwordFromEnv"):
            if env in meta:
                raise _Refused(
                    f"{path}.metadata.{env}",
                    "read from the workload's environment: autozero reads the policy and "
                    "Secrets, not a workload's environment",
                )
        for param in ("address", "host", "port"):
            if param in auth:
                raise _Refused(
                    f"{path}.authenticationRef",
                    f"the Redis {param} comes from a Secret: autozero needs the server's "
                    "address in the policy, or its whole URL in one Secret key",
                )
        address = _text(meta.get("address"))
        if not address and meta.get("host"):
            address = f"{_text(meta['host'])}:{_text(meta.get('port')) or '6379'}"
        if not address:
            raise _Refused(f"{path}.metadata.address", "no Redis address")
        scheme = "rediss" if _bool(meta.get("enableTLS")) else "redis"
        database = _int(meta.get("databaseIndex"), f"{path}.metadata.databaseIndex", 0)
        url = f"{scheme}://{address}/{database}"
        settings: dict[str, Any] = {}
        if "password" in auth or "username" in auth:
            secret = auth.get("password") or auth["username"]
            settings["urlFrom"] = _secret((secret[0], "redis-url"))
            self.note(
                f"{path}.authenticationRef",
                f"autozero reads the Redis URL, credentials included, from one Secret key: "
                f"add key redis-url to Secret {secret[0]}, holding "
                f"{scheme}://USER:PASSWORD@{address}/{database}",
            )
        else:
            settings["url"] = url
        for param in ("tls", "ca", "cert", "key", "keyPassword"):
            if param in auth:
                self.note(
                    f"{path}.authenticationRef",
                    f"TLS parameter {param} not carried: put the rediss:// URL in the Secret",
                )
        if _bool(meta.get("unsafeSsl")):
            self.note(
                f"{path}.metadata.unsafeSsl",
                "not carried: add ?ssl_cert_reqs=none to a rediss:// URL to skip verification",
            )
        return settings

    def _redis(self, trigger: dict[str, Any], path: str, name: str) -> _Metric:
        meta = trigger.get("metadata") or {}
        if "keyName" in meta or "listName" not in meta:
            raise _Refused(
                f"{path}.metadata.keyName" if "keyName" in meta else f"{path}.metadata",
                "only Redis lists convert: autozero's redis source reads lengths, not a "
                "string's value",
            )
        settings = self._redis_settings(trigger, path, meta)
        settings = {"key": _text(meta["listName"]), "type": "list", **settings}
        length = _float(meta.get("listLength", 5), f"{path}.metadata.listLength")
        activation = _float(
            meta.get("activationListLength", 0), f"{path}.metadata.activationListLength"
        )
        used = {*_REDIS_CONNECTION, "listName", "listLength", "activationListLength"}
        self._unused(meta, path, used, "not carried by autozero's redis source")
        return _Metric(
            name, {"redis": settings}, self._target(trigger, path, length), activation, path
        )

    def _redis_streams(self, trigger: dict[str, Any], path: str, name: str) -> _Metric:
        """KEDA's three stream modes, as KEDA 2.21 picks them: no consumerGroup, the stream's
        length (streamLength); a consumerGroup and lagCount, the group's lag; a consumerGroup
        alone, its pending-entries list (pendingEntriesCount, delivered and not acknowledged).
        autozero's redis source with a consumerGroup reads both at once: the lag as the work
        pending, the pending-entries list as in flight (a group never sleeps under it)."""
        meta = trigger.get("metadata") or {}
        stream = _text(meta.get("stream"))
        if not stream:
            raise _Refused(f"{path}.metadata.stream", "no stream name")
        settings = self._redis_settings(trigger, path, meta)
        settings = {"key": stream, "type": "stream", **settings}
        group = _text(meta.get("consumerGroup"))
        used = {*_REDIS_CONNECTION, "stream", "consumerGroup", "activationLagCount"}
        if not group:
            count = "streamLength"
        elif "lagCount" in meta:
            count = "lagCount"
        else:
            count = "pendingEntriesCount"
            self.note(
                f"{path}.metadata.{count}",
                "KEDA scales on the group's pending entries (delivered, not acknowledged), so it "
                "wakes only once a consumer has read an entry; autozero scales on the entries "
                "not yet delivered (the group's lag), wakes on them, and never sleeps while any "
                "entry is delivered and not acknowledged: the target is carried onto the lag",
            )
        if group:
            settings["consumerGroup"] = group
        used.add(count)
        target = _float(meta.get(count, 5), f"{path}.metadata.{count}")
        activation = _float(
            meta.get("activationLagCount", 0), f"{path}.metadata.activationLagCount"
        )
        self._unused(meta, path, used, "not carried by autozero's redis source")
        return _Metric(
            name, {"redis": settings}, self._target(trigger, path, target), activation, path
        )

    def _rabbitmq(self, trigger: dict[str, Any], path: str, name: str) -> _Metric:
        meta = trigger.get("metadata") or {}
        auth = self._auth(trigger, path)
        if "hostFromEnv" in meta:
            raise _Refused(
                f"{path}.metadata.hostFromEnv",
                "read from the workload's environment: autozero needs the management API's "
                "URL in the policy",
            )
        if "host" in auth:
            raise _Refused(
                f"{path}.authenticationRef",
                "the RabbitMQ host comes from a Secret: autozero needs the management API's URL "
                "in the policy (managementUrl, without credentials) and the user and password "
                "from Secret keys (username and password parameters)",
            )
        host = _text(meta.get("host"))
        if not host:
            raise _Refused(f"{path}.metadata.host", "no RabbitMQ host")
        parts = urlsplit(host)
        protocol = _text(meta.get("protocol")) or "auto"
        if protocol == "auto":
            protocol = "amqp" if parts.scheme in ("amqp", "amqps") else "http"
        mode = _text(meta.get("mode"))
        if mode == "MessageRate" or "publishRate" in meta:
            raise _Refused(
                f"{path}.metadata.mode",
                "MessageRate (a publish rate): autozero's rabbitmq source reads queue lengths; "
                "write the rate as a prometheus metric (e.g. from RabbitMQ's Prometheus plugin)",
            )
        if mode not in ("", "QueueLength"):
            raise _Refused(f"{path}.metadata.mode", f"unknown mode {mode!r}")
        value_key = "value" if mode == "QueueLength" else "queueLength"
        length = _float(meta.get(value_key, 20), f"{path}.metadata.{value_key}")
        if parts.username or parts.password:
            self.note(
                f"{path}.metadata.host",
                "credentials in the URL not carried: autozero takes a URL without them; give "
                "the user and password through a TriggerAuthentication (username, password)",
            )
        netloc = parts.hostname or ""
        if parts.port:
            netloc = f"{netloc}:{parts.port}"
        segments = parts.path.split("/")
        vhost = unquote(segments[-1]) if len(segments) > 1 else ""
        prefix = "/".join(segments[:-1])
        if protocol == "amqp":
            management = f"http://{parts.hostname}:{MANAGEMENT_PORT}"
            self.note(
                f"{path}.metadata.protocol",
                f"amqp: autozero reads RabbitMQ's management HTTP API, assumed at {management} "
                "(the plugin's default port): check it. Messages ready count as pending, as over "
                "AMQP; unacknowledged ones only keep the group awake",
            )
        else:
            management = urlunsplit((parts.scheme or "http", netloc, prefix, "", ""))
            if not _bool(meta.get("excludeUnacknowledged")):
                self.note(
                    f"{path}.metadata.excludeUnacknowledged",
                    "false: KEDA's QueueLength over http counts ready and unacknowledged "
                    "messages; autozero's rule counts ready ones, and unacknowledged ones (in "
                    "flight) only keep the group from sleeping",
                )
        settings: dict[str, Any] = {
            "managementUrl": management,
            "vhost": _text(meta.get("vhostName")) or vhost or "/",
        }
        queue = _text(meta.get("queueName"))
        settings["queuePattern" if _bool(meta.get("useRegex")) else "queue"] = queue
        if (_text(meta.get("operation")) or "sum") != "sum":
            self.note(
                f"{path}.metadata.operation",
                f"{meta['operation']} not carried: autozero sums the matching queues",
            )
        if "username" in auth:
            settings["usernameFrom"] = _secret(auth["username"])
        if "password" in auth:
            settings["passwordFrom"] = _secret(auth["password"])
        for param in ("tls", "ca", "cert", "key", "workloadIdentityResource"):
            if param in auth:
                self.note(f"{path}.authenticationRef", f"parameter {param} not carried")
        activation = _float(meta.get("activationValue", 0), f"{path}.metadata.activationValue")
        used = {
            "host",
            "protocol",
            "mode",
            "value",
            "queueLength",
            "activationValue",
            "queueName",
            "vhostName",
            "useRegex",
            "operation",
            "excludeUnacknowledged",
        }
        self._unused(meta, path, used, "not carried by autozero's rabbitmq source")
        return _Metric(
            name, {"rabbitmq": settings}, self._target(trigger, path, length), activation, path
        )

    def _prometheus(self, trigger: dict[str, Any], path: str, name: str) -> _Metric:
        meta = trigger.get("metadata") or {}
        auth = self._auth(trigger, path)
        if "threshold" not in meta:
            raise _Refused(f"{path}.metadata.threshold", "required by KEDA, and missing")
        address = _text(meta.get("serverAddress"))
        parts = urlsplit(address)
        if parts.username or parts.password:
            self.note(
                f"{path}.metadata.serverAddress",
                "credentials in the URL not carried: use basic authentication from a Secret",
            )
            netloc = parts.hostname or ""
            if parts.port:
                netloc = f"{netloc}:{parts.port}"
            address = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
        settings: dict[str, Any] = {"serverAddress": address, "query": _text(meta.get("query"))}
        if _text(meta.get("ignoreNullValues")).lower() != "false":
            settings["emptyAs"] = 0  # KEDA's default: an empty result is 0
        if _bool(meta.get("unsafeSsl")):
            settings["insecureSkipVerify"] = True
        modes = {m.strip() for m in _text(meta.get("authModes")).split(",") if m.strip()}
        unsupported = sorted(modes - {"bearer", "basic"})
        if unsupported:
            raise _Refused(
                f"{path}.metadata.authModes",
                f"{', '.join(unsupported)}: autozero's prometheus source takes a bearer token "
                "or basic auth",
            )
        if "bearer" in modes and "bearerToken" in auth:
            settings["bearerTokenFrom"] = _secret(auth["bearerToken"])
        if "basic" in modes:
            for param, key in (("username", "usernameFrom"), ("password", "passwordFrom")):
                if param in auth:
                    settings[key] = _secret(auth[param])
        threshold = _float(meta["threshold"], f"{path}.metadata.threshold")
        activation = _float(
            meta.get("activationThreshold", 0), f"{path}.metadata.activationThreshold"
        )
        used = {
            "serverAddress",
            "query",
            "threshold",
            "activationThreshold",
            "ignoreNullValues",
            "unsafeSsl",
            "authModes",
        }
        self._unused(meta, path, used, "not carried by autozero's prometheus source")
        return _Metric(
            name,
            {"prometheus": settings},
            self._target(trigger, path, threshold),
            activation,
            path,
        )

    def _resource(self, trigger: dict[str, Any], path: str, name: str) -> _Metric:
        kind = _text(trigger.get("type"))
        meta = trigger.get("metadata") or {}
        if self.prometheus is None:
            raise _Refused(
                path,
                f"{kind}: autozero reads {kind} through Prometheus; rerun with --prometheus URL "
                "to convert it to a stated query on cAdvisor and kube-state-metrics",
            )
        metric_type = _text(trigger.get("metricType")) or _text(meta.get("type")) or "Utilization"
        workload = _text((self.spec.get("scaleTargetRef") or {}).get("name"))
        selector = f'namespace="{self.namespace or "default"}",pod=~"{workload}-.*"'
        container = _text(meta.get("containerName"))
        usage_selector = selector + (f',container="{container}"' if container else ',container!=""')
        request_selector = selector + (f',container="{container}"' if container else "")
        usage = (
            f"sum(rate(container_cpu_usage_seconds_total{{{usage_selector}}}[2m]))"
            if kind == "cpu"
            else f"sum(container_memory_working_set_bytes{{{usage_selector}}})"
        )
        resource = "cpu" if kind == "cpu" else "memory"
        value_path = f"{path}.metadata.value"
        if metric_type == "Utilization":
            query = (
                f"{usage} / sum(kube_pod_container_resource_requests"
                f'{{{request_selector},resource="{resource}"}})'
            )
            target = {"value": _plain(_float(meta.get("value"), value_path) / 100)}
        elif metric_type == "AverageValue":
            query = usage
            target = {"averageValue": _plain(_quantity(meta.get("value"), value_path))}
        else:
            raise _Refused(f"{path}.metricType", f"{metric_type} is not one of {kind}'s types")
        self.note(
            path,
            f"{kind} converted to a Prometheus query on cAdvisor and kube-state-metrics, pods "
            f'matched by name ("{workload}-.*"): {query}; check that your Prometheus has these '
            "series",
        )
        source = {"prometheus": {"serverAddress": self.prometheus, "query": query}}
        return _Metric(name, source, target, None, path)

    # --- the object ---------------------------------------------------------------------------

    def convert(self) -> dict[str, Any] | None:
        spec = self.spec
        ref = spec.get("scaleTargetRef") or {}
        workload = _text(ref.get("name"))
        if not workload:
            self.note("spec.scaleTargetRef.name", "missing: nothing to scale")
            return None
        polling = _int(spec.get("pollingInterval"), "spec.pollingInterval", 30)
        minimum = _int(spec.get("minReplicaCount"), "spec.minReplicaCount", 0)
        maximum = max(1, _int(spec.get("maxReplicaCount"), "spec.maxReplicaCount", 100))
        idle = spec.get("idleReplicaCount")
        metrics: list[_Metric] = []
        crons: list[tuple[int, dict[str, Any]]] = []
        names: set[str] = set()
        for index, trigger in enumerate(spec.get("triggers") or []):
            path = f"spec.triggers[{index}]"
            kind = _text(trigger.get("type"))
            name = _name(_text(trigger.get("name")), f"{kind or 'trigger'}-{index}")
            while name in names:
                name = f"{name}-{index}"
            names.add(name)
            if trigger.get("useCachedMetrics"):
                self.note(f"{path}.useCachedMetrics", "not needed: autozero reads once a cycle")
            handlers = {
                "redis": self._redis,
                "redis-streams": self._redis_streams,
                "rabbitmq": self._rabbitmq,
                "prometheus": self._prometheus,
                "cpu": self._resource,
                "memory": self._resource,
            }
            try:
                if kind == "cron":
                    crons.append((index, trigger))
                elif kind in handlers:
                    metrics.append(handlers[kind](trigger, path, name))
                else:
                    raise _Refused(f"{path}.type", f"trigger type {kind!r} has no autozero source")
            except _Refused as refused:
                self.note(refused.path, f"trigger not converted: {refused.why}")
        if not metrics and not crons:
            self.note("spec.triggers", "no trigger could be converted: not converted")
            return None
        capacity: dict[str, int] = {"minimum": minimum, "maximum": maximum}
        if idle is not None:
            if _int(idle, "spec.idleReplicaCount", 0) != 0:
                self.note("spec.idleReplicaCount", "only 0 works in KEDA; not carried")
            else:
                capacity["minimum"] = 0
                if minimum > 0:
                    self.note(
                        "spec.idleReplicaCount",
                        f"0 with minReplicaCount {minimum}: the group sleeps at 0 and wakes to "
                        f"{minimum} (capacity.default); while awake autozero's rules may take it "
                        f"down to 1, KEDA's HPA to {minimum}",
                    )
        capacity["minimum"] = min(capacity["minimum"], maximum)
        capacity["default"] = min(maximum, max(1, minimum))
        rules = [
            {
                "metric": m.name,
                "timeGrain": _seconds(polling),
                "timeWindow": _seconds(polling),
                "statistic": "Last",
                "timeAggregation": "Last",
                "target": m.target,
            }
            for m in metrics
        ]
        group: dict[str, Any] = {
            "name": _name(workload, "workload"),
            "target": {
                "kubernetes": {
                    "apiVersion": _text(ref.get("apiVersion")) or "apps/v1",
                    "kind": _text(ref.get("kind")) or "Deployment",
                    "name": workload,
                }
            },
            "capacity": capacity,
        }
        if capacity["minimum"] == 0:
            waking = [m for m in metrics if m.activation is not None]
            if not waking:
                self.note(
                    "spec.triggers",
                    "no converted trigger can wake the group (cpu, memory and cron cannot "
                    "measure work at zero replicas): not converted",
                )
                return None
            first = waking[0]
            activation: dict[str, Any] = {
                "metric": first.name,
                "idleFor": _seconds(_int(spec.get("cooldownPeriod"), "spec.cooldownPeriod", 300)),
            }
            if first.activation or "prometheus" in first.source:
                activation["threshold"] = _plain(first.activation or 0.0)
            group["activation"] = activation
            for other in waking[1:]:
                self.note(
                    other.path,
                    f"does not wake the group: autozero wakes it on one metric ({first.name}); "
                    "KEDA on any trigger. It still drives the count while awake",
                )
        elif "cooldownPeriod" in spec:
            self.note("spec.cooldownPeriod", f"unused: minReplicaCount {minimum} never sleeps")
        group["behavior"] = self._behavior()
        profiles = [self._cron(i, t, copy.deepcopy(rules), capacity) for i, t in crons]
        group["profiles"] = [p for p in profiles if p is not None] + [
            {"name": "default", "rules": rules}
        ]
        if any(p is not None for p in profiles) and capacity["minimum"] == 0:
            self.note(
                "spec.cooldownPeriod",
                "KEDA counts a cron window as activity, so cooldownPeriod starts at its end; "
                "autozero's idle clock runs through the window (only pending or in-flight work "
                "stops it), so the group may sleep as soon as the window ends",
            )
        if len([p for p in profiles if p is not None]) > 1:
            self.note(
                "spec.triggers",
                "several cron windows: where they overlap autozero applies the one that "
                "started last, KEDA the largest desiredReplicas",
            )
        fallback = spec.get("fallback")
        if fallback:
            group["fallback"] = self._fallback(fallback, maximum)
        self._advanced()
        paused = self._paused()
        out_spec: dict[str, Any] = {"pollingInterval": _seconds(polling)}
        if paused:
            out_spec["paused"] = True
        out_spec["metrics"] = [{"name": m.name, **m.source} for m in metrics]
        out_spec["groups"] = [group]
        if spec.get("initialCooldownPeriod"):
            self.note(
                "spec.initialCooldownPeriod",
                "not carried: autozero starts a group's idle clock when it first finds it idle",
            )
        metadata: dict[str, Any] = {"name": _name(_text(self.metadata.get("name")), workload)}
        if self.namespace:
            metadata["namespace"] = self.namespace
        return {
            "apiVersion": f"{API_GROUP}/{API_VERSION}",
            "kind": KIND,
            "metadata": metadata,
            "spec": out_spec,
        }

    def _cron(
        self,
        index: int,
        trigger: dict[str, Any],
        rules: list[dict[str, Any]],
        capacity: dict[str, int],
    ) -> dict[str, Any] | None:
        path = f"spec.triggers[{index}]"
        meta = trigger.get("metadata") or {}
        try:
            found = window(_text(meta.get("start")), _text(meta.get("end")))
        except CronUnsupported as exc:
            self.note(f"{path}.metadata", f"trigger not converted: {exc}")
            return None
        desired = _int(meta.get("desiredReplicas"), f"{path}.metadata.desiredReplicas", 1)
        floor = max(capacity["minimum"], min(desired, capacity["maximum"]))
        if floor != desired:
            self.note(
                f"{path}.metadata.desiredReplicas",
                f"{desired} is outside the group's bounds: {floor} in the window",
            )
        duration = format_duration(found.duration)
        return {
            "name": _name(_text(trigger.get("name")), f"cron-{index}"),
            "recurrence": {
                "timeZone": _text(meta.get("timezone")) or "UTC",
                "days": [DAYS[d] for d in sorted(found.days)],
                "hours": [found.hour],
                "minutes": [found.minute],
                "duration": duration,
            },
            "capacity": {"minimum": floor, "maximum": capacity["maximum"], "default": floor},
            "rules": rules,
        }

    def _behavior(self) -> dict[str, Any]:
        advanced = self.spec.get("advanced") or {}
        given = (advanced.get("horizontalPodAutoscalerConfig") or {}).get("behavior") or {}
        out = {}
        for key, default, stabilization in (
            ("scaleUp", HPA_SCALE_UP, 0),
            ("scaleDown", HPA_SCALE_DOWN, 300),
        ):
            rules = given.get(key)
            if rules is None:
                out[key] = copy.deepcopy(default)
                continue
            base = "spec.advanced.horizontalPodAutoscalerConfig.behavior"
            seconds = _int(
                rules.get("stabilizationWindowSeconds"),
                f"{base}.{key}.stabilizationWindowSeconds",
                stabilization,
            )
            policies = [
                {
                    "type": _text(p.get("type")),
                    "value": _int(p.get("value"), f"{base}.{key}.policies[{n}].value", 1),
                    "period": _seconds(
                        _int(
                            p.get("periodSeconds"), f"{base}.{key}.policies[{n}].periodSeconds", 15
                        )
                    ),
                }
                for n, p in enumerate(rules.get("policies") or [])
            ]
            out[key] = {
                "stabilizationWindow": _seconds(seconds),
                "selectPolicy": _text(rules.get("selectPolicy")) or "Max",
                "policies": policies or copy.deepcopy(default["policies"]),
            }
            if rules.get("tolerance") is not None:
                self.note(f"{base}.{key}.tolerance", "not carried: each target rule's tolerance")
        annotations = self.metadata.get("annotations") or {}
        for annotation, key in ((PAUSED_SCALE_IN, "scaleDown"), (PAUSED_SCALE_OUT, "scaleUp")):
            if _bool(annotations.get(annotation)):
                out[key] = {**out[key], "selectPolicy": "Disabled"}
        return out

    def _fallback(self, fallback: dict[str, Any], maximum: int) -> dict[str, Any]:
        out = {
            "failureThreshold": max(
                1, _int(fallback.get("failureThreshold"), "spec.fallback.failureThreshold", 3)
            )
        }
        replicas = _int(fallback.get("replicas"), "spec.fallback.replicas", 0)
        if replicas > maximum:
            self.note("spec.fallback.replicas", f"{replicas} above maxReplicaCount: {maximum}")
        out["replicas"] = min(replicas, maximum)
        self.note(
            "spec.fallback",
            "autozero's fallback raises a failing group to replicas and never lowers it; KEDA's "
            "also lowers a larger one",
        )
        behavior = _text(fallback.get("behavior")) or "static"
        if behavior != "static":
            self.note("spec.fallback.behavior", f"{behavior} not carried: autozero's is static")
        return out

    def _advanced(self) -> None:
        advanced = self.spec.get("advanced") or {}
        for key in advanced:
            if key == "horizontalPodAutoscalerConfig":
                for sub in advanced[key] or {}:
                    if sub != "behavior":
                        self.note(
                            f"spec.advanced.{key}.{sub}",
                            "not needed: autozero makes no HPA for its own rules",
                        )
            elif key == "scalingModifiers":
                self.note(
                    "spec.advanced.scalingModifiers",
                    "not carried: autozero combines its rules as the HPA combines metrics (the "
                    "largest count out), with no formula",
                )
            else:
                self.note(f"spec.advanced.{key}", "not carried")
        for key in self.spec:
            if key not in _SPEC_FIELDS:
                self.note(f"spec.{key}", "not carried")

    def _paused(self) -> bool:
        annotations = self.metadata.get("annotations") or {}
        paused = _bool(annotations.get(PAUSED))
        if PAUSED_REPLICAS in annotations:
            self.note(
                f"metadata.annotations.{PAUSED_REPLICAS}",
                f"{annotations[PAUSED_REPLICAS]}: autozero pauses at the current count; set the "
                "workload to that count yourself",
            )
            paused = True
        return paused


_SPEC_FIELDS = {
    "scaleTargetRef",
    "pollingInterval",
    "cooldownPeriod",
    "initialCooldownPeriod",
    "idleReplicaCount",
    "minReplicaCount",
    "maxReplicaCount",
    "fallback",
    "advanced",
    "triggers",
}


@dataclass(frozen=True)
class Source:
    """A document to convert: its body and how to say where a field of it was written."""

    body: Any
    locate: Callable[[str], str] = field(default=lambda _path: "?")


def is_kind(body: Any, kind: str) -> bool:
    return (
        isinstance(body, dict) and body.get("kind") == kind and body.get("apiVersion") == KEDA_API
    )


def convert(documents: list[Source], *, prometheus: str | None = None) -> list[Converted]:
    """Every ScaledObject among `documents`, converted with the TriggerAuthentications there."""
    auths = {
        (
            _text((d.body.get("metadata") or {}).get("namespace")) or "default",
            _text((d.body.get("metadata") or {}).get("name")),
        ): d.body
        for d in documents
        if is_kind(d.body, "TriggerAuthentication")
    }
    out = []
    for document in documents:
        if not is_kind(document.body, "ScaledObject"):
            continue
        scaled = _Object(document.body, document.locate, auths, prometheus)
        try:
            policy = scaled.convert()
        except _Refused as refused:
            scaled.note(refused.path, f"not converted: {refused.why}")
            policy = None
        out.append(Converted(scaled.label, policy, tuple(scaled.notes)))
    return out
