"""Redis-family sources (redis keys, RQ, MRQ raw queues) and push wake, against real Redis."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from autozero.engine.readings import Failure, Reading
from autozero.policy.model import MetricSpec
from autozero.sources.base import (
    Context,
    SourceAuthError,
    SourceConfigError,
    SourceUnreachable,
)
from autozero.sources.connections import POOLS
from autozero.sources.push import KeyspaceWatch
from autozero.sources.registry import build_source, read_all
from testground.process import wait_for
from testground.redis_server import RedisServer

SECRETS: dict[tuple[str, str], str] = {}
CTX = Context(lambda name, key: SECRETS[(name, key)], namespace="batch", timeout=2.0)


def source(kind: str, settings: dict[str, Any], metric: str = "m") -> Any:
    return build_source(MetricSpec(metric, kind, settings), CTX)


@pytest.fixture
def client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(redis_server.url)
    connection.flushall()
    yield connection
    connection.close()


class TestRedisKeys:
    def test_a_missing_key_is_an_empty_queue(
        self, redis_server: RedisServer, client: redis.Redis
    ) -> None:
        reading = source("redis", {"url": redis_server.url, "key": "jobs"}).read()
        assert reading == Reading(0.0, pending=0.0, in_flight=None)

    @pytest.mark.parametrize(
        ("fill", "type_"),
        [
            pytest.param(lambda c: c.lpush("jobs", 1, 2, 3), "auto", id="list-auto"),
            pytest.param(lambda c: c.sadd("jobs", 1, 2, 3), "set", id="set"),
            pytest.param(lambda c: c.zadd("jobs", {"a": 1, "b": 2, "c": 3}), "auto", id="zset"),
            pytest.param(
                lambda c: [c.xadd("jobs", {"n": i}) for i in range(3)], "stream", id="stream"
            ),
        ],
    )
    def test_lengths_by_type(
        self, redis_server: RedisServer, client: redis.Redis, fill: Any, type_: str
    ) -> None:
        fill(client)
        reading = source("redis", {"url": redis_server.url, "key": "jobs", "type": type_}).read()
        assert reading.pending == 3.0

    def test_a_pattern_sums_matching_keys(
        self, redis_server: RedisServer, client: redis.Redis
    ) -> None:
        client.lpush("jobs:a", 1, 2)
        client.sadd("jobs:b", 1, 2, 3)
        client.lpush("other", 1)
        reading = source("redis", {"url": redis_server.url, "keyPattern": "jobs:*"}).read()
        assert reading.pending == 5.0

    def test_a_stream_consumer_group_gives_pending_and_in_flight(
        self, redis_server: RedisServer, client: redis.Redis
    ) -> None:
        for n in range(5):
            client.xadd("events", {"n": n})
        client.xgroup_create("events", "workers", id="0")
        client.xreadgroup("workers", "w1", {"events": ">"}, count=2)  # delivered, not acked
        reading = source(
            "redis", {"url": redis_server.url, "key": "events", "consumerGroup": "workers"}
        ).read()
        assert (reading.pending, reading.in_flight) == (3.0, 2.0)

    def test_one_pipeline_per_server_per_cycle(
        self, redis_server: RedisServer, client: redis.Redis
    ) -> None:
        client.lpush("q1", 1)
        client.lpush("q2", 1, 2)
        sources = [
            source("redis", {"url": redis_server.url, "key": f"q{n}"}, f"m{n}") for n in (1, 2)
        ]
        sources.append(source("rq", {"url": redis_server.url, "queue": "reports"}, "m3"))
        pooled = POOLS.redis(redis_server.url, CTX.timeout)
        calls = []
        real = pooled.pipeline

        def counting(*args: Any, **kwargs: Any) -> Any:
            calls.append(1)
            return real(*args, **kwargs)

        pooled.pipeline = counting  # type: ignore[method-assign]
        try:
            readings = read_all(sources)
        finally:
            pooled.pipeline = real  # type: ignore[method-assign]
        assert [readings[m].pending for m in ("m1", "m2", "m3")] == [1.0, 2.0, 0.0]  # type: ignore[union-attr]
        # Redis keys: one pipeline for the types, one for the lengths; RQ: one more.
        assert len(calls) == 3


class TestFailures:
    def test_server_down_is_typed_and_recovers(self, tmp_path: Path) -> None:
        server = RedisServer(tmp_path / "r")
        server.start()
        queue = source("redis", {"url": server.url, "key": "jobs"})
        assert queue.read().pending == 0.0
        server.stop()
        with pytest.raises(SourceUnreachable, match="cannot connect"):
            queue.read()
        observation = read_all([queue])["m"]
        assert isinstance(observation, Failure)
        assert observation.kind == "Unreachable"
        server.process.start()
        wait_for(lambda: redis.Redis(port=server.port).ping(), timeout=10)
        assert queue.read().pending == 0.0
        server.stop()

    def test_wrong_password_is_an_auth_error_that_never_shows_the_password(
        self, tmp_path: Path
    ) -> None:
        server = RedisServer(tmp_path / "r", password="right-horse")
        server.start()
        try:
            url = f"redis://:wrong-battery@127.0.0.1:{server.port}/0"
            with pytest.raises(SourceAuthError) as raised:
                source("redis", {"url": url, "key": "jobs"}).read()
            assert "wrong-battery" not in str(raised.value)
            assert "***" in str(raised.value)
            SECRETS[("redis", "url")] = server.url
            ok = source(
                "redis",
                {"urlFrom": {"secretKeyRef": {"name": "redis", "key": "url"}}, "key": "jobs"},
            )
            assert ok.read().pending == 0.0
        finally:
            server.stop()

    def test_a_missing_secret_key_is_a_config_error(self) -> None:
        with pytest.raises(SourceConfigError, match="secret batch/nope has no key 'url'"):
            source(
                "redis",
                {"urlFrom": {"secretKeyRef": {"name": "nope", "key": "url"}}, "key": "jobs"},
            )


class TestRQ:
    def test_pending_and_in_flight_with_a_real_rq_worker(
        self, redis_server: RedisServer, client: redis.Redis, tmp_path: Path
    ) -> None:
        from rq import Queue

        (tmp_path / "slowjobs.py").write_text(
            "import time\n\ndef work(seconds):\n    time.sleep(seconds)\n    return seconds\n"
        )
        sys.path.insert(0, str(tmp_path))
        try:
            queue = Queue("reports", connection=client)
            for _ in range(3):
                queue.enqueue("slowjobs.work", 3)
        finally:
            sys.path.remove(str(tmp_path))
        rq_source = source("rq", {"url": redis_server.url, "queue": "reports"})
        assert (rq_source.read().pending, rq_source.read().in_flight) == (3.0, 0.0)
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "rq.cli",
                "worker",
                "--burst",
                "--url",
                redis_server.url,
                "reports",
            ],
            cwd=tmp_path,
            env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            busy = wait_for(lambda: (r := rq_source.read()).in_flight == 1.0 and r, timeout=20)
            assert busy.pending == 2.0
            worker.wait(timeout=60)
        finally:
            worker.kill()
        done = rq_source.read()
        assert (done.pending, done.in_flight) == (0.0, 0.0)


class TestMRQRaw:
    def test_raw_list_set_and_subqueues(
        self, redis_server: RedisServer, client: redis.Redis
    ) -> None:
        client.rpush("mrq:q:bids_raw", "a", "b", "c")
        client.sadd("mrq:q:urls_set", "x", "y")
        client.sadd("mrq:ksq:crawl_raw", "crawl_raw/fr", "crawl_raw/de")
        client.rpush("mrq:q:crawl_raw/fr", 1, 2)
        client.rpush("mrq:q:crawl_raw/de", 1)
        redis_only = {"redis": {"url": redis_server.url}}
        assert source("mrq", {"queue": "bids_raw", **redis_only}).read().pending == 3.0
        assert source("mrq", {"queue": "urls_set", **redis_only}).read().pending == 2.0
        assert source("mrq", {"queue": "crawl_raw/", **redis_only}).read().pending == 3.0

    def test_a_regular_queue_needs_mongodb(self, redis_server: RedisServer) -> None:
        with pytest.raises(SourceConfigError, match="regular MRQ queue"):
            source("mrq", {"queue": "bids", "redis": {"url": redis_server.url}})


class TestPush:
    def test_lpush_on_a_watched_key_reaches_the_callback(
        self, redis_server: RedisServer, client: redis.Redis
    ) -> None:
        arrived = threading.Event()
        queue = source(
            "redis", {"url": redis_server.url, "key": "jobs", "configureNotifications": True}
        )
        watch = queue.watch(lambda metric: arrived.set())
        try:
            assert watch.subscribed.wait(5)
            client.lpush("other", 1)
            assert not arrived.wait(0.3)  # another key: no wake
            client.lpush("jobs", 1)
            assert arrived.wait(5)
        finally:
            watch.stop()

    def test_without_server_notifications_the_watch_says_so_and_stays_quiet(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        server = RedisServer(tmp_path / "quiet")
        server.start()
        try:
            arrived = threading.Event()
            watch = source("redis", {"url": server.url, "key": "jobs"}).watch(
                lambda metric: arrived.set()
            )
            assert watch.subscribed.wait(5)
            redis.Redis(port=server.port).lpush("jobs", 1)
            assert not arrived.wait(0.5)
            watch.stop()
            assert "does not publish keyspace events" in caplog.text
        finally:
            server.stop()

    def test_a_lost_subscription_reconnects(
        self, redis_server: RedisServer, client: redis.Redis
    ) -> None:
        calls: list[float] = []
        watch = KeyspaceWatch.start(
            redis_server.url,
            ["jobs"],
            [],
            lambda: calls.append(time.time()),
            timeout=2.0,
            configure=True,
        )
        try:
            assert watch.subscribed.wait(5)
            client.client_kill_filter(_type="pubsub")
            wait_for(lambda: watch.reconnects >= 1, timeout=10)
            wait_for(watch.subscribed.is_set, timeout=5)
            before = len(calls)
            client.lpush("jobs", 1)
            wait_for(lambda: len(calls) > before, timeout=5)
        finally:
            watch.stop()


def test_rq_a_job_taken_but_not_yet_started_is_in_flight(
    redis_server: RedisServer, client: redis.Redis
) -> None:
    """An RQ worker BLMOVEs a job into the queue's intermediate list, then adds it to the started
    registry: read between the two, the job was nowhere, and a group could be put to sleep under
    a job that was starting (benchmarks/chaos.py, seed 2: "never 0 while a job runs")."""
    from rq import Queue

    queue = Queue("reports", connection=client)
    job = queue.enqueue("slowjobs.work", 3)
    rq_source = source("rq", {"url": redis_server.url, "queue": "reports"})
    client.blmove(queue.key, f"{queue.key}:intermediate", 1)  # what Queue.lmove does first
    taken = rq_source.read()
    assert (taken.pending, taken.in_flight) == (0.0, 1.0)
    # Then in the started registry as `job:execution` (RQ 3), and in both for a moment: once.
    client.zadd("rq:wip:reports", {f"{job.id}:e1": time.time() + 60})
    assert rq_source.read().in_flight == 1.0
    client.lrem(f"{queue.key}:intermediate", 1, job.id)
    assert rq_source.read().in_flight == 1.0
    client.zadd("rq:wip:reports", {"dead:e2": time.time() - 5, "forever:e3": -1})
    assert rq_source.read().in_flight == 2.0  # the expired one is a dead worker's
