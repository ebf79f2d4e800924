"""One node at a time on a machine (two kubelets kill each other's Pods): a second test process
that wants a node waits for the first one's to stop instead of failing, and gives up, saying
why, after NODE_WAIT."""

from __future__ import annotations

import fcntl
import threading
import time
from pathlib import Path

import pytest
from testground import node
from testground.process import ServerStartError


@pytest.fixture
def lock_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "node.lock"
    monkeypatch.setattr(node, "NODE_LOCK", path)
    monkeypatch.setattr(node, "processes_named", lambda name: {})  # no kubelet but ours
    monkeypatch.setattr(node, "remove_stale_node_cgroups", lambda: None)
    return path


def test_a_second_node_waits_for_the_first_to_stop(lock_path: Path) -> None:
    first = node._one_node_at_a_time()
    got: list[str] = []

    def take() -> None:
        with node._one_node_at_a_time():
            got.append("second")

    second = threading.Thread(target=take)
    second.start()
    time.sleep(1.0)
    assert got == []  # still waiting: the first holds the lock
    first.close()  # the first node stopped
    second.join(timeout=10)
    assert got == ["second"]


def test_it_gives_up_after_node_wait_and_says_why(
    lock_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(node, "NODE_WAIT", 0.5)
    with lock_path.open("ab") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        with pytest.raises(ServerStartError, match=r"another node held .* for 0 s"):
            node._one_node_at_a_time()
