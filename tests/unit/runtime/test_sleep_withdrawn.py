"""A sleep withdrawn because its recheck saw work is decided again on that recheck's reads, not on
a poll made before it. The chaos campaign (seed 22, `--handoff --replicas 2`) saw a Deployment's
HPA deleted, the recheck see 2 jobs and 1 in flight and stop the sleep, and 9 ms later the next
pass, on a poll read before the recheck, put the Deployment to 0 under the job.

The runtime runs for real (its loop, timers and threads) over the in-process `tally` source and
`memory` target of tests/support/throwaway_kinds.py; the target's sleep is made of two steps, a
recheck between them, and a poll read before the recheck is handed over while the sleep runs."""

from __future__ import annotations

import asyncio
import copy
import threading
import time
from typing import Any

import pytest
from autozero.engine.readings import Reading
from autozero.runtime.assemble import RuntimeConfig
from autozero.runtime.loop import Runtime
from autozero.runtime.metrics import Metrics
from autozero.targets.base import Applied, Change, Observed, SleepWithdrawn
from support import throwaway_kinds as throwaway
from support.runtime_shell import MANIFEST, FlakyShell


@pytest.mark.parametrize(
    "handed_over",
    [
        pytest.param("during", id="poll-handed-over-during-the-sleep"),
        pytest.param("after", id="after"),
    ],
)
def test_the_pass_after_a_withdrawn_sleep_decides_on_the_rechecks_reads(
    registered: None, monkeypatch: pytest.MonkeyPatch, handed_over: str
) -> None:
    throwaway.COUNTS["jobs"] = 0
    throwaway.REPLICAS["w"] = 1
    manifest = copy.deepcopy(MANIFEST)
    manifest["spec"]["groups"][0]["activation"]["idleFor"] = "1s"
    runtime = Runtime(FlakyShell(failures=0), RuntimeConfig(), Metrics(), cluster_wide=False)
    sleeps: list[str] = []
    sleeping: list[int] = []  # the thread of the sleep under way
    polled, release = threading.Event(), threading.Event()
    read = throwaway.Tally.read

    def held_read(source: throwaway.Tally) -> Reading:
        """A poll's read during the sleep: made at once, handed over only once released."""
        made = read(source)
        if sleeping and threading.get_ident() != sleeping[0]:
            polled.set()
            release.wait(5)
        return made

    def apply(group: Any, change: Change, observed: Observed, recheck: Any = None) -> Applied:
        if change.replicas != 0:
            throwaway.REPLICAS[group.target.name] = change.replicas
            return Applied((f"set {observed.replicas} -> {change.replicas}",))
        sleeps.append("sleep")
        if len(sleeps) > 1:  # a second sleep goes through: what this test must not see
            throwaway.REPLICAS[group.target.name] = 0
            return Applied((f"set {observed.replicas} -> 0",))
        # The first step made (an autoscaler deleted, say), a poll reads no work...
        sleeping.append(threading.get_ident())
        assert polled.wait(5)
        throwaway.COUNTS["jobs"] = 2  # ...then work comes, and the recheck sees it
        reason = recheck()
        assert reason is not None
        if handed_over == "during":  # the poll's older read comes while the sleep is under way
            release.set()
            time.sleep(0.3)
        else:  # or once it has ended
            threading.Timer(0.3, release.set).start()
        raise SleepWithdrawn(group.name, f"the sleep stopped before its last step: {reason}")

    monkeypatch.setattr(throwaway.Tally, "read", held_read)
    monkeypatch.setattr(throwaway.MemoryGroup, "apply", apply)

    async def serve() -> None:
        runtime.serve(manifest)
        serving = asyncio.get_running_loop().create_task(runtime.run())
        try:
            async with asyncio.timeout(10):
                while not sleeps:
                    await asyncio.sleep(0.02)
            await asyncio.sleep(2.0)  # passes after the withdrawal, polls among them
        finally:
            runtime.stop()
            await serving

    asyncio.run(serve())
    assert polled.is_set()
    assert sleeps == ["sleep"]  # not put to sleep again on the poll's older read
    assert throwaway.REPLICAS["w"] >= 1
