"""The fencing rule and the hand-over protocol, as tables of lease states and times."""

from __future__ import annotations

import pytest
from autozero.sharding.fence import Listed, Peer, Timings, fresh, may_serve, observe, plan, stale
from autozero.sharding.ring import owned

T = Timings(lease=15.0, renew_deadline=10.0, period=2.0)
S = frozenset  # a set of slots


@pytest.mark.parametrize(
    ("slot", "serving", "renewed", "now", "allowed"),
    [
        pytest.param(1, S({1}), 100.0, 100.0, True, id="just-renewed"),
        pytest.param(1, S({1}), 100.0, 109.9, True, id="within-renew-deadline"),
        pytest.param(1, S({1}), 100.0, 110.0, False, id="at-renew-deadline"),
        pytest.param(1, S({1}), 100.0, 114.0, False, id="before-others-could-take-it"),
        pytest.param(1, S({1}), None, 100.0, False, id="never-renewed"),
        pytest.param(2, S({1}), 100.0, 101.0, False, id="not-our-slot"),
    ],
)
def test_the_fencing_rule(
    slot: int, serving: frozenset[int], renewed: float | None, now: float, allowed: bool
) -> None:
    assert may_serve(slot, serving, renewed, now, T) is allowed


def test_we_stop_before_anyone_may_take_over() -> None:
    """The last renewal sent at 100; another replica saw it no earlier. It ignores our claims
    from 115 on its clock; we stopped at 110 on ours: the skew allowance is 5 s."""
    assert T.skew_allowance == 5.0
    assert not fresh(100.0, 100.0 + T.renew_deadline, T)
    assert Peer("us", S({1}), seen_changed=100.0).live(114.9, T)
    assert not Peer("us", S({1}), seen_changed=100.0).live(115.0, T)


@pytest.mark.parametrize(
    ("peer", "now", "live"),
    [
        pytest.param(Peer("b", S(), 100.0), 114.9, True, id="seen-changed-14.9s-ago"),
        pytest.param(Peer("b", S(), 100.0), 115.0, False, id="expired"),
        pytest.param(Peer("b", S(), 100.0, released=True), 100.0, False, id="released"),
    ],
)
def test_a_peer_is_live_until_its_lease_runs_out_by_our_clock(
    peer: Peer, now: float, live: bool
) -> None:
    assert peer.live(now, T) is live


def test_timings_must_leave_room() -> None:
    with pytest.raises(ValueError, match="renew deadline"):
        Timings(lease=10.0, renew_deadline=10.0, period=2.0)


# The protocol, with two members "a" and "b" and 8 slots.
SLOTS = 8
A, B = owned({"b"}, "a", SLOTS), owned({"a"}, "b", SLOTS)
ALL = S(range(SLOTS))


def peer(claims: frozenset[int], seen: float = 100.0, **kw: bool) -> dict[str, Peer]:
    return {"b": Peer("b", claims, seen, **kw)}


def test_a_claim_is_served_only_once_it_was_listed_and_nobody_else_claims_it() -> None:
    assert A
    assert B
    assert A | B == ALL
    assert not A & B
    first = plan("a", S(), S(), peer(S()), 100.0, 99.0, T, SLOTS)
    assert (first.acquire, first.claims) == (S(), A)  # claimed, not served: not yet listed
    assert first.free == A  # nobody else claims them: the next list may come soon
    second = plan("a", S(), A, peer(S()), 102.0, 100.0, T, SLOTS)
    assert (second.acquire, second.claims, second.pending) == (A, A, S())


def test_a_slot_another_live_member_claims_waits() -> None:
    """b still serves everything (it was alone): a claims its share but waits."""
    step = plan("a", S(), A, peer(ALL), 102.0, 100.0, T, SLOTS)
    assert (step.acquire, step.claims, step.pending) == (S(), A, A)
    assert step.free == S()


def test_the_old_owner_releases_what_moved_before_it_publishes() -> None:
    """b served everything; a joined: b stops serving a's share and claims only its own."""
    step = plan("b", ALL, ALL, {"a": Peer("a", A, 100.0)}, 102.0, 100.0, T, SLOTS)
    assert (step.release, step.acquire, step.claims) == (A, S(), B)
    assert step.serving(ALL) == B


@pytest.mark.parametrize(
    ("others", "now", "acquired"),
    [
        pytest.param(peer(ALL, seen=100.0), 110.0, S(), id="owner-lease-still-live"),
        pytest.param(peer(ALL, seen=100.0), 115.0, ALL, id="owner-lease-expired"),
        pytest.param(peer(ALL, seen=110.0, released=True), 110.0, ALL, id="owner-released"),
        pytest.param({}, 110.0, ALL, id="owner-lease-deleted"),
    ],
)
def test_a_leaving_members_slots_move_only_once_its_lease_is_gone(
    others: dict[str, Peer], now: float, acquired: frozenset[int]
) -> None:
    step = plan("a", A, ALL, others, now, now - 1.0, T, SLOTS)
    assert step.acquire == acquired - A
    assert step.serving(A) == A | acquired


def test_a_replica_that_cannot_renew_serves_nothing() -> None:
    step = plan("a", A, A, peer(B), 110.0, 100.0, T, SLOTS)
    assert (step.release, step.acquire) == (A, S())
    assert step.serving(A) == S()


def test_two_claimants_never_both_serve() -> None:
    """a and b start together; b has not seen a yet and claims every slot, a claims its share.
    Each then lists the other's claim: b serves only its own share, a waits for b to let go."""
    b_alone = plan("b", S(), S(), {}, 100.0, 99.0, T, SLOTS)
    assert b_alone.claims == ALL
    a_claims = plan("a", S(), S(), peer(S()), 100.0, 99.0, T, SLOTS).claims
    assert a_claims == A
    a = plan("a", S(), A, peer(ALL, seen=101.0), 102.0, 101.0, T, SLOTS)
    b = plan("b", S(), ALL, {"a": Peer("a", A, 101.0)}, 102.0, 101.0, T, SLOTS)
    assert (a.acquire, b.acquire) == (S(), B)
    assert b.claims == B  # published next: a sees its share free
    a = plan("a", S(), A, peer(B, seen=103.0), 104.0, 103.0, T, SLOTS)
    assert a.acquire == A
    assert not a.serving(S()) & b.serving(S())


def test_a_peer_counts_as_renewed_when_we_see_its_lease_change_not_by_its_clock() -> None:
    first = observe({}, [Listed("b", S({1}), "10")], now=50.0)
    assert first["b"].seen_changed == 50.0  # first seen: as if renewed now (the safe side)
    same = observe(first, [Listed("b", S({1}), "10")], now=70.0)
    assert same["b"].seen_changed == 50.0
    assert not same["b"].live(70.0, T)
    renewed = observe(same, [Listed("b", S({1}), "11")], now=72.0)
    assert renewed["b"].live(72.0, T)
    assert observe(renewed, [], now=73.0) == {}  # deleted: gone at once


@pytest.mark.parametrize(
    ("peer", "now", "removed"),
    [
        pytest.param(Peer("b", S(), 100.0), 114.9, False, id="live"),
        pytest.param(Peer("b", S(), 100.0), 115.0, True, id="silent-a-lease-time"),
        pytest.param(Peer("b", S(), 100.0, released=True), 100.0, True, id="released"),
    ],
)
def test_silent_leases_are_removed_once_they_stop_counting(
    peer: Peer, now: float, removed: bool
) -> None:
    assert (stale({"b": peer}, now, T) == [peer]) is removed
    assert removed is not peer.live(now, T)  # removed exactly when its claims stop counting
