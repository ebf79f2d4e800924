"""A replica's name in the leader lease is unique even where host and PID are not."""

from __future__ import annotations

import contextlib
import os
import socket
import threading

import pytest
from autozero.controller.election import _LeaseCalls, default_identity, lease_api


def test_the_pods_name_when_the_chart_gives_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POD_NAME", "autozero-7d9f-abcde")
    assert default_identity() == "autozero-7d9f-abcde"


def test_two_replicas_on_one_host_with_one_pid_differ(monkeypatch: pytest.MonkeyPatch) -> None:
    """hostNetwork replicas share the node's host name, and each is PID 1 in its container."""
    monkeypatch.delenv("POD_NAME", raising=False)
    first, second = default_identity(), default_identity()
    assert first != second
    assert first.startswith(f"{os.uname().nodename}-{os.getpid()}-")


def test_a_hung_lease_call_is_tried_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """An apiserver that accepts and never answers: one connection, one timeout, a failed try
    (ApiException status 0), not four timeouts in a row past the renew deadline."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    accepted: list[socket.socket] = []
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        server.settimeout(0.05)
        stop = threading.Event()

        def accept() -> None:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    accepted.append(server.accept()[0])

        acceptor = threading.Thread(target=accept)
        acceptor.start()
        saved = client.Configuration.get_default_copy()
        hung = client.Configuration.get_default_copy()
        hung.host = f"http://127.0.0.1:{server.getsockname()[1]}"
        client.Configuration.set_default(hung)
        try:
            calls = _LeaseCalls(lease_api(), 0.3)
            with pytest.raises(ApiException) as refused:
                calls.read_namespaced_lease("autozero", "default")
        finally:
            client.Configuration.set_default(saved)
            stop.set()
            acceptor.join()
            for connection in accepted:
                connection.close()
    assert refused.value.status == 0
    assert len(accepted) == 1
