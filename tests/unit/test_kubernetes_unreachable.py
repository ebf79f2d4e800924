"""An apiserver that cannot be reached, or drops the connection, is a retryable error per group,
not a crashed cycle."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from autozero.targets.base import TargetError
from autozero.targets.kubernetes import (
    HPAHandoff,
    KubernetesTarget,
    KubernetesWorkload,
    observe_workloads,
)
from kubernetes import client
from support.broken_server import resetting_server
from testground.process import free_port


def test_every_group_gets_a_retryable_error_when_the_apiserver_is_down() -> None:
    config = client.Configuration()
    config.host = f"https://127.0.0.1:{free_port()}"  # nothing listens there
    config.verify_ssl = False
    config.retries = 0
    api = client.ApiClient(config)
    workloads = {
        name: KubernetesWorkload(name, KubernetesTarget("apps/v1", "Deployment", name), "ns", api)
        for name in ("a", "b")
    }
    seen = observe_workloads(api, workloads)
    assert set(seen) == {"a", "b"}
    for name, result in seen.items():
        assert isinstance(result, TargetError)
        assert result.group == name
        assert result.retryable


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda w: w.create_hpa(HPAHandoff(1, 3)), id="create-hpa"),
        pytest.param(lambda w: w.delete_hpa("autozero-worker"), id="delete-hpa"),
    ],
)
def test_a_connection_reset_is_a_retryable_target_error(
    call: Callable[[KubernetesWorkload], object],
) -> None:
    """The apiserver (or a proxy before it) drops the connection without an answer: that group
    fails this cycle and is tried again; the cycle and `autozero run` go on."""
    with resetting_server() as server:
        config = client.Configuration()
        config.host = server.url
        config.retries = 1
        api = client.ApiClient(config)
        target = KubernetesTarget("apps/v1", "Deployment", "worker")
        workload = KubernetesWorkload("worker", target, "ns", api)
        with pytest.raises(TargetError) as raised:
            call(workload)
        assert server.accepted >= 1  # the call reached the server, which reset it
    assert raised.value.retryable
    assert raised.value.group == "worker"
    assert "the apiserver did not answer" in str(raised.value)
