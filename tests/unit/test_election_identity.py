"""A replica's name in the leader lease is unique even where host and PID are not."""

from __future__ import annotations

import os

import pytest
from autozero.controller.election import default_identity


def test_the_pods_name_when_the_chart_gives_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POD_NAME", "autozero-7d9f-abcde")
    assert default_identity() == "autozero-7d9f-abcde"


def test_two_replicas_on_one_host_with_one_pid_differ(monkeypatch: pytest.MonkeyPatch) -> None:
    """hostNetwork replicas share the node's host name, and each is PID 1 in its container."""
    monkeypatch.delenv("POD_NAME", raising=False)
    first, second = default_identity(), default_identity()
    assert first != second
    assert first.startswith(f"{os.uname().nodename}-{os.getpid()}-")
