"""Typed informer errors, backoff, and an informer whose apiserver is not there."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from autozero.runtime.errors import (
    InformerError,
    InformerForbidden,
    InformerNotFound,
    InformerUnavailable,
    from_exception,
)
from autozero.runtime.informer import RECONNECT_MAX, Backoff, WatchSettings, WorkloadInformer
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from testground.process import free_port
from urllib3.exceptions import ProtocolError

FORBIDDEN_BODY = (
    '{"kind":"Status","status":"Failure","reason":"Forbidden","code":403,"message":'
    '"deployments.apps is forbidden: User \\"system:serviceaccount:a:b\\" cannot list"}'
)


def _api_exception(status: int, body: str | None = None) -> ApiException:
    error = ApiException(status=status, reason="Reason")
    error.body = body
    return error


@pytest.mark.parametrize(
    ("exc", "kind", "transient"),
    [
        pytest.param(_api_exception(401), InformerForbidden, False, id="401"),
        pytest.param(_api_exception(403), InformerForbidden, False, id="403"),
        pytest.param(_api_exception(404), InformerNotFound, False, id="404"),
        pytest.param(_api_exception(429), InformerUnavailable, True, id="429"),
        pytest.param(_api_exception(503), InformerUnavailable, True, id="503"),
        pytest.param(_api_exception(0), InformerUnavailable, True, id="tls-or-no-status"),
        pytest.param(_api_exception(400), InformerError, False, id="400"),
        pytest.param(ProtocolError("Connection broken"), InformerUnavailable, True, id="urllib3"),
        pytest.param(ConnectionRefusedError(111, "refused"), InformerUnavailable, True, id="os"),
    ],
)
def test_request_failures_map_to_typed_errors(
    exc: Exception, kind: type[InformerError], transient: bool
) -> None:
    error = from_exception("Deployment (apps/v1) in namespace a", exc)
    assert type(error) is kind
    assert error.transient is transient
    assert str(error).startswith("Deployment (apps/v1) in namespace a: ")


def test_a_forbidden_error_carries_the_apiservers_sentence() -> None:
    error = from_exception("what", _api_exception(403, FORBIDDEN_BODY))
    assert error.status == 403
    assert 'User "system:serviceaccount:a:b" cannot list' in error.detail


def test_backoff_grows_to_its_bound_with_jitter_and_resets() -> None:
    highs = Backoff(0.5, 4.0, draw=lambda: 1.0)
    assert [highs.next() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    lows = Backoff(0.5, 4.0, draw=lambda: 0.0)
    assert [lows.next() for _ in range(4)] == [0.25, 0.5, 1.0, 2.0]
    highs.reset()
    assert highs.next() == 0.5


def test_an_apiserver_that_does_not_answer_is_tried_again_within_the_reconnect_bound() -> None:
    backoff = Backoff(0.5, 30.0, draw=lambda: 1.0)
    capped = [backoff.next(RECONNECT_MAX) for _ in range(8)]
    assert capped == [0.5] + [RECONNECT_MAX] * 7  # 0.5, then never more than 1 s
    assert backoff.next() == 30.0  # other failures (403, 404) still back off to the bound


def test_an_unreachable_apiserver_is_reported_retried_with_backoff_and_stops_promptly() -> None:
    config = client.Configuration()
    config.host = f"https://127.0.0.1:{free_port()}"  # nothing listens there
    config.verify_ssl = False
    config.retries = 0
    api = client.ApiClient(config)
    errors: list[InformerError | None] = []
    third = threading.Event()

    def on_error(error: InformerError | None) -> None:
        errors.append(error)
        if len(errors) >= 3:
            third.set()

    informer: Any = WorkloadInformer(
        api,
        "apps/v1",
        "Deployment",
        "a",
        on_error=on_error,
        settings=WatchSettings(backoff_initial=0.05, backoff_max=0.2),
    ).start()
    try:
        assert third.wait(30)
        assert all(isinstance(e, InformerUnavailable) for e in errors)
        assert "API discovery of apps/v1" in str(errors[0])  # the first step is discovery
        assert informer.error is errors[-1]
        assert not informer.synced
    finally:
        assert informer.stop(timeout=10)
    assert not informer.running
