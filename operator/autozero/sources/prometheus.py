"""`prometheus`: an instant query that must answer one number.

A scalar, or a vector of exactly one series. An empty vector is "no data" (a SourceNoData error,
so it can never drive a scale-down) unless the policy sets `emptyAs`, e.g. `emptyAs: 0` for a
`sum(...)` over series that disappear when idle. Several series is a configuration error: wrap
the query in `sum()`, `avg()` or `max()`. CPU utilisation across a set of pods, for example:
`avg(rate(container_cpu_usage_seconds_total{namespace="search",pod=~"shard-.*"}[2m]))`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from autozero.engine.durations import parse_duration
from autozero.engine.readings import Reading
from autozero.policy.fields import (
    Schema,
    boolean,
    duration,
    number,
    obj,
    secret_ref,
    string,
    url,
)
from autozero.sources.base import (
    BaseSource,
    Context,
    SourceAuthError,
    SourceBadResponse,
    SourceKind,
    SourceNoData,
    SourceTimeout,
    SourceUnreachable,
)
from autozero.sources.connections import POOLS


@dataclass
class PrometheusQuery(BaseSource):
    metric: str
    server: str
    query: str
    empty_as: float | None
    timeout: float
    headers: dict[str, str]
    basic_auth: tuple[str, str] | None
    verify: bool

    @classmethod
    def from_settings(
        cls, metric: str, settings: Mapping[str, Any], ctx: Context
    ) -> PrometheusQuery:
        headers: dict[str, str] = {}
        if settings.get("bearerTokenFrom"):
            headers["Authorization"] = "Bearer " + ctx.value(settings, "bearerToken", metric)
        basic = None
        if settings.get("usernameFrom"):
            basic = (
                ctx.value(settings, "username", metric),
                ctx.value(settings, "password", metric),
            )
        timeout = parse_duration(settings.get("timeout", "5s")).total_seconds()
        empty = settings.get("emptyAs")
        return cls(
            metric,
            str(settings["serverAddress"]).rstrip("/"),
            settings["query"],
            float(empty) if empty is not None else None,
            timeout,
            headers,
            basic,
            not settings.get("insecureSkipVerify", False),
        )

    def batch_key(self) -> tuple[Any, ...]:
        return ("prometheus", id(self))

    def read(self) -> Reading:
        import requests

        session = POOLS.http(self.server)
        try:
            response = session.get(
                f"{self.server}/api/v1/query",
                params={"query": self.query},
                headers=self.headers,
                auth=self.basic_auth,
                timeout=self.timeout,
                verify=self.verify,
            )
        except requests.Timeout as exc:
            raise SourceTimeout(
                self.metric, self.server, f"timed out after {self.timeout}s"
            ) from exc
        except requests.RequestException as exc:
            raise SourceUnreachable(self.metric, self.server, f"cannot connect: {exc}") from exc
        if response.status_code in (401, 403):
            raise SourceAuthError(self.metric, self.server, f"HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError as exc:
            raise SourceBadResponse(
                self.metric, self.server, f"HTTP {response.status_code}, not JSON"
            ) from exc
        if body.get("status") != "success":
            raise SourceBadResponse(
                self.metric,
                self.server,
                f"{body.get('errorType', 'error')}: {body.get('error', '')}",
            )
        return Reading(self._value(body.get("data") or {}))

    def _value(self, data: Mapping[str, Any]) -> float:
        kind = data.get("resultType")
        result = data.get("result")
        if kind == "scalar":
            raw = result[1] if isinstance(result, list) else None
        elif kind == "vector" and isinstance(result, list):
            if not result:
                if self.empty_as is not None:
                    return self.empty_as
                raise SourceNoData(
                    self.metric, self.server, f"the query returned no series: {self.query}"
                )
            if len(result) > 1:
                raise SourceBadResponse(
                    self.metric,
                    self.server,
                    f"the query returned {len(result)} series; aggregate it "
                    "with sum(), avg() or max() to one",
                )
            raw = result[0].get("value", [None, None])[1]
        else:
            raise SourceBadResponse(
                self.metric, self.server, f"expected a scalar or a vector, got {kind}"
            )
        try:
            value = float(str(raw))
        except (TypeError, ValueError) as exc:
            raise SourceBadResponse(self.metric, self.server, f"not a number: {raw!r}") from exc
        if math.isnan(value):
            raise SourceNoData(self.metric, self.server, "the query returned NaN")
        return value


def _schema() -> Schema:
    return obj(
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
    )


KIND = SourceKind(
    key="prometheus",
    what="a Prometheus query",
    unit="",  # a value, not a count of work: a CPU ratio or a rate need never fall to 0
    schema=_schema,
    build=PrometheusQuery.from_settings,
    example={"serverAddress": "http://prom:9090", "query": "sum(x)"},
)
