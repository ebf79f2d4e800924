"""Which replica serves which policy: policies hash to a fixed number of slots, and the slots are
spread over the live members by rendezvous hashing with bounded loads.

Every member computes the same assignment from the same member set, so nobody coordinates it.
Plain rendezvous hashing moves only the slots of a member that joins or leaves, but its loads
are only as even as a binomial draw (±10 % at 10 members over 1,024 slots is one standard
deviation); the bound (no member holds more than its even share, rounded up) makes the spread
even and costs a few extra moves when members come and go.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Collection, Mapping

SLOTS = 1024  # enough for an even spread over tens of replicas; a claim set is 128 bytes

PolicyKey = tuple[str, str]  # (namespace, name), as the runtime's


def _hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def slot_of(key: PolicyKey, slots: int = SLOTS) -> int:
    """The slot of a policy: stable across replicas, restarts and versions."""
    namespace, name = key
    return _hash(f"{namespace}/{name}") % slots


def assign(members: Collection[str], slots: int = SLOTS) -> dict[int, str]:
    """Each slot's member. Slots are placed in order, each with its highest-ranked member that is
    still under the bound of ceil(slots / members)."""
    ordered = sorted(set(members))
    if not ordered:
        return {}
    bound = math.ceil(slots / len(ordered))
    load = dict.fromkeys(ordered, 0)
    owners: dict[int, str] = {}
    for slot in range(slots):
        ranked = sorted(ordered, key=lambda member: _hash(f"{slot}:{member}"), reverse=True)
        owner = next(member for member in ranked if load[member] < bound)
        load[owner] += 1
        owners[slot] = owner
    return owners


def owned(members: Collection[str], me: str, slots: int = SLOTS) -> frozenset[int]:
    """The slots `me` would serve among `members` (with `me` counted in)."""
    owners = assign({*members, me}, slots)
    return frozenset(slot for slot, owner in owners.items() if owner == me)


def spread(owners: Mapping[int, str], keys: Collection[PolicyKey]) -> dict[str, int]:
    """How many of `keys` each member serves under `owners`."""
    counts = dict.fromkeys(set(owners.values()), 0)
    slots = len(owners)
    for key in keys:
        counts[owners[slot_of(key, slots)]] += 1
    return counts
