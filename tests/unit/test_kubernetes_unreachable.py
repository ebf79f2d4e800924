"""An apiserver that cannot be reached is a retryable error per group, not a crashed cycle."""

from __future__ import annotations

from autozero.policy.model import KubernetesTarget
from autozero.targets.base import TargetError
from autozero.targets.kubernetes import KubernetesWorkload, observe_workloads
from kubernetes import client
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
