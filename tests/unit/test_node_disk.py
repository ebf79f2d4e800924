"""A node refuses to start on a disk the kubelet would call under pressure: its Pods would be
evicted and never start, and a Helm install would time out with no word of why (a CI run did)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import NamedTuple

import pytest
from testground import node
from testground.process import ServerStartError

GIB = 1024**3


class Usage(NamedTuple):
    total: int
    used: int
    free: int


def test_a_nearly_full_disk_is_refused_saying_how_much_is_free_and_needed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The CI machine's disk that day: 252 GiB, 3.2 GiB free (1 % is 2.5 GiB).
    monkeypatch.setattr(shutil, "disk_usage", lambda _: Usage(252 * GIB, 0, int(3.2 * GIB)))
    with pytest.raises(ServerStartError, match=r"3\.2 GiB free on the disk of .* needs 4\.5 GiB"):
        node._enough_disk(tmp_path / "not-made-yet" / "node")


def test_enough_free_disk_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "disk_usage", lambda _: Usage(252 * GIB, 0, 5 * GIB))
    node._enough_disk(tmp_path)
