"""Consistent hashing of policies over replicas: an even spread, and few moves on a change."""

from __future__ import annotations

import pytest
from autozero.sharding.ring import SLOTS, assign, owned, slot_of, spread

KEYS = [(f"team-{n % 37}", f"policy-{n}") for n in range(30_000)]


@pytest.mark.parametrize("members", [pytest.param(3, id="3-members"), pytest.param(10, id="10")])
def test_policies_spread_within_ten_percent(members: int) -> None:
    counts = spread(assign([f"replica-{n}" for n in range(members)]), KEYS)
    even = len(KEYS) / members
    assert len(counts) == members
    assert all(abs(count - even) <= 0.1 * even for count in counts.values()), counts


@pytest.mark.parametrize(
    ("before", "after", "n"),
    [
        pytest.param(3, 4, 4, id="join-3-to-4"),
        pytest.param(4, 3, 4, id="leave-4-to-3"),
        pytest.param(10, 11, 11, id="join-10-to-11"),
        pytest.param(11, 10, 11, id="leave-11-to-10"),
    ],
)
def test_a_change_moves_about_one_nth(before: int, after: int, n: int) -> None:
    """Plain rendezvous hashing would move exactly 1/N; the load bound costs a little more."""
    old = assign([f"replica-{i}" for i in range(before)])
    new = assign([f"replica-{i}" for i in range(after)])
    moved = sum(old[slot_of(key)] != new[slot_of(key)] for key in KEYS) / len(KEYS)
    assert 0.8 / n <= moved <= 1.5 / n, moved


@pytest.mark.parametrize("members", [3, 4, 10, 11])
def test_a_leaving_member_moves_few_of_the_others_slots(members: int) -> None:
    """Whichever member leaves, the others keep at least 97 % of their slots: the load bound's
    extra moves (plain rendezvous hashing would move none of them)."""
    everyone = [f"replica-{i}" for i in range(members)]
    old = assign(everyone)
    for gone in everyone:
        new = assign([member for member in everyone if member != gone])
        kept = [slot for slot, owner in old.items() if owner != gone]
        moved = sum(old[slot] != new[slot] for slot in kept) / len(kept)
        assert moved <= 0.03, (gone, moved)


def test_every_member_computes_the_same_assignment() -> None:
    members = ["b", "a", "c"]
    assert assign(members) == assign(members[::-1]) == assign({*members})
    assert sorted(s for m in members for s in owned(members, m)) == list(range(SLOTS))


def test_a_slot_is_stable_and_in_range() -> None:
    assert slot_of(("default", "queue-workers")) == slot_of(("default", "queue-workers"))
    assert {slot_of(key) for key in KEYS} <= set(range(SLOTS))
    assert assign([]) == {}
