"""`rq`: an RQ queue. Pending is the queue's list, in flight its started-job registry.

The layout, from RQ's own source (rq/queue.py, rq/registry.py, rq/defaults.py, RQ 2 and 3):
the queue is the list `<prefix>:queue:<name>`; started jobs are the sorted set
`<prefix>:wip:<name>` scored by when their execution expires (a negative score never expires). An
entry whose expiry has passed belongs to a dead worker (RQ's cleanup moves it away), so it is not
counted as in flight. A worker takes a job with BLMOVE into `<prefix>:queue:<name>:intermediate`
(RQ 1.16 and later) and only then adds it to the started registry: a job there and not yet
started is in flight too, else a read between the two sees nothing at all and the group may be
put to sleep under a job that is starting (the chaos campaign's first violation). All are read
in the same pipeline as the other queues of the server.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from autozero.engine.readings import Reading
from autozero.policy.fields import Schema, connection, connection_rules, obj, string
from autozero.sources.base import BatchedSource, Context, SourceError, SourceKind, Watch
from autozero.sources.connections import POOLS
from autozero.sources.redis_keys import PUSH, redis_error, run_pipeline


@dataclass
class RQQueue(BatchedSource):
    metric: str
    url: str
    queue: str
    prefix: str
    timeout: float
    configure_notifications: bool = False

    @classmethod
    def from_settings(cls, metric: str, settings: Mapping[str, Any], ctx: Context) -> RQQueue:
        return cls(
            metric,
            ctx.value(settings, "url", metric),
            settings.get("queue", "default"),
            settings.get("prefix", "rq"),
            ctx.timeout,
            bool(settings.get("configureNotifications")),
        )

    @property
    def queue_key(self) -> str:
        return f"{self.prefix}:queue:{self.queue}"

    @property
    def started_key(self) -> str:
        return f"{self.prefix}:wip:{self.queue}"

    @property
    def intermediate_key(self) -> str:
        return f"{self.queue_key}:intermediate"

    def batch_key(self) -> tuple[Any, ...]:
        return ("redis", self.url, self.timeout)

    @classmethod
    def read_batch(cls, sources: Sequence[Any]) -> list[Reading | SourceError]:
        import redis

        first: RQQueue = sources[0]
        now = time.time()
        commands: list[tuple[str, tuple[Any, ...]]] = []
        for source in sources:
            commands += [
                ("llen", (source.queue_key,)),
                ("zrangebyscore", (source.started_key, f"({now}", "+inf")),
                ("zrangebyscore", (source.started_key, "-inf", "(0")),  # never expires
                ("lrange", (source.intermediate_key, 0, -1)),
            ]
        try:
            answers = run_pipeline(POOLS.redis(first.url, first.timeout), commands)
        except redis.RedisError as exc:
            return [redis_error(s.metric, first.url, exc) for s in sources]
        out: list[Reading | SourceError] = []
        for n, source in enumerate(sources):
            queued, live, forever, taken = answers[4 * n : 4 * n + 4]
            answered = (queued, live, forever, taken)
            failed = next((a for a in answered if isinstance(a, Exception)), None)
            if failed is not None:
                out.append(redis_error(source.metric, source.url, failed))
                continue
            # Members are `job` (RQ 1) or `job:execution` (RQ 2 and 3); a taken job counts once.
            started = [*live, *forever]
            running = {_text(member).split(":", 1)[0] for member in started}
            in_flight = float(len(started) + len({_text(t) for t in taken} - running))
            out.append(Reading(float(queued), pending=float(queued), in_flight=in_flight))
        return out

    def watch(self, on_work: Callable[[str], None]) -> Watch:
        from autozero.sources.push import KeyspaceWatch

        return KeyspaceWatch.start(
            self.url,
            [self.queue_key],
            [],
            lambda: on_work(self.metric),
            timeout=self.timeout,
            configure=self.configure_notifications,
        )


def _text(member: bytes | str) -> str:
    return member.decode(errors="replace") if isinstance(member, bytes) else member


def _schema() -> Schema:
    return obj(
        "An RQ queue: pending is the queue's length, in flight its started-job registry.",
        {
            **connection("Redis", "redis://redis:6379/0"),
            "configureNotifications": PUSH,
            "queue": string("The RQ queue name.", minLength=1, default="default"),
            "prefix": string("RQ's key prefix (RQ_KEY_PREFIX).", default="rq"),
        },
        rules=connection_rules("Redis"),
    )


KIND = SourceKind(
    key="rq",
    what="an RQ queue",
    unit="jobs",
    schema=_schema,
    build=RQQueue.from_settings,
    example={"urlFrom": {"secretKeyRef": {"name": "rq", "key": "url"}}},
)
