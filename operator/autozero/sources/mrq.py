"""`mrq`: a queue of MRQ (a Python job queue on Redis and MongoDB), read in its own layout (0.9.10).

From MRQ's source:
- mrq/queue.py `Queue.get_queue_type`: a queue whose root name ends in `_raw`, `_set`,
  `_sorted_set` or `_timed_set` is a raw queue; any other is a regular queue.
- mrq/queue_regular.py: regular queues keep their jobs in MongoDB, collection `mrq_jobs`; pending
  is `{"status": "queued", "queue": <id>}`, and an id ending in "/" covers its subqueues.
- mrq/redishelpers.py `redis_key`: a raw queue is the Redis key `<prefix>:q:<id>` (a list, or a set
  or sorted set for the `_set`/`_sorted_set`/`_timed_set` kinds, mrq/queue_raw.py `size`);
  `<prefix>:ksq:<root>` is the set of a raw queue's known subqueues.
- mrq/job.py: a job a worker took is the MongoDB document with `status: "started"`, for raw and
  regular queues alike; so in flight is always read from MongoDB when it is configured.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from autozero.engine.readings import Reading
from autozero.policy.fields import Schema, connection, connection_rules, obj, string
from autozero.sources.base import (
    BaseSource,
    Context,
    SourceAuthError,
    SourceBadResponse,
    SourceConfigError,
    SourceError,
    SourceKind,
    SourceTimeout,
    SourceUnreachable,
    Watch,
)
from autozero.sources.connections import POOLS
from autozero.sources.redis_keys import PUSH, redis_error, run_pipeline

RAW_KINDS = ("timed_set", "sorted_set", "set", "raw")  # the order MRQ tests them in
JOBS_COLLECTION = "mrq_jobs"


def queue_kind(queue: str) -> str:
    """MRQ's Queue.get_queue_type: the kind follows the root name's suffix."""
    root = queue.split("/")[0]
    for kind in RAW_KINDS:
        if root.endswith(f"_{kind}"):
            return kind
    return "regular"


def mongo_error(metric: str, url: str, exc: Exception) -> SourceError:
    import pymongo.errors as errors

    if isinstance(exc, errors.OperationFailure) and exc.code in (13, 18):
        return SourceAuthError(metric, url, f"authentication failed: {exc}")
    if isinstance(exc, errors.ExecutionTimeout | errors.NetworkTimeout):
        return SourceTimeout(metric, url, f"timed out: {exc}")
    if isinstance(exc, errors.ConnectionFailure | errors.ServerSelectionTimeoutError):
        return SourceUnreachable(metric, url, f"cannot connect: {exc}")
    return SourceBadResponse(metric, url, str(exc))


@dataclass
class MRQQueue(BaseSource):
    metric: str
    queue: str
    prefix: str
    redis_url: str | None
    mongo_url: str | None
    timeout: float
    configure_notifications: bool = False

    @classmethod
    def from_settings(cls, metric: str, settings: Mapping[str, Any], ctx: Context) -> MRQQueue:
        redis_settings = settings.get("redis")
        mongo_settings = settings.get("mongodb")
        source = cls(
            metric=metric,
            queue=settings["queue"],
            prefix=settings.get("prefix", "mrq"),
            redis_url=ctx.value(redis_settings, "url", metric) if redis_settings else None,
            mongo_url=ctx.value(mongo_settings, "url", metric) if mongo_settings else None,
            timeout=ctx.timeout,
            configure_notifications=bool((redis_settings or {}).get("configureNotifications")),
        )
        if source.kind == "regular" and source.mongo_url is None:
            raise SourceConfigError(
                metric,
                "mongodb",
                f"{source.queue!r} is a regular MRQ queue: its jobs are in MongoDB, so set mongodb",
            )
        if source.kind != "regular" and source.redis_url is None:
            raise SourceConfigError(
                metric,
                "redis",
                f"{source.queue!r} is a raw MRQ queue: its jobs are in Redis, so set redis",
            )
        return source

    @property
    def kind(self) -> str:
        return queue_kind(self.queue)

    def batch_key(self) -> tuple[Any, ...]:
        return ("mrq", id(self))

    def _queue_filter(self) -> str | dict[str, Any]:
        if self.queue.endswith("/"):
            return {"$regex": "^" + re.escape(self.queue)}
        return self.queue

    def _mongo_count(self, status: str) -> float:
        assert self.mongo_url is not None
        client = POOLS.mongo(self.mongo_url, self.timeout)
        jobs = client.get_default_database("mrq")[JOBS_COLLECTION]
        return float(
            jobs.count_documents(
                {"status": status, "queue": self._queue_filter()},
                maxTimeMS=int(self.timeout * 1000),
            )
        )

    def _raw_pending(self) -> float:
        assert self.redis_url is not None
        client = POOLS.redis(self.redis_url, self.timeout)
        if "/" in self.queue and self.queue.endswith("/"):
            root = self.queue.split("/")[0]
            members = client.smembers(f"{self.prefix}:ksq:{root}")
            queues = sorted(m.decode() if isinstance(m, bytes) else str(m) for m in members)
        else:
            queues = [self.queue]
        command = {"raw": "llen", "set": "scard"}.get(self.kind, "zcard")
        answers = run_pipeline(client, [(command, (f"{self.prefix}:q:{q}",)) for q in queues])
        for answer in answers:
            if isinstance(answer, Exception):
                raise answer
        return float(sum(answers))

    def read(self) -> Reading:
        import pymongo.errors
        import redis

        try:
            pending = self._raw_pending() if self.kind != "regular" else self._mongo_count("queued")
            in_flight = self._mongo_count("started") if self.mongo_url else None
        except redis.RedisError as exc:
            raise redis_error(self.metric, self.redis_url or "", exc) from exc
        except pymongo.errors.PyMongoError as exc:
            raise mongo_error(self.metric, self.mongo_url or "", exc) from exc
        return Reading(pending, pending=pending, in_flight=in_flight)

    def watch(self, on_work: Callable[[str], None]) -> Watch:
        """Raw queues live in Redis and can push; regular queues (MongoDB) are polled."""
        from autozero.sources.push import KeyspaceWatch

        if self.kind == "regular" or self.redis_url is None:
            raise SourceConfigError(self.metric, "mrq", "only raw MRQ queues (in Redis) can push")
        key = f"{self.prefix}:q:{self.queue}"
        keys, patterns = ([], [key + "*"]) if self.queue.endswith("/") else ([key], [])
        return KeyspaceWatch.start(
            self.redis_url,
            keys,
            patterns,
            lambda: on_work(self.metric),
            timeout=self.timeout,
            configure=self.configure_notifications,
        )


def _schema() -> Schema:
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
    return obj(
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
    )


KIND = SourceKind(
    key="mrq",
    what="an MRQ queue",
    unit="jobs",
    schema=_schema,
    build=MRQQueue.from_settings,
    example={"queue": "bids", "mongodb": {"urlFrom": {"secretKeyRef": {"name": "m", "key": "u"}}}},
)
