"""The runtime's timer heap: one timer per (policy, kind), replaced in place, fired once."""

from __future__ import annotations

from autozero.runtime.timers import TimerKind, Timers

POLL, DEADLINE = TimerKind.POLL, TimerKind.DEADLINE


def test_fires_what_is_due_in_order_and_each_once() -> None:
    timers: Timers[str] = Timers()
    timers.set("b", POLL, 20.0)
    timers.set("a", POLL, 10.0)
    timers.set("a", DEADLINE, 15.0)
    assert timers.next_due() == 10.0
    assert timers.pop_due(15.0) == [("a", POLL), ("a", DEADLINE)]
    assert timers.pop_due(15.0) == []
    assert timers.next_due() == 20.0
    assert len(timers) == 1


def test_setting_again_replaces_the_earlier_setting() -> None:
    timers: Timers[str] = Timers()
    timers.set("a", DEADLINE, 10.0)
    timers.set("a", DEADLINE, 30.0)
    assert timers.pop_due(20.0) == []  # the 10.0 entry is stale
    assert timers.next_due() == 30.0
    assert timers.pop_due(30.0) == [("a", DEADLINE)]


def test_set_earlier_keeps_the_sooner_time() -> None:
    timers: Timers[str] = Timers()
    timers.set_earlier("a", POLL, 30.0)
    timers.set_earlier("a", POLL, 40.0)
    assert timers.get("a", POLL) == 30.0
    timers.set_earlier("a", POLL, 5.0)
    assert timers.get("a", POLL) == 5.0


def test_cancel_one_kind_or_all() -> None:
    timers: Timers[str] = Timers()
    timers.set("a", POLL, 1.0)
    timers.set("a", DEADLINE, 2.0)
    timers.set("b", POLL, 3.0)
    timers.cancel("a", POLL)
    assert timers.pop_due(2.5) == [("a", DEADLINE)]
    timers.set("a", POLL, 4.0)
    timers.cancel("a")
    assert timers.next_due() == 3.0
    assert timers.pop_due(10.0) == [("b", POLL)]
    assert timers.next_due() is None
