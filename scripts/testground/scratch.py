"""Scratch directories of the test ground's servers, removed with the server that made them.

A server given no directory makes one in the system's temporary directory. Left there, they pile
up run after run (a node's containerd unpacks 0.7 GiB of images) until the kubelet, below 1 % of
free disk, evicts every Pod: so each goes when its owner does.
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
from pathlib import Path


def scratch_dir(owner: object, prefix: str) -> Path:
    """A new temporary directory, removed once `owner` is garbage-collected or the process exits
    (a server stopped and started again keeps it: its data outlives a restart)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    remove_with(owner, path)
    return path


def remove_with(owner: object, path: Path) -> None:
    """Remove `path` once `owner` is garbage-collected or the process exits."""
    weakref.finalize(owner, shutil.rmtree, path, ignore_errors=True)
