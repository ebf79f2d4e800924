"""Long-lived objects kept out of the cyclic garbage collector's way.

At 10,000 groups the operator holds about half a million objects, nearly all built once per policy
and kept. Each full collection walks them all while holding the event loop: the scale benchmark
saw one every 10-40 s, each hundreds of ms on a loaded 2-core machine, and a push wake that lands
in one waits for it. So once a batch of builds has settled (no build for a moment), one full
collection clears what building left behind and `gc.freeze` moves the survivors to the permanent
generation, which later collections skip. The previous freeze is undone first, so that cycles
among objects frozen then and dead since (a rebuilt or released policy's) are collected too.
Then the C allocator is asked to give its free pages back (glibc's `malloc_trim`): building leaves
the heap full of holes that the process would otherwise keep for good.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

SETTLE_AFTER = 100  # builds since the last settling, at least, before one is worth its pause
QUIET = 2.0  # seconds without a build: the batch (a start, a rebalance) is over


def _malloc_trim() -> Callable[[], object] | None:
    """glibc's `malloc_trim(0)`, or None where the C library has none (musl, macOS)."""
    trim = getattr(ctypes.CDLL(None), "malloc_trim", None)
    if trim is None:
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: trim(0)


_TRIM = _malloc_trim()


class Heap:
    """Counts builds, and says when the heap is worth settling (`due`), then settles it."""

    def __init__(self, after: int = SETTLE_AFTER, quiet: float = QUIET) -> None:
        self.after, self.quiet = after, quiet
        self.pending = 0  # builds since the last settling
        self.frozen = 0  # builds at the last settling: a quarter more before the next
        self.last_build = 0.0
        self.settled = 0  # times settled, for tests and benchmarks

    def built(self, now: float) -> None:
        self.pending += 1
        self.last_build = now

    def due(self) -> float | None:
        """When to settle (the clock's time), or None while too few builds are pending."""
        if self.pending < max(self.after, self.frozen // 4):
            return None
        return self.last_build + self.quiet

    def settle(self) -> None:
        started = time.perf_counter()
        gc.unfreeze()
        collected = gc.collect()
        gc.freeze()
        if _TRIM is not None:
            _TRIM()
        self.frozen += self.pending
        self.pending = 0
        self.settled += 1
        log.info(
            "heap settled after %d builds: %d objects frozen, %d collected, in %.0f ms",
            self.frozen,
            gc.get_freeze_count(),
            collected,
            1000 * (time.perf_counter() - started),
        )
