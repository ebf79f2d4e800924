"""Push wake for Redis-family sources: keyspace notifications on the watched keys.

Redis publishes `__keyspace@<db>__:<key>` events only when the server's `notify-keyspace-events`
includes `K` and the event classes (`l` lists, `s` sets, `z` sorted sets, `t` streams; `A` is all).
autozero enables them (`CONFIG SET`) only where the policy allows it (`configureNotifications`);
otherwise it subscribes anyway and says so, and the poll remains the safety net.

All the watches on one server share one subscriber connection and thread (`_Hub`). A lost
subscription is re-made with backoff, and a reconnect counts as "work may have arrived" (events
published while disconnected are lost).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis

from autozero.sources.connections import POOLS

log = logging.getLogger(__name__)

WORK_EVENTS = frozenset(
    {
        "lpush",
        "rpush",
        "linsert",
        "lset",
        "lmove",
        "rpoplpush",
        "sadd",
        "smove",
        "sinterstore",
        "sunionstore",
        "zadd",
        "zincr",
        "zunionstore",
        "zinterstore",
        "xadd",
        "restore",
        "rename_to",
        "copy_to",
    }
)
NEEDED_CLASSES = "Klszt"


def notifications_enabled(client: redis.Redis) -> bool:
    flags = str(client.config_get("notify-keyspace-events").get("notify-keyspace-events", ""))
    if "K" not in flags:
        return False
    return "A" in flags or all(c in flags for c in "lszt")


def enable_notifications(client: redis.Redis) -> None:
    """Add the keyspace flags autozero needs to the server's, keeping what was there."""
    flags = str(client.config_get("notify-keyspace-events").get("notify-keyspace-events", ""))
    wanted = "".join(sorted(set(flags) | set(NEEDED_CLASSES)))
    client.config_set("notify-keyspace-events", wanted)


@dataclass(eq=False)
class KeyspaceWatch:
    """One source's interest in some keys; the subscription itself is its server's `_Hub`'s."""

    url: str
    channels: list[str]
    on_work: Callable[[], None]
    timeout: float
    subscribed: threading.Event = field(default_factory=threading.Event)
    reconnects: int = 0  # times the shared subscription was re-made since this watch began

    @classmethod
    def start(
        cls,
        url: str,
        keys: Sequence[str],
        patterns: Sequence[str],
        on_work: Callable[[], None],
        *,
        timeout: float,
        configure: bool = False,
    ) -> KeyspaceWatch:
        client = POOLS.redis(url, timeout)
        db = int(client.connection_pool.connection_kwargs.get("db", 0))
        channels = [f"__keyspace@{db}__:{k}" for k in [*keys, *patterns]]
        watch = cls(url, channels, on_work, timeout)
        try:
            if configure:
                enable_notifications(client)
            elif not notifications_enabled(client):
                log.warning(
                    "redis at %s does not publish keyspace events for lists, sets, "
                    "sorted sets and streams; push wake is off until the server's "
                    "notify-keyspace-events includes %s (the poll still works)",
                    client.connection_pool.connection_kwargs.get("host"),
                    NEEDED_CLASSES,
                )
        except redis.RedisError as exc:  # CONFIG may be disabled (managed Redis): poll only
            log.warning("cannot read or set notify-keyspace-events: %s", exc)
        _Hub.join(watch)
        return watch

    def stop(self) -> None:
        _Hub.leave(self)


_HUBS: dict[tuple[str, float], _Hub] = {}  # (url, timeout) -> the hub serving it
_HUBS_LOCK = threading.Lock()


class _Hub:
    """One subscriber connection and one thread per Redis server, whatever the number of watches:
    a thousand policies on one Redis cost one connection, not a thousand threads.

    Watches join and leave from any thread; the hub's thread alone touches the connection
    (redis-py's PubSub is not thread-safe), applying (un)subscriptions between two reads. A lost
    subscription is re-made with backoff, and a reconnect tells every watch that work may have
    arrived (events published while disconnected are lost).
    """

    def __init__(self, url: str, timeout: float) -> None:
        self.url, self.timeout = url, timeout
        self.lock = threading.Lock()
        self.watches: dict[str, list[KeyspaceWatch]] = {}  # channel -> watches
        self.changed = threading.Event()
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"keyspace:{url}", daemon=True)

    @classmethod
    def join(cls, watch: KeyspaceWatch) -> None:
        key = (watch.url, watch.timeout)
        with _HUBS_LOCK:
            hub = _HUBS.get(key)
            if hub is None:
                hub = _HUBS[key] = _Hub(watch.url, watch.timeout)
                hub.thread.start()
            with hub.lock:
                for channel in watch.channels:
                    hub.watches.setdefault(channel, []).append(watch)
            hub.changed.set()

    @classmethod
    def leave(cls, watch: KeyspaceWatch) -> None:
        key = (watch.url, watch.timeout)
        with _HUBS_LOCK:
            hub = _HUBS.get(key)
            if hub is None:
                return
            with hub.lock:
                for channel in watch.channels:
                    members = hub.watches.get(channel, [])
                    if watch in members:
                        members.remove(watch)
                    if not members:
                        hub.watches.pop(channel, None)
                empty = not hub.watches
            if empty:
                del _HUBS[key]
        if empty:
            hub.stop_event.set()
            hub.thread.join(timeout=5)
        else:
            hub.changed.set()

    def _everyone(self) -> list[KeyspaceWatch]:
        with self.lock:
            return list({id(w): w for ws in self.watches.values() for w in ws}.values())

    def _sync(self, pubsub: Any, current: set[str]) -> set[str]:
        """Bring the connection's subscriptions to the watched channels; returns them."""
        self.changed.clear()
        with self.lock:
            wanted = set(self.watches)
        if wanted - current:
            pubsub.psubscribe(*(wanted - current))
        if current - wanted:
            pubsub.punsubscribe(*(current - wanted))
        for watch in self._everyone():
            watch.subscribed.set()
        return wanted

    def _dispatch(self, message: Mapping[str, Any]) -> None:
        event = message.get("data")
        event = event.decode() if isinstance(event, bytes) else str(event)
        if event not in WORK_EVENTS:
            return
        pattern = message.get("pattern")
        pattern = pattern.decode() if isinstance(pattern, bytes) else str(pattern)
        with self.lock:
            watches = list(self.watches.get(pattern, ()))
        for watch in watches:
            watch.on_work()

    def _run(self) -> None:
        delay = 0.1
        first = True
        while not self.stop_event.is_set():
            pubsub = None
            try:
                client = redis.Redis.from_url(
                    self.url, socket_connect_timeout=self.timeout, socket_timeout=None
                )
                pubsub = client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
                current = self._sync(pubsub, set())
                if not first:
                    for watch in self._everyone():
                        watch.reconnects += 1
                        watch.on_work()  # events sent while we were away are lost: look now
                first = False
                delay = 0.1
                while not self.stop_event.is_set():
                    if self.changed.is_set():
                        current = self._sync(pubsub, current)
                    message = pubsub.get_message(timeout=0.1)
                    if message is not None:
                        self._dispatch(message)
            except redis.RedisError as exc:
                for watch in self._everyone():
                    watch.subscribed.clear()
                log.info("keyspace subscription lost (%s); retrying in %.1fs", exc, delay)
                self.stop_event.wait(delay)
                delay = min(delay * 2, 5.0)
            finally:
                if pubsub is not None:
                    try:
                        pubsub.close()
                    except redis.RedisError:
                        log.debug("closing a broken subscription failed", exc_info=True)
