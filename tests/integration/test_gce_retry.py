"""A policy's Compute calls back off no longer than its polling interval: a pass waits on its
calls, so a long delay drawn during a burst of 503s held a wake past the burst (chaos campaign,
seed 22 --handoff --replicas 2: 3.3 s at a 1 s interval)."""

from __future__ import annotations

import pytest
from autozero.policy.parse import parse_policy
from autozero.runtime.assemble import RuntimeConfig, assemble
from autozero.targets.base import TargetError
from autozero.targets.gce import GCEGroup
from gce_emulator import EmulatorServer
from support.manifests import GCE_BIDS, one_group


def policy(interval: str) -> object:
    return parse_policy(one_group(GCE_BIDS, pollingInterval=interval))


@pytest.mark.parametrize(
    ("interval", "longest"),
    [
        pytest.param("1s", 1.0, id="1s-interval"),
        pytest.param("3s", 3.0, id="3s-interval"),
        pytest.param("30s", 8.0, id="30s-interval-keeps-the-8s-cap"),
    ],
)
def test_backoff_in_a_burst_of_503s_never_outlasts_the_polling_interval(
    gce_emulator: EmulatorServer, interval: str, longest: float
) -> None:
    parts = assemble(
        policy(interval),  # type: ignore[arg-type]
        resolve_secret=lambda name, key: "",
        config=RuntimeConfig(gce_endpoint=gce_emulator.api_endpoint),
    )
    group = parts.targets["bids"]
    assert isinstance(group, GCEGroup)
    delays: list[float] = []
    group.compute.retry.sleep = delays.append  # record instead of waiting
    group.compute.retry.rand = lambda: 1.0  # the worst draw each time
    gce_emulator.control("faults", {"rate": 1.0, "codes": [503]})
    try:
        seen = parts.observe_live(["bids"])
    finally:
        gce_emulator.control("faults", {})
    error = seen["bids"]
    assert isinstance(error, TargetError)
    assert error.retryable, error
    assert len(delays) == group.compute.retry.attempts - 1  # every attempt was made
    assert max(delays) == longest
