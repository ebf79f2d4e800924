"""The fencing rule and the hand-over protocol, as pure functions of what a replica knows.

Each replica holds its own Lease and publishes in it the slots it claims. It *serves* a slot only
while:
- its own lease is fresh: renewed (the successful renewal *sent*, by its own monotonic clock)
  less than `renew_deadline` = lease duration minus a clock-skew allowance ago; and
- the slot is its own under the live member set, and its claim on it was already in its lease
  when it last listed the leases, and no other live member claimed it in that list.

Another member's lease is live until `lease` seconds after this replica last *saw it change*
(its resourceVersion), by this replica's clock: clocks of different machines are never compared,
only the rate at which each one runs (client-go's leader election reasons the same way).

Why no slot is ever served twice:
- A slot changes hands only by a claim check: publish the claim, then list; serve only if no
  other live claim shows. The apiserver's reads are linearizable, so of two replicas that both
  publish then list, the second lister sees the first one's claim: at most one serves.
- A server keeps its claim published while it serves; it drops a slot (stops serving, waits for
  the pass under way) *before* publishing the claim set without it.
- A server that cannot renew stops at `renew_deadline` after its last renewal was sent; the
  others ignore its claims only `lease` seconds after they saw that renewal, which was after it
  was sent. The allowance (lease - renew deadline) covers clock rates and the last write under
  way; a takeover also needs one more claim check (one renew period) on top.
- A clean shutdown stops serving, then deletes its lease: the claims go with it at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from autozero.sharding.ring import SLOTS, owned


@dataclass(frozen=True)
class Timings:
    lease: float = 15.0  # seconds a lease holds without renewal, as the others count
    renew_deadline: float = 10.0  # a replica serves only this long after its last renewal
    period: float = 2.0  # how often a replica lists the leases and renews its own

    def __post_init__(self) -> None:
        if not 0 < self.period < self.renew_deadline < self.lease:
            raise ValueError(
                f"sharding timings need 0 < period ({self.period:g}s) < renew deadline "
                f"({self.renew_deadline:g}s) < lease ({self.lease:g}s)"
            )

    @property
    def skew_allowance(self) -> float:
        return self.lease - self.renew_deadline


@dataclass(frozen=True)
class Peer:
    """Another member's lease as this replica last listed it."""

    identity: str
    claims: frozenset[int]
    seen_changed: float  # this replica's monotonic time when the lease last changed
    released: bool = False  # holder cleared: a clean shutdown
    version: str = ""  # the lease's resourceVersion: any change to it is a renewal seen
    name: str = ""  # the Lease's name

    def live(self, now: float, timings: Timings) -> bool:
        return not self.released and now - self.seen_changed < timings.lease


@dataclass(frozen=True)
class Listed:
    """A member's lease as one list returned it."""

    identity: str
    claims: frozenset[int]
    version: str
    released: bool = False
    name: str = ""


def observe(before: Mapping[str, Peer], listed: Iterable[Listed], now: float) -> dict[str, Peer]:
    """The peers after a list: a lease whose version changed (or first seen) was renewed `now`,
    by our clock; one unchanged keeps the time it was last seen changing. A lease missing from
    the list is gone (deleted on a clean shutdown)."""
    peers: dict[str, Peer] = {}
    for lease in listed:
        known = before.get(lease.identity)
        seen = known.seen_changed if known is not None and known.version == lease.version else now
        peers[lease.identity] = Peer(
            lease.identity,
            lease.claims,
            seen,
            released=lease.released,
            version=lease.version,
            name=lease.name,
        )
    return peers


def stale(peers: Mapping[str, Peer], now: float, timings: Timings) -> list[Peer]:
    """Leases silent for a lease time (a replica killed, or gone with its Pod): removed as soon
    as their claims stop counting, since a replica that starts later cannot tell how old a lease
    it first sees is and counts it live a lease time more, while the others share its slots out:
    such slots are nobody's meanwhile (chaos campaign, with two lease times: a policy unserved for
    29 s after a kill and two restarts). Removing them changes nobody's rights:
    their holder stopped writing at its renew deadline, and the delete is refused if it renewed
    meanwhile (it carries the version seen)."""
    return [
        peer for peer in peers.values() if peer.released or now - peer.seen_changed >= timings.lease
    ]


def fresh(renewed: float | None, now: float, timings: Timings) -> bool:
    """Our own lease: renewed (the request sent) within the renew deadline."""
    return renewed is not None and now - renewed < timings.renew_deadline


def may_serve(
    slot: int, serving: frozenset[int], renewed: float | None, now: float, timings: Timings
) -> bool:
    """The fencing rule, checked before every write."""
    return slot in serving and fresh(renewed, now, timings)


@dataclass(frozen=True)
class Step:
    """What one round of the protocol changes: stop serving `release` (before publishing),
    start serving `acquire`, then publish `claims` (what is served, and `pending`: ours by the
    member set, not served yet: another live member still claims it, or our claim was not yet
    in the leases we listed)."""

    release: frozenset[int]
    acquire: frozenset[int]
    claims: frozenset[int]
    pending: frozenset[int]
    free: frozenset[int] = frozenset()  # pending that no other live member claims

    def serving(self, before: frozenset[int]) -> frozenset[int]:
        return (before - self.release) | self.acquire


def plan(
    me: str,
    serving: frozenset[int],
    published: frozenset[int],
    peers: Mapping[str, Peer],
    now: float,
    renewed: float | None,
    timings: Timings,
    slots: int = SLOTS,
) -> Step:
    """One round, from a fresh list of the leases: `published` are our claims as that list showed
    them, `serving` what we serve now, `peers` the other members' leases. A replica whose lease
    is not fresh serves nothing (it may still claim: a claim alone serves nothing)."""
    live = {peer.identity: peer for peer in peers.values() if peer.live(now, timings)}
    mine = owned(live, me, slots)
    if not fresh(renewed, now, timings):
        return Step(release=serving, acquire=frozenset(), claims=mine, pending=mine)
    taken = frozenset(slot for peer in live.values() for slot in peer.claims)
    release = serving - mine
    acquire = (published & mine) - taken - serving
    kept = (serving - release) | acquire
    pending = mine - kept
    return Step(
        release=release,
        acquire=acquire,
        claims=kept | pending,
        pending=pending,
        free=pending - taken,
    )
