"""Push wake for Redis-family sources: keyspace notifications on the watched keys.

Redis publishes `__keyspace@<db>__:<key>` events only when the server's `notify-keyspace-events`
includes `K` and the event classes (`l` lists, `s` sets, `z` sorted sets, `t` streams; `A` is all).
autozero enables them (`CONFIG SET`) only where the policy allows it (`configureNotifications`);
otherwise it subscribes anyway and says so, and the poll remains the safety net.

A lost subscription is re-made with backoff, and a reconnect counts as "work may have arrived"
(events published while disconnected are lost).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

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


@dataclass
class KeyspaceWatch:
    url: str
    channels: list[str]
    on_work: Callable[[], None]
    timeout: float
    stop_event: threading.Event = field(default_factory=threading.Event)
    subscribed: threading.Event = field(default_factory=threading.Event)
    reconnects: int = 0
    thread: threading.Thread | None = None

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
        watch.thread = threading.Thread(
            target=watch._run, name=f"keyspace-watch:{channels}", daemon=True
        )
        watch.thread.start()
        return watch

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
                pubsub.psubscribe(*self.channels)
                self.subscribed.set()
                if not first:
                    self.reconnects += 1
                    self.on_work()  # events sent while we were away are lost: look now
                first = False
                delay = 0.1
                while not self.stop_event.is_set():
                    message = pubsub.get_message(timeout=0.5)
                    if message is None:
                        continue
                    event = message.get("data")
                    event = event.decode() if isinstance(event, bytes) else str(event)
                    if event in WORK_EVENTS:
                        self.on_work()
            except redis.RedisError as exc:
                self.subscribed.clear()
                log.info("keyspace subscription lost (%s); retrying in %.1fs", exc, delay)
                self.stop_event.wait(delay)
                delay = min(delay * 2, 5.0)
            finally:
                if pubsub is not None:
                    try:
                        pubsub.close()
                    except redis.RedisError:
                        log.debug("closing a broken subscription failed", exc_info=True)

    def stop(self) -> None:
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join(timeout=5)
