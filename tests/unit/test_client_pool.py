"""The operator's Kubernetes client keeps a connection per worker thread: with the client's
default pool (5 per CPU) its 16 threads overflowed it on a 2-CPU machine, and the soak's operator
log filled with "Connection pool is full, discarding connection" (a new TLS connection a call)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from autozero.kubeconfig import size_the_pool
from kubernetes import client


@pytest.fixture
def default_configuration() -> Iterator[client.Configuration]:
    saved = client.Configuration.get_default_copy()
    small = client.Configuration.get_default_copy()
    small.connection_pool_maxsize = 10  # what 2 CPUs give
    client.Configuration.set_default(small)
    try:
        yield small
    finally:
        client.Configuration.set_default(saved)


def test_the_pool_holds_a_connection_per_thread(default_configuration: object) -> None:
    size_the_pool(16)
    api = client.ApiClient()
    try:
        assert client.Configuration.get_default_copy().connection_pool_maxsize == 20
        assert api.rest_client.pool_manager.connection_pool_kw["maxsize"] == 20
    finally:
        api.close()


def test_a_larger_pool_is_kept(default_configuration: client.Configuration) -> None:
    default_configuration.connection_pool_maxsize = 64
    client.Configuration.set_default(default_configuration)
    size_the_pool(16)
    assert client.Configuration.get_default_copy().connection_pool_maxsize == 64
