"""`redis`: the length of lists, sets, sorted sets or streams, by key or SCAN pattern, summed.

A missing key counts 0: Redis deletes an empty list, so "no key" and "empty queue" are the same
thing. For a stream with a `consumerGroup`, pending is the group's lag (entries not yet delivered)
and in flight its pending-entries list (delivered, not acknowledged); lists and sets cannot know
what is in flight. All sources on one Redis server are read in one pipeline per cycle.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from autozero.engine.readings import Reading
from autozero.sources.base import (
    BatchedSource,
    Context,
    SourceAuthError,
    SourceBadResponse,
    SourceError,
    SourceTimeout,
    SourceUnreachable,
    Watch,
)
from autozero.sources.connections import POOLS

MAX_SCAN_KEYS = 1000  # a pattern matching more keys than this is a configuration error
LENGTH = {"list": "llen", "set": "scard", "zset": "zcard", "stream": "xlen"}


def redis_error(metric: str, url: str, exc: Exception) -> SourceError:
    """Map a redis-py exception to a typed SourceError (the URL is redacted)."""
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
    def read_batch(cls, sources: Sequence[Any]) -> dict[str, Reading | SourceError]:
        first: RedisKeys = sources[0]
        client = POOLS.redis(first.url, first.timeout)
        out: dict[str, Reading | SourceError] = {}
        try:
            keys = {s.metric: s._keys(client) for s in sources}
            # Round trip 1: the type of every key whose type is not given.
            unknown = [(s, k) for s in sources for k in keys[s.metric] if s.type == "auto"]
            types = run_pipeline(client, [("type", (k,)) for _, k in unknown])
            kind: dict[tuple[str, str], str] = {}
            for (source, key), answer in zip(unknown, types, strict=True):
                if isinstance(answer, Exception):
                    raise answer
                kind[(source.metric, key)] = (
                    answer.decode() if isinstance(answer, bytes) else (str(answer))
                )
            # Round trip 2: every length.
            plan: list[tuple[RedisKeys, str, str]] = []
            for source in sources:
                for key in keys[source.metric]:
                    plan.append((source, key, kind.get((source.metric, key), source.type)))
            answers = run_pipeline(client, [_length_command(s, k, t) for s, k, t in plan])
        except SourceError as error:
            return dict.fromkeys((s.metric for s in sources), error)
        except redis.RedisError as exc:
            return {s.metric: redis_error(s.metric, first.url, exc) for s in sources}
        totals: dict[str, list[float]] = {s.metric: [0.0, 0.0] for s in sources}
        has_in_flight: set[str] = set()
        for (source, key, key_type), answer in zip(plan, answers, strict=True):
            if source.metric in out:
                continue
            if isinstance(answer, Exception):
                out[source.metric] = redis_error(source.metric, source.url, answer)
                continue
            try:
                pending, in_flight = _lengths(source, key, key_type, answer)
            except SourceError as error:
                out[source.metric] = error
                continue
            totals[source.metric][0] += pending
            if in_flight is not None:
                totals[source.metric][1] += in_flight
                has_in_flight.add(source.metric)
        for source in sources:
            if source.metric not in out:
                pending, in_flight = totals[source.metric]
                out[source.metric] = Reading(
                    value=pending,
                    pending=pending,
                    in_flight=in_flight if source.metric in has_in_flight else None,
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
