"""The operator, as `python -m autozero.cli operator`, with a memory probe for the soak.

On SIGUSR2 it writes, to `$AUTOZERO_SOAK_PROBE`, the live objects counted by type (gc) and, when
`PYTHONTRACEMALLOC` is set, the top allocation sites of a tracemalloc snapshot diffed against the
first one taken, and glibc's own heap figures (mallinfo2): what a soak needs to say *what* grows,
Python objects, memory Python allocated, or memory only C code (OpenSSL, the allocator's arenas)
holds, from outside the process, at no cost until asked.
"""

from __future__ import annotations

import collections
import ctypes
import ctypes.util
import gc
import json
import os
import signal
import sys
import tempfile
import time
import tracemalloc
from types import FrameType
from xml.etree import ElementTree

from autozero.cli import main

_FIRST: list[tracemalloc.Snapshot] = []


def _heap() -> dict[str, int]:
    """The C heap over all glibc arenas, from `malloc_info` (mallinfo counts the main one only).

    `system`: bytes the allocator holds from the system; `in_use`: of those, bytes handed out;
    `mmap`: large blocks mapped apart. In use flat while system grows is fragmentation; in use
    growing while tracemalloc's total stays flat is memory C code (OpenSSL, extensions) allocated.
    Empty where the C library has no malloc_info.
    """
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    if not hasattr(libc, "malloc_info"):
        return {}
    libc.fopen.restype = ctypes.c_void_p
    libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
    libc.fclose.argtypes = [ctypes.c_void_p]
    with tempfile.NamedTemporaryFile(suffix=".xml") as xml:
        handle = libc.fopen(xml.name.encode(), b"w")
        libc.malloc_info(0, handle)
        libc.fclose(handle)
        root = ElementTree.parse(xml.name).getroot()
    totals = {(e.get("type"), e.tag): int(e.get("size") or 0) for e in root if e.tag != "heap"}
    free = sum(size for (kind, tag), size in totals.items() if tag == "total" and kind != "mmap")
    system = totals.get(("current", "system"), 0)
    return {"system": system, "in_use": system - free, "mmap": totals.get(("mmap", "total"), 0)}


def _probe(signum: int, frame: FrameType | None) -> None:  # noqa: ARG001
    path = os.environ.get("AUTOZERO_SOAK_PROBE")
    if not path:
        return
    gc.collect()
    counts = collections.Counter(type(o).__qualname__ for o in gc.get_objects())
    record: dict[str, object] = {
        "time": time.time(),
        "types": dict(counts.most_common(60)),  # the frozen ones (runtime/heap.py) aside:
        "frozen": gc.get_freeze_count(),  # gc.get_objects() does not list them
        "heap": _heap(),
    }
    if tracemalloc.is_tracing():
        record["traced_bytes"] = tracemalloc.get_traced_memory()[0]
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
