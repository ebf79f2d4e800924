"""The two fleets of the KEDA comparison: N ScaledObjects for KEDA, N ScalingPolicies for autozero.

Each member is a Deployment at 0 driven by its own Redis list `jobs:<name>`. autozero's policies are
what `autozero convert keda` prints for the same ScaledObjects (pointed at autozero's own Redis),
so "the equivalent policy" is the project's own answer, not one written for the benchmark; the
only edit is `configureNotifications` for the push mode, which KEDA has no counterpart for.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from autozero.convert.keda import Source, convert

KEDA_NAMESPACE = "keda-fleet"
AUTOZERO_NAMESPACE = "az-fleet"
MAXIMUM = 3  # maxReplicaCount / capacity.maximum: only 0 <-> 1 is exercised here
LIST_LENGTH = 5  # KEDA's default listLength (one replica per 5 items); carried by the converter
STREAM_GROUP = "workers"  # the consumer group of the stream rows


@dataclass(frozen=True)
class Mode:
    """How one operator's fleet is configured during a phase."""

    polling: int  # pollingInterval, seconds
    push: bool = False  # autozero only: configureNotifications (keyspace notifications)

    def label(self, operator: str) -> str:
        if operator == "autozero" and self.push:
            return f"autozero push (keyspace notifications; polls every {self.polling} s)"
        return f"{operator} pollingInterval {self.polling} s"


@dataclass(frozen=True)
class Phase:
    """Both fleets configured at once; the operators with `trials` are timed in it."""

    name: str
    keda: Mode
    autozero: Mode
    keda_trials: bool
    autozero_trials: bool


PHASES = (
    Phase("poll at each one's default interval", Mode(30), Mode(15), True, True),
    Phase("poll every second", Mode(1), Mode(1), True, True),
    Phase("autozero push", Mode(30), Mode(15, push=True), False, True),
)


def member(index: int) -> str:
    return f"w-{index}"


def list_key(name: str) -> str:
    """The Redis list that drives member `name` (each member its own list)."""
    return f"jobs:{name}"


def stream_key(name: str) -> str:
    """The Redis stream that drives member `name` in the stream rows."""
    return f"stream:{name}"


def stream_scaled_object(
    name: str, namespace: str, redis_address: str, *, polling: int, cooldown: int
) -> dict[str, Any]:
    """A ScaledObject with a `redis-streams` trigger on a consumer group, in KEDA's default mode
    for one (pendingEntriesCount: the entries delivered and not acknowledged)."""
    scaled = scaled_object(name, namespace, redis_address, polling=polling, cooldown=cooldown)
    scaled["spec"]["triggers"] = [
        {
            "type": "redis-streams",
            "metadata": {
                "address": redis_address,
                "stream": stream_key(name),
                "consumerGroup": STREAM_GROUP,
                "pendingEntriesCount": str(LIST_LENGTH),
            },
        }
    ]
    return scaled


def stream_fleets(
    names: list[str],
    keda_address: str,
    autozero_address: str,
    keda: Mode,
    autozero: Mode,
    cooldown: int,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Both sides' stream members: KEDA's ScaledObjects and what `autozero convert keda` prints
    for the same objects (pointed at autozero's Redis)."""
    return (
        [
            stream_scaled_object(
                n, KEDA_NAMESPACE, keda_address, polling=keda.polling, cooldown=cooldown
            )
            for n in names
        ],
        [
            converted_policy(
                stream_scaled_object(
                    n,
                    AUTOZERO_NAMESPACE,
                    autozero_address,
                    polling=autozero.polling,
                    cooldown=cooldown,
                ),
                push=autozero.push,
            )
            for n in names
        ],
    )


def scaled_object(
    name: str,
    namespace: str,
    redis_address: str,
    *,
    polling: int,
    cooldown: int,
    fallback: dict[str, int] | None = None,
) -> dict[str, Any]:
    """A ScaledObject as KEDA's documentation shows it: a `redis` list trigger, min 0."""
    spec: dict[str, Any] = {
        "scaleTargetRef": {"name": name},
        "pollingInterval": polling,
        "cooldownPeriod": cooldown,
        "minReplicaCount": 0,
        "maxReplicaCount": MAXIMUM,
        "triggers": [
            {
                "type": "redis",
                "metadata": {
                    "address": redis_address,
                    "listName": list_key(name),
                    "listLength": str(LIST_LENGTH),
                },
            }
        ],
    }
    if fallback is not None:
        spec["fallback"] = fallback
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def converted_policy(scaled: dict[str, Any], *, push: bool) -> dict[str, Any]:
    """What `autozero convert keda` prints for `scaled`; keyspace notifications on if `push`."""
    (result,) = convert([Source(scaled)])
    if result.policy is None:
        raise ValueError(f"autozero convert keda refused {result.object}: {result.notes}")
    policy = copy.deepcopy(result.policy)
    if push:
        for metric in policy["spec"]["metrics"]:
            metric["redis"]["configureNotifications"] = True
    return policy


def keda_fleet(
    names: list[str],
    redis_address: str,
    mode: Mode,
    cooldown: int,
    fallback: dict[str, int] | None = None,
) -> list[dict[str, Any]]:
    return [
        scaled_object(
            name,
            KEDA_NAMESPACE,
            redis_address,
            polling=mode.polling,
            cooldown=cooldown,
            fallback=fallback,
        )
        for name in names
    ]


def autozero_fleet(
    names: list[str],
    redis_address: str,
    mode: Mode,
    cooldown: int,
    fallback: dict[str, int] | None = None,
) -> list[dict[str, Any]]:
    """The converted policy of the first member, repeated with each member's names (converting
    ten thousand identical objects one by one says nothing more)."""
    if not names:
        return []
    template = converted_policy(
        scaled_object(
            names[0],
            AUTOZERO_NAMESPACE,
            redis_address,
            polling=mode.polling,
            cooldown=cooldown,
            fallback=fallback,
        ),
        push=mode.push,
    )
    fleet = []
    for name in names:
        policy = copy.deepcopy(template)
        policy["metadata"]["name"] = name
        spec = policy["spec"]
        (metric,) = spec["metrics"]
        metric["redis"]["key"] = list_key(name)
        (group,) = spec["groups"]
        group["name"] = name
        group["target"]["kubernetes"]["name"] = name
        fleet.append(policy)
    return fleet
