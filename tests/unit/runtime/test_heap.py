"""The heap is settled (collected once, survivors frozen) after a batch of builds, not before,
not during one, and what died since the last freeze is still collected at the next."""

from __future__ import annotations

import asyncio
import copy
import gc
import weakref
from collections.abc import Iterator
from typing import Any

import pytest
from autozero.runtime.assemble import RuntimeConfig
from autozero.runtime.heap import Heap
from autozero.runtime.loop import Runtime
from autozero.runtime.metrics import Metrics
from support.runtime_shell import MANIFEST, FlakyShell


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()


class Node:
    def __init__(self) -> None:
        self.other: Node = self


def test_due_only_after_enough_builds_and_a_quiet_moment() -> None:
    heap = Heap(after=3, quiet=2.0)
    heap.built(10.0)
    heap.built(11.0)
    assert heap.due() is None
    heap.built(12.0)
    assert heap.due() == 14.0
    heap.settle()
    assert heap.due() is None
    assert heap.settled == 1


def test_the_next_settling_waits_for_a_quarter_more_builds() -> None:
    heap = Heap(after=2, quiet=0.0)
    for t in range(40):
        heap.built(float(t))
    heap.settle()
    for t in range(9):
        heap.built(100.0 + t)
    assert heap.due() is None  # 9 < 40 / 4
    heap.built(200.0)
    assert heap.due() == 200.0


def test_settling_freezes_the_survivors_and_collects_what_died_since() -> None:
    heap = Heap(after=1, quiet=0.0)
    kept = Node()
    dropped = Node()
    gone = weakref.ref(dropped)
    heap.built(0.0)
    heap.settle()
    assert gc.get_freeze_count() > 0
    del dropped  # a cycle frozen while alive, dead since: no ordinary collection sees it
    gc.collect()
    assert gone() is not None
    heap.built(1.0)
    heap.settle()  # unfrozen first, so the full collection finds it
    assert gone() is None
    assert kept.other is kept


def manifest(n: int) -> dict[str, Any]:
    body = copy.deepcopy(MANIFEST)
    body["metadata"].update(name=f"p{n}", uid=f"u{n}")
    body["spec"]["groups"][0]["target"]["memory"]["name"] = f"w{n}"
    return body


def test_the_runtime_settles_once_its_builds_are_done_and_then_sleeps(
    registered: None,
) -> None:
    async def scenario() -> tuple[int, int, int]:
        runtime = Runtime(FlakyShell(failures=0), RuntimeConfig(), Metrics(), cluster_wide=False)
        runtime.heap = Heap(after=3, quiet=0.05)
        for n in range(3):
            runtime.serve(manifest(n))
        turns = 0
        pop_due = runtime.timers.pop_due

        def counted(now: float) -> Any:
            nonlocal turns
            turns += 1
            return pop_due(now)

        runtime.timers.pop_due = counted  # type: ignore[method-assign]
        serving = asyncio.get_running_loop().create_task(runtime.run())
        try:
            async with asyncio.timeout(10):
                while not runtime.heap.settled:
                    await asyncio.sleep(0.01)
            settled_at = turns
            await asyncio.sleep(0.5)  # polls every 1 s: a few turns at most, not a spin
        finally:
            runtime.stop()
            await serving
        return runtime.heap.settled, runtime.passes, turns - settled_at

    settled, passes, idle_turns = asyncio.run(scenario())
    assert settled == 1
    assert passes >= 3
    assert idle_turns < 20
