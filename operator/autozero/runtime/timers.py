"""A heap of timers keyed by (policy, kind): setting one again replaces it, in O(log n).

The runtime keeps one timer of each kind per policy (its next poll, its next deadline, a retry
of an unusable policy, an access re-check), so ten thousand groups cost ten thousand heap entries
at most and the loop sleeps until the earliest one, never scanning them all.
"""

from __future__ import annotations

import heapq
import itertools
from enum import StrEnum
from typing import Generic, TypeVar

K = TypeVar("K")


class TimerKind(StrEnum):
    POLL = "poll"  # read the policy's sources
    DEADLINE = "deadline"  # a group's decision may change with time alone
    BUILD = "build"  # (re)build an unusable or changed policy
    RECHECK = "recheck"  # ask again whether the policy may still act
    REPORT = "report"  # record again a pass the shell could not record


class Timers(Generic[K]):
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, K, TimerKind]] = []
        self._due: dict[tuple[K, TimerKind], float] = {}
        self._seq = itertools.count()

    def set(self, key: K, kind: TimerKind, due: float) -> None:
        """Fire (key, kind) at `due`, replacing any earlier setting of it."""
        if self._due.get((key, kind)) == due:
            return
        self._due[(key, kind)] = due
        heapq.heappush(self._heap, (due, next(self._seq), key, kind))

    def set_earlier(self, key: K, kind: TimerKind, due: float) -> None:
        """Fire at `due` unless it is already due sooner."""
        current = self._due.get((key, kind))
        if current is None or due < current:
            self.set(key, kind, due)

    def get(self, key: K, kind: TimerKind) -> float | None:
        return self._due.get((key, kind))

    def cancel(self, key: K, kind: TimerKind | None = None) -> None:
        for each in (kind,) if kind is not None else tuple(TimerKind):
            self._due.pop((key, each), None)

    def pop_due(self, now: float) -> list[tuple[K, TimerKind]]:
        """Every timer due at `now`, each once; replaced and cancelled entries are skipped."""
        fired: list[tuple[K, TimerKind]] = []
        while self._heap and self._heap[0][0] <= now:
            due, _, key, kind = heapq.heappop(self._heap)
            if self._due.get((key, kind)) == due:
                del self._due[(key, kind)]
                fired.append((key, kind))
        return fired

    def next_due(self) -> float | None:
        """When the earliest live timer fires (stale heap entries are dropped on the way)."""
        while self._heap:
            due, _, key, kind = self._heap[0]
            if self._due.get((key, kind)) == due:
                return due
            heapq.heappop(self._heap)
        return None

    def __len__(self) -> int:
        return len(self._due)
