"""Fixtures that start the real servers once per session and stop them (by PID) at the end.

A server that cannot start raises ServerStartError with its log tail: the tests that need it
fail with that message. Nothing here ever skips.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, TypeVar

import pytest
from gce_emulator import EmulatorServer, Settings
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from testground.kube import KubeCluster, start_cluster
from testground.mongo import FerretDBServer
from testground.prometheus import PrometheusServer
from testground.rabbitmq import RabbitMQServer
from testground.redis_server import RedisServer


class _Server(Protocol):
    def start(self) -> float: ...
    def stop(self) -> None: ...


S = TypeVar("S", bound=_Server)


def _running(server: S) -> Iterator[S]:
    """Start a server for a fixture and stop it (by PID) when the fixture ends."""
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeCluster]:
    cluster = start_cluster(tmp_path_factory.mktemp("kube"))
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def kube_api(kube: KubeCluster) -> Iterator[k8s_client.ApiClient]:
    """A kubernetes.client.ApiClient authenticated as cluster admin."""
    api = k8s_config.new_client_from_config(config_file=str(kube.kubeconfig))
    try:
        yield api
    finally:
        api.close()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    yield from _running(RedisServer(tmp_path_factory.mktemp("redis")))


@pytest.fixture(scope="session")
def mongo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FerretDBServer]:
    yield from _running(FerretDBServer(tmp_path_factory.mktemp("ferretdb")))


@pytest.fixture(scope="session")
def rabbitmq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitMQServer]:
    yield from _running(RabbitMQServer(tmp_path_factory.mktemp("rabbitmq")))


@pytest.fixture(scope="session")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    yield from _running(PrometheusServer(tmp_path_factory.mktemp("prometheus")))


@pytest.fixture
def gce_emulator() -> Iterator[EmulatorServer]:
    """The Compute Engine emulator (in-process, real HTTP on loopback), fast timings."""
    server = EmulatorServer(
        settings=Settings(
            operation_seconds=0.1,
            instance_boot_seconds=0.2,
            instance_stop_seconds=0.1,
            autoscaler_period_seconds=0.2,
        )
    ).start()
    try:
        yield server
    finally:
        server.stop()
