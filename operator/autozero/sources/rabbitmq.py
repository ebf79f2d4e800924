"""`rabbitmq`: queue depth over the management HTTP API.

Pending is `messages_ready`, in flight `messages_unacknowledged`: a consumer holding a message it
has not acknowledged is still working, and a group must not go to zero under it, yet that message
is no backlog for the rules to scale out on. (KEDA's RabbitMQ scaler adds the two into one queue
length over the HTTP API by default, `excludeUnacknowledged: false`, and over AMQP sees only the
ready ones.) One `GET /api/queues/<vhost>` per vhost per cycle serves every
queue of that vhost. The management API serves its figures from samples taken every
`collect_statistics_interval` and kept in 5 s buckets by default
(`management.sample_retention_policies`), so readings lag the broker by up to that much. Until a
queue's first sample (for seconds after it is declared, or after the broker restarts) its record
has no counts at all: that is no data, a failed read, never an empty queue (which would put a
group to sleep under the jobs its consumers hold).
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from autozero.engine.readings import Reading
from autozero.policy.fields import Schema, obj, secret_ref, string, url
from autozero.sources.base import (
    BatchedSource,
    Context,
    SourceAuthError,
    SourceBadResponse,
    SourceError,
    SourceKind,
    SourceNoData,
    SourceNotFound,
    SourceTimeout,
    SourceUnreachable,
)
from autozero.sources.connections import POOLS

COLUMNS = "name,messages_ready,messages_unacknowledged"


@dataclass
class RabbitMQQueues(BatchedSource):
    metric: str
    base: str
    vhost: str
    queue: str | None
    pattern: str | None
    username: str
    password: str
    timeout: float

    @classmethod
    def from_settings(
        cls, metric: str, settings: Mapping[str, Any], ctx: Context
    ) -> RabbitMQQueues:
        username = (
            ctx.value(settings, "username", metric) if (settings.get("usernameFrom")) else "guest"
        )
        password = (
            ctx.value(settings, "password", metric) if (settings.get("passwordFrom")) else "guest"
        )
        return cls(
            metric,
            str(settings["managementUrl"]).rstrip("/"),
            settings.get("vhost", "/"),
            settings.get("queue"),
            settings.get("queuePattern"),
            username,
            password,
            ctx.timeout,
        )

    def batch_key(self) -> tuple[Any, ...]:
        return ("rabbitmq", self.base, self.vhost, self.username, self.password, self.timeout)

    @classmethod
    def read_batch(cls, sources: Sequence[Any]) -> list[Reading | SourceError]:
        first: RabbitMQQueues = sources[0]
        vhost = urllib.parse.quote(first.vhost, safe="")
        url = f"{first.base}/api/queues/{vhost}"
        try:
            queues = _get(first, url)
        except SourceError as error:
            return [type(error)(s.metric, first.base, error.detail) for s in sources]
        by_name = {q.get("name"): q for q in queues if isinstance(q, dict)}
        out: list[Reading | SourceError] = []
        for source in sources:
            if source.queue is not None:
                chosen = [by_name[source.queue]] if source.queue in by_name else []
                if not chosen:
                    out.append(
                        SourceNotFound(
                            source.metric,
                            first.base,
                            f"no queue {source.queue!r} in vhost {first.vhost!r}",
                        )
                    )
                    continue
            else:
                pattern = re.compile(source.pattern or "")
                chosen = [q for name, q in by_name.items() if pattern.fullmatch(str(name))]
            unsampled = [q.get("name") for q in chosen if not _sampled(q)]
            if unsampled:
                out.append(
                    SourceNoData(
                        source.metric,
                        first.base,
                        f"queue {unsampled[0]!r} has no message counts yet: the management API "
                        "has not sampled it since it was declared or the broker started",
                    )
                )
                continue
            ready = float(sum(q.get("messages_ready") or 0 for q in chosen))
            unacked = float(sum(q.get("messages_unacknowledged") or 0 for q in chosen))
            out.append(Reading(ready, pending=ready, in_flight=unacked))
        return out


def _sampled(queue: dict[str, Any]) -> bool:
    """Whether the management API has counted the queue's messages yet."""
    return "messages_ready" in queue and "messages_unacknowledged" in queue


def _get(source: RabbitMQQueues, url: str) -> list[Any]:
    import requests

    session = POOLS.http(source.base)
    try:
        response = session.get(
            url,
            params={"columns": COLUMNS},
            auth=(source.username, source.password),
            timeout=source.timeout,
        )
    except requests.Timeout as exc:
        raise SourceTimeout(
            source.metric, source.base, f"timed out after {source.timeout}s"
        ) from exc
    except requests.RequestException as exc:
        raise SourceUnreachable(source.metric, source.base, f"cannot connect: {exc}") from exc
    if response.status_code == 401:
        raise SourceAuthError(
            # The user name may come from a Secret too: name neither it nor the password.
            source.metric,
            source.base,
            "the management API refused the user name and password (HTTP 401)",
        )
    if response.status_code == 404:
        raise SourceNotFound(source.metric, source.base, f"no vhost {source.vhost!r}")
    if response.status_code != 200:
        raise SourceBadResponse(
            source.metric, source.base, f"HTTP {response.status_code}: {response.text[:200]}"
        )
    try:
        body = response.json()
    except ValueError as exc:
        raise SourceBadResponse(source.metric, source.base, "the answer is not JSON") from exc
    if not isinstance(body, list):
        raise SourceBadResponse(source.metric, source.base, "expected a list of queues")
    return body


def _schema() -> Schema:
    return obj(
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
    )


KIND = SourceKind(
    key="rabbitmq",
    what="RabbitMQ queues",
    unit="messages",
    schema=_schema,
    build=RabbitMQQueues.from_settings,
    example={"managementUrl": "http://rabbit:15672", "queue": "q"},
)
