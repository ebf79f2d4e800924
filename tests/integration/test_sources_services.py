"""MRQ regular queues (MongoDB wire), RabbitMQ and Prometheus sources, against real servers."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIServer, make_server

import pika
import pymongo
import pytest
from autozero.engine.readings import Reading
from autozero.policy.model import MetricSpec
from autozero.sources.base import (
    Context,
    SourceAuthError,
    SourceBadResponse,
    SourceNoData,
    SourceNotFound,
    SourceUnreachable,
)
from autozero.sources.connections import POOLS
from autozero.sources.registry import build_source, read_all
from prometheus_client import CollectorRegistry, Gauge, make_wsgi_app
from testground.mongo import FerretDBServer
from testground.process import free_port, wait_for
from testground.prometheus import PrometheusServer
from testground.rabbitmq import RabbitMQServer

SECRETS = {
    ("rabbit", "user"): "guest",
    ("rabbit", "password"): "guest",
    ("rabbit", "bad"): "not-the-password",
}
CTX = Context(lambda name, key: SECRETS[(name, key)], timeout=3.0)


def source(kind: str, settings: dict[str, Any], metric: str = "m") -> Any:
    return build_source(MetricSpec(metric, kind, settings), CTX)


def sampled(queue: Any) -> Reading | None:
    """A RabbitMQ read once the management API has sampled the queue (no data before)."""
    try:
        return queue.read()  # type: ignore[no-any-return]
    except SourceNoData:
        return None


class TestMRQRegular:
    @pytest.fixture
    def jobs(self, mongo: FerretDBServer) -> Iterator[Any]:
        client = pymongo.MongoClient(mongo.url, serverSelectionTimeoutMS=5000)
        collection = client.get_default_database().mrq_jobs
        collection.delete_many({})
        yield collection
        client.close()

    @pytest.mark.parametrize(
        ("docs", "queue", "expected"),
        [
            pytest.param([], "bids", (0.0, 0.0), id="empty"),
            pytest.param([("bids", "queued")] * 3, "bids", (3.0, 0.0), id="pending-only"),
            pytest.param([("bids", "started")] * 2, "bids", (0.0, 2.0), id="in-flight-only"),
            pytest.param(
                [("bids", "queued"), ("bids", "started"), ("bids", "success"), ("other", "queued")],
                "bids",
                (1.0, 1.0),
                id="both",
            ),
            pytest.param(
                [
                    ("bids/fr", "queued"),
                    ("bids/de", "queued"),
                    ("bids/de", "started"),
                    ("bidsx", "queued"),
                ],
                "bids/",
                (2.0, 1.0),
                id="subqueues",
            ),
        ],
    )
    def test_counts(
        self,
        mongo: FerretDBServer,
        jobs: Any,
        docs: list[tuple[str, str]],
        queue: str,
        expected: tuple[float, float],
    ) -> None:
        if docs:
            jobs.insert_many([{"queue": q, "status": s} for q, s in docs])
        reading = source("mrq", {"queue": queue, "mongodb": {"url": mongo.url}}).read()
        assert (reading.pending, reading.in_flight) == expected

    def test_a_raw_queue_reads_in_flight_from_mongodb(
        self, mongo: FerretDBServer, jobs: Any, redis_server: Any
    ) -> None:
        import redis

        redis.Redis.from_url(redis_server.url).delete("mrq:q:mail_raw")
        jobs.insert_one({"queue": "mail_raw", "status": "started"})
        reading = source(
            "mrq",
            {
                "queue": "mail_raw",
                "redis": {"url": redis_server.url},
                "mongodb": {"url": mongo.url},
            },
        ).read()
        assert (reading.pending, reading.in_flight) == (0.0, 1.0)

    def test_mongodb_down_is_typed_and_recovers(self, tmp_path: Path) -> None:
        server = FerretDBServer(tmp_path / "f")
        server.start()
        queue = source("mrq", {"queue": "bids", "mongodb": {"url": server.url}})
        assert queue.read().pending == 0.0
        server.stop()
        with pytest.raises(SourceUnreachable):
            queue.read()
        server.process.start()
        wait_for(lambda: queue.read().pending == 0.0, timeout=20, interval=0.5)
        server.stop()


class TestRabbitMQ:
    @pytest.fixture
    def channel(self, rabbitmq: RabbitMQServer) -> Iterator[Any]:
        connection = pika.BlockingConnection(pika.URLParameters(rabbitmq.amqp_url))
        yield connection.channel()
        connection.close()

    def settings(self, rabbitmq: RabbitMQServer, **extra: Any) -> dict[str, Any]:
        return {
            "managementUrl": rabbitmq.management_url,
            "vhost": "/",
            "usernameFrom": {"secretKeyRef": {"name": "rabbit", "key": "user"}},
            "passwordFrom": {"secretKeyRef": {"name": "rabbit", "key": "password"}},
            **extra,
        }

    def test_ready_and_unacknowledged_with_a_real_consumer(
        self, rabbitmq: RabbitMQServer, channel: Any
    ) -> None:
        queue = f"invoices-{uuid.uuid4().hex[:6]}"
        channel.queue_declare(queue=queue)
        invoices = source("rabbitmq", self.settings(rabbitmq, queue=queue))
        empty = wait_for(lambda: (r := sampled(invoices)) and r.pending == 0.0 and r, timeout=15)
        assert empty.in_flight == 0.0
        for n in range(5):
            channel.basic_publish(exchange="", routing_key=queue, body=str(n).encode())
        pending = wait_for(lambda: (r := invoices.read()).pending == 5.0 and r, timeout=15)
        assert pending.in_flight == 0.0
        held: list[int] = []
        channel.basic_qos(prefetch_count=2)
        channel.basic_consume(
            queue, lambda ch, method, props, body: held.append(method.delivery_tag)
        )
        wait_for(
            lambda: channel.connection.process_data_events(time_limit=0.2) or len(held) == 2,
            timeout=10,
        )
        both = wait_for(lambda: (r := invoices.read()).in_flight == 2.0 and r, timeout=15)
        assert both.pending == 3.0
        for tag in held:
            channel.basic_ack(tag)

    def test_a_pattern_sums_queues_in_one_call_per_vhost(
        self, rabbitmq: RabbitMQServer, channel: Any
    ) -> None:
        prefix = f"p{uuid.uuid4().hex[:6]}"
        for name, count in (("a", 2), ("b", 3)):
            channel.queue_declare(queue=f"{prefix}-{name}")
            for _ in range(count):
                channel.basic_publish(exchange="", routing_key=f"{prefix}-{name}", body=b"x")
        both = source("rabbitmq", self.settings(rabbitmq, queuePattern=f"{prefix}-.*"), "both")
        one = source("rabbitmq", self.settings(rabbitmq, queue=f"{prefix}-a"), "one")
        session = POOLS.http(rabbitmq.management_url)
        calls: list[str] = []
        session.hooks["response"].append(lambda response, **_: calls.append(response.url))
        try:
            readings = wait_for(
                lambda: (
                    (r := read_all([both, one]))
                    and all(isinstance(v, Reading) for v in r.values())
                    and r["both"].pending == 5.0  # type: ignore[union-attr]
                    and r
                ),
                timeout=15,
            )
            calls.clear()
            readings = read_all([both, one])
        finally:
            session.hooks["response"].clear()
        assert readings["one"].pending == 2.0  # type: ignore[union-attr]
        assert len(calls) == 1

    def test_a_queue_not_sampled_yet_is_no_data_not_an_empty_queue(self) -> None:
        """Until the management API first samples a queue (seconds after it is declared or the
        broker restarts) its record is only `{"name": ...}`: read as empty, it put the chaos
        campaign's StatefulSet to sleep under a job its consumer held (seed 5, rabbitmq-restart).
        A stand-in for the management API serves that record (the real one's is not reliably
        caught in time)."""

        def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
            start_response("200 OK", [("Content-Type", "application/json")])
            return [b'[{"name": "orders"}, {"name": "other", "messages_ready": 0}]']

        server = make_server("127.0.0.1", 0, app, WSGIServer)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            base = f"http://127.0.0.1:{server.server_port}"
            for settings in ({"queue": "orders"}, {"queuePattern": "o.*"}):
                with pytest.raises(SourceNoData, match="no message counts yet"):
                    source("rabbitmq", {"managementUrl": base, **settings}).read()
        finally:
            server.shutdown()
            server.server_close()

    def test_a_missing_queue_is_not_found(self, rabbitmq: RabbitMQServer) -> None:
        with pytest.raises(SourceNotFound, match="no queue 'nope'"):
            source("rabbitmq", self.settings(rabbitmq, queue="nope")).read()

    def test_wrong_credentials_are_an_auth_error(self, rabbitmq: RabbitMQServer) -> None:
        settings = self.settings(rabbitmq, queue="x")
        settings["passwordFrom"] = {"secretKeyRef": {"name": "rabbit", "key": "bad"}}
        with pytest.raises(SourceAuthError) as raised:
            source("rabbitmq", settings).read()
        assert "not-the-password" not in str(raised.value)

    def test_a_broker_that_is_down_is_unreachable(self) -> None:
        settings = {"managementUrl": f"http://127.0.0.1:{free_port()}", "queue": "x"}
        with pytest.raises(SourceUnreachable):
            source("rabbitmq", settings).read()


@pytest.fixture
def exporter(prometheus: PrometheusServer) -> Iterator[tuple[str, Gauge]]:
    """A prometheus_client exporter, scraped by the real Prometheus, with a unique job label."""
    registry = CollectorRegistry()
    gauge = Gauge("autozero_test_backlog", "Jobs waiting", ["shard"], registry=registry)
    port = free_port()
    httpd: WSGIServer = make_server("127.0.0.1", port, make_wsgi_app(registry))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    label = f"t{uuid.uuid4().hex[:8]}"
    prometheus.add_target(f"127.0.0.1:{port}", run=label)
    try:
        yield label, gauge
    finally:
        httpd.shutdown()
        httpd.server_close()


def settled(read: Any, check: Any, timeout: float = 30) -> Any:
    """The first reading that passes `check`; read errors before then (no scrape yet) retry."""

    def attempt() -> Any:
        try:
            reading = read()
        except SourceNoData:
            return None
        return reading if check(reading) else None

    return wait_for(attempt, timeout=timeout)


class TestPrometheus:
    def query(self, prometheus: PrometheusServer, promql: str, **extra: Any) -> Any:
        return source("prometheus", {"serverAddress": prometheus.url, "query": promql, **extra})

    def test_a_one_series_vector_and_a_scalar(
        self, prometheus: PrometheusServer, exporter: tuple[str, Gauge]
    ) -> None:
        label, gauge = exporter
        gauge.labels("a").set(7)
        gauge.labels("b").set(5)
        total = self.query(prometheus, f'sum(autozero_test_backlog{{run="{label}"}})')
        assert settled(total.read, lambda r: r.value == 12.0)
        scalar = self.query(prometheus, f'scalar(max(autozero_test_backlog{{run="{label}"}}))')
        assert scalar.read().value == 7.0

    def test_several_series_is_a_clear_error(
        self, prometheus: PrometheusServer, exporter: tuple[str, Gauge]
    ) -> None:
        label, gauge = exporter
        gauge.labels("a").set(1)
        gauge.labels("b").set(1)
        many = self.query(prometheus, f'autozero_test_backlog{{run="{label}"}}')
        count = self.query(prometheus, f'count(autozero_test_backlog{{run="{label}"}})')
        settled(count.read, lambda r: r.value == 2.0)
        with pytest.raises(SourceBadResponse, match="returned 2 series; aggregate it"):
            many.read()

    def test_empty_is_no_data_unless_the_policy_says_so(self, prometheus: PrometheusServer) -> None:
        with pytest.raises(SourceNoData, match="no series"):
            self.query(prometheus, 'sum(nothing_here{job="none"})').read()
        assert (
            self.query(prometheus, 'sum(nothing_here{job="none"})', emptyAs=0).read().value == 0.0
        )

    def test_a_bad_query_is_a_bad_response(self, prometheus: PrometheusServer) -> None:
        with pytest.raises(SourceBadResponse, match="bad_data"):
            self.query(prometheus, "sum(").read()

    def test_a_server_that_is_down_is_unreachable(self) -> None:
        down = source(
            "prometheus", {"serverAddress": f"http://127.0.0.1:{free_port()}", "query": "up"}
        )
        with pytest.raises(SourceUnreachable):
            down.read()


class TestPrometheusAuthAndTLS:
    """A Prometheus that demands basic auth over TLS (its own web config), with a test CA."""

    @pytest.fixture(scope="class")
    @classmethod
    def secured(cls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
        import bcrypt
        from testground.pki import CertificateAuthority

        workdir = tmp_path_factory.mktemp("prometheus-secured")
        ca = CertificateAuthority(workdir / "pki")
        serving = ca.issue("prometheus", common_name="prometheus", server=True)
        hashed = bcrypt.hashpw(b"s3cret-reader", bcrypt.gensalt(rounds=4)).decode()
        server = PrometheusServer(
            workdir,
            web_config={
                "basic_auth_users": {"reader": hashed},
                "tls_server_config": {"cert_file": str(serving.cert), "key_file": str(serving.key)},
            },
        )
        server.start()
        try:
            yield server
        finally:
            server.stop()

    def settings(self, server: PrometheusServer, **extra: Any) -> dict[str, Any]:
        return {
            "serverAddress": server.url,
            "query": "vector(3)",
            "usernameFrom": {"secretKeyRef": {"name": "prom", "key": "user"}},
            "passwordFrom": {"secretKeyRef": {"name": "prom", "key": "password"}},
            **extra,
        }

    def test_basic_auth_over_tls_with_verification_off(self, secured: PrometheusServer) -> None:
        SECRETS.update({("prom", "user"): "reader", ("prom", "password"): "s3cret-reader"})
        reading = source("prometheus", self.settings(secured, insecureSkipVerify=True)).read()
        assert reading.value == 3.0

    def test_an_unknown_certificate_is_refused_by_default(self, secured: PrometheusServer) -> None:
        SECRETS.update({("prom", "user"): "reader", ("prom", "password"): "s3cret-reader"})
        with pytest.raises(SourceUnreachable, match="CERTIFICATE_VERIFY_FAILED"):
            source("prometheus", self.settings(secured)).read()

    def test_a_wrong_password_is_an_auth_error(self, secured: PrometheusServer) -> None:
        SECRETS.update({("prom", "user"): "reader", ("prom", "password"): "guessed"})
        with pytest.raises(SourceAuthError) as raised:
            source("prometheus", self.settings(secured, insecureSkipVerify=True)).read()
        assert "guessed" not in str(raised.value)
