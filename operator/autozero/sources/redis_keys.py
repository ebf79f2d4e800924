"""`redis`: the length of lists, sets, sorted sets or streams, by key or SCAN pattern, summed.

A missing key counts 0: Redis deletes an empty list, so "no key" and "empty queue" are the same
thing. For a stream with a `consumerGroup`, pending is the group's lag (entries not yet delivered)
and in flight its pending-entries list (delivered, not acknowledged); lists and sets cannot know
what is in flight. All sources on one Redis server are read in one pipeline per cycle.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from autozero.engine.readings import Reading
from autozero.policy.fields import (
    Schema,
    boolean,
    connection,
    connection_rules,
    enum,
    obj,
    string,
)
from autozero.sources.base import (
    BatchedSource,
    Context,
    SourceAuthError,
    SourceBadResponse,
    SourceError,
    SourceKind,
    SourceTimeout,
    SourceUnreachable,
    Watch,
)
from autozero.sources.connections import POOLS

if TYPE_CHECKING:  # the client is imported when a source reads, not when the schema is built
    import redis

MAX_SCAN_KEYS = 1000  # a pattern matching more keys than this is a configuration error
LENGTH = {"list": "llen", "set": "scard", "zset": "zcard", "stream": "xlen"}


def redis_error(metric: str, url: str, exc: Exception) -> SourceError:
    """Map a redis-py exception to a typed SourceError (the URL is redacted)."""
    import redis

    text = str(exc)
    if isinstance(exc, redis.AuthenticationError) or "NOAUTH" in text or "WRONGPASS" in text:
        return SourceAuthError(metric, url, f"authentication failed: {text}")
    if isinstance(exc, redis.TimeoutError):
        return SourceTimeout(metric, url, f"timed out: {text}")
    if isinstance(exc, redis.ConnectionError):
        return SourceUnreachable(metric, url, f"cannot connect: {text}")
    return SourceBadResponse(metric, url, text)


def run_pipeline(client: redis.Redis, commands: Sequence[tuple[str, tuple[Any, ...]]]) -> list[Any]:
    """Send `commands` in one round trip; results in order, exceptions in place of answers."""
    pipe = client.pipeline(transaction=False)
    for name, args in commands:
        getattr(pipe, name)(*args)
    return list(pipe.execute(raise_on_error=False))


@dataclass
class RedisKeys(BatchedSource):
    metric: str
    url: str
    key: str | None
    pattern: str | None
    type: str
    consumer_group: str | None
    timeout: float
    configure_notifications: bool = False

    @classmethod
    def from_settings(cls, metric: str, settings: Mapping[str, Any], ctx: Context) -> RedisKeys:
        return cls(
            metric=metric,
            url=ctx.value(settings, "url", metric),
            key=settings.get("key"),
            pattern=settings.get("keyPattern"),
            type=settings.get("type", "auto"),
            consumer_group=settings.get("consumerGroup"),
            timeout=ctx.timeout,
            configure_notifications=bool(settings.get("configureNotifications")),
        )

    def batch_key(self) -> tuple[Any, ...]:
        return ("redis", self.url, self.timeout)

    def _keys(self, client: redis.Redis) -> list[str]:
        if self.key is not None:
            return [self.key]
        keys: list[str] = []
        for key in client.scan_iter(match=self.pattern, count=500):
            keys.append(key.decode() if isinstance(key, bytes) else str(key))
            if len(keys) > MAX_SCAN_KEYS:
                raise SourceBadResponse(
                    self.metric,
                    self.url,
                    f"pattern {self.pattern!r} matches more than {MAX_SCAN_KEYS} keys; narrow it",
                )
        return keys

    @classmethod
    def read_batch(cls, sources: Sequence[Any]) -> list[Reading | SourceError]:
        import redis

        first: RedisKeys = sources[0]
        client = POOLS.redis(first.url, first.timeout)
        try:
            keys = [s._keys(client) for s in sources]
            # Round trip 1: the type of every key whose type is not given.
            unknown = [
                (n, key) for n, s in enumerate(sources) for key in keys[n] if s.type == "auto"
            ]
            types = run_pipeline(client, [("type", (key,)) for _, key in unknown])
            kind: dict[tuple[int, str], str] = {}
            for where, answer in zip(unknown, types, strict=True):
                if isinstance(answer, Exception):
                    raise answer
                kind[where] = answer.decode() if isinstance(answer, bytes) else str(answer)
            # Round trip 2: every length.
            plan = [
                (n, key, kind.get((n, key), source.type))
                for n, source in enumerate(sources)
                for key in keys[n]
            ]
            answers = run_pipeline(
                client, [_length_command(sources[n], key, t) for n, key, t in plan]
            )
        except SourceError as error:
            return [error] * len(sources)
        except redis.RedisError as exc:
            return [redis_error(s.metric, first.url, exc) for s in sources]
        failed: dict[int, SourceError] = {}
        totals = [[0.0, 0.0] for _ in sources]
        has_in_flight: set[int] = set()
        for (n, key, key_type), answer in zip(plan, answers, strict=True):
            source = sources[n]
            if n in failed:
                continue
            if isinstance(answer, Exception):
                failed[n] = redis_error(source.metric, source.url, answer)
                continue
            try:
                pending, in_flight = _lengths(source, key, key_type, answer)
            except SourceError as error:
                failed[n] = error
                continue
            totals[n][0] += pending
            if in_flight is not None:
                totals[n][1] += in_flight
                has_in_flight.add(n)
        out: list[Reading | SourceError] = []
        for n in range(len(sources)):
            if n in failed:
                out.append(failed[n])
                continue
            pending, in_flight = totals[n]
            out.append(
                Reading(
                    value=pending,
                    pending=pending,
                    in_flight=in_flight if n in has_in_flight else None,
                )
            )
        return out

    def watch(self, on_work: Callable[[str], None]) -> Watch:
        from autozero.sources.push import KeyspaceWatch

        keys = [self.key] if self.key else []
        return KeyspaceWatch.start(
            self.url,
            keys,
            [self.pattern] if self.pattern else [],
            lambda: on_work(self.metric),
            timeout=self.timeout,
            configure=self.configure_notifications,
        )


def _length_command(source: RedisKeys, key: str, key_type: str) -> tuple[str, tuple[Any, ...]]:
    if key_type == "stream" and source.consumer_group:
        return ("xinfo_groups", (key,))
    if key_type == "none":
        return ("exists", (key,))  # answers 0: nothing there
    command = LENGTH.get(key_type)
    if command is None:
        raise SourceBadResponse(
            source.metric,
            source.url,
            f"key {key!r} is a {key_type}, not a list, set, zset or stream",
        )
    return (command, (key,))


def _lengths(source: RedisKeys, key: str, key_type: str, answer: Any) -> tuple[float, float | None]:
    if key_type == "none":
        return 0.0, (0.0 if source.consumer_group else None)
    if key_type == "stream" and source.consumer_group:
        for group in answer:
            name = group.get("name") or group.get(b"name")
            name = name.decode() if isinstance(name, bytes) else name
            if name == source.consumer_group:
                lag = group.get("lag", group.get(b"lag"))
                pending = group.get("pending", group.get(b"pending", 0))
                return float(lag or 0), float(pending or 0)
        raise SourceBadResponse(
            source.metric,
            source.url,
            f"stream {key!r} has no consumer group {source.consumer_group!r}",
        )
    return float(answer), None


#: Shared by every Redis-family source (one object: the CRD's YAML names it once).
PUSH = boolean(
    "Let autozero turn on the server's keyspace notifications (CONFIG SET "
    "notify-keyspace-events) so new work wakes a sleeping group at once. Off: autozero uses "
    "them if the server has them, and polls."
)


def _schema() -> Schema:
    return obj(
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
    )


KIND = SourceKind(
    key="redis",
    what="Redis keys",
    unit="items",
    schema=_schema,
    build=RedisKeys.from_settings,
    example={"url": "redis://redis:6379/0", "key": "jobs", "type": "list"},
)
