"""The operator, as `python -m autozero.cli operator`, with a memory probe for the soak.

On SIGUSR2 it writes, to `$AUTOZERO_SOAK_PROBE`, the live objects counted by type (gc) and, when
`PYTHONTRACEMALLOC` is set, the top allocation sites of a tracemalloc snapshot diffed against the
first one taken: what a soak needs to say *what* grows, from outside the process, at no cost
until asked.
"""

from __future__ import annotations

import collections
import gc
import json
import os
import signal
import sys
import time
import tracemalloc
from types import FrameType

from autozero.cli import main

_FIRST: list[tracemalloc.Snapshot] = []


def _probe(signum: int, frame: FrameType | None) -> None:  # noqa: ARG001
    path = os.environ.get("AUTOZERO_SOAK_PROBE")
    if not path:
        return
    gc.collect()
    counts = collections.Counter(type(o).__qualname__ for o in gc.get_objects())
    record: dict[str, object] = {"time": time.time(), "types": dict(counts.most_common(60))}
    if tracemalloc.is_tracing():
        snapshot = tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(False, tracemalloc.__file__)]
        )
        if not _FIRST:
            _FIRST.append(snapshot)
        record["grown"] = [
            {"where": str(stat.traceback), "size_diff": stat.size_diff, "count": stat.count_diff}
            for stat in snapshot.compare_to(_FIRST[0], "traceback")[:25]
        ]
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    signal.signal(signal.SIGUSR2, _probe)
    sys.exit(main(["operator", *sys.argv[1:]]))
