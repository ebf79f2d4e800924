"""Smoke tests: the queue and metrics servers are real and answer their real clients."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from wsgiref.simple_server import WSGIServer, make_server

import pika
import pytest
import redis
from prometheus_client import CollectorRegistry, Gauge, make_wsgi_app
from testground.process import free_port, processes_in_group, wait_for
from testground.prometheus import PrometheusServer
from testground.rabbitmq import RabbitMQServer
from testground.redis_server import RedisServer


def test_redis_lpush_llen(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url, socket_timeout=5)
    key = f"smoke:{uuid.uuid4().hex}"
    assert client.lpush(key, "a", "b", "c") == 3
    assert client.llen(key) == 3
    assert client.rpop(key) == b"a"
    assert client.llen(key) == 2


def test_redis_with_password_rejects_anonymous(tmp_path_factory: pytest.TempPathFactory) -> None:
    server = RedisServer(tmp_path_factory.mktemp("redis-auth"), password="s3cret-pw")
    server.start()
    try:
        anonymous = redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=5)
        with pytest.raises(redis.AuthenticationError):
            anonymous.ping()
        assert redis.Redis.from_url(server.url, socket_timeout=5).ping() is True
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("persist", "left"),
    [
        pytest.param(True, 2, id="persisted-keeps-the-list"),
        pytest.param(False, 0, id="not-persisted"),
    ],
)
def test_redis_list_across_a_stop_and_start(
    tmp_path_factory: pytest.TempPathFactory, persist: bool, left: int
) -> None:
    server = RedisServer(tmp_path_factory.mktemp("redis-persist"), persist=persist)
    server.start()
    try:
        redis.Redis.from_url(server.url, socket_timeout=5).rpush("jobs:outage", "a", "b")
        server.stop()
        server.start()
        assert redis.Redis.from_url(server.url, socket_timeout=5).llen("jobs:outage") == left
    finally:
        server.stop()


def test_rabbitmq_publish_and_read_depth_over_management_api(rabbitmq: RabbitMQServer) -> None:
    queue = f"smoke-{uuid.uuid4().hex[:8]}"
    connection = pika.BlockingConnection(pika.URLParameters(rabbitmq.amqp_url))
    try:
        channel = connection.channel()
        channel.queue_declare(queue=queue, durable=False)
        for n in range(5):
            channel.basic_publish(exchange="", routing_key=queue, body=f"job {n}".encode())
        # Hold two messages unacknowledged: the management API must show them apart.
        channel.basic_qos(prefetch_count=2)
        held: list[int] = []

        def hold(_ch: object, method: pika.spec.Basic.Deliver, _p: object, _b: bytes) -> None:
            held.append(method.delivery_tag)

        channel.basic_consume(queue, hold, auto_ack=False)
        wait_for(lambda: connection.process_data_events(time_limit=0.2) or len(held) == 2)

        def depth() -> dict[str, int] | None:
            info = rabbitmq.api(f"queues/%2F/{queue}")
            counts = {k: info.get(k) for k in ("messages_ready", "messages_unacknowledged")}
            return counts if counts == {"messages_ready": 3, "messages_unacknowledged": 2} else None

        assert wait_for(depth) == {"messages_ready": 3, "messages_unacknowledged": 2}
    finally:
        connection.close()


@pytest.fixture
def exporter() -> Iterator[tuple[int, Gauge]]:
    """A real prometheus_client exporter on a free port, for Prometheus to scrape."""
    registry = CollectorRegistry()
    gauge = Gauge("autozero_smoke_backlog", "Jobs waiting in the smoke test", registry=registry)
    port = free_port()
    httpd: WSGIServer = make_server("127.0.0.1", port, make_wsgi_app(registry))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield port, gauge
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_prometheus_scrapes_a_target_and_answers_a_query(
    prometheus: PrometheusServer, exporter: tuple[int, Gauge]
) -> None:
    port, gauge = exporter
    gauge.set(42)
    prometheus.add_target(f"127.0.0.1:{port}", smoke="yes")

    def value() -> float | None:
        result = prometheus.query('autozero_smoke_backlog{smoke="yes"}')["result"]
        return float(result[0]["value"][1]) if result else None

    assert wait_for(lambda: value() == 42.0, timeout=30)
    gauge.set(7)
    assert wait_for(lambda: value() == 7.0, timeout=30)


def test_stopping_a_server_leaves_no_process(tmp_path_factory: pytest.TempPathFactory) -> None:
    server = RabbitMQServer(tmp_path_factory.mktemp("rabbitmq-stop"))
    server.start()
    groups = [server.process.pid, server.epmd.pid]
    assert processes_in_group(groups[0]), "the broker should be running before stop"
    server.stop()
    assert [pid for g in groups for pid in processes_in_group(g)] == []
