"""Engine throughput and memory: decisions per second on one core, and the state of 10,000 groups.

Run: .venv/bin/python benchmarks/engine_bench.py [--seconds 5] [--json]
Each group reads two metrics every 15 s; rules use 1-minute grains over 5-minute windows, so a
full window holds 20 samples per metric. Decisions are timed with the windows full and sliding.
Also timed: the same with an office-hours recurrence (a profile boundary to find every
decision), `record`, the cheap path for a read that needs no decision, and target rules (the
HPA's forms: `averageValue` on the backlog, `value` on the CPU), alone, beside threshold rules
and under the HPA's default behavior. An engine without target rules (an older checkout, for a
before/after run) skips those rows.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import tracemalloc
from datetime import UTC, datetime, timedelta

from autozero.engine.decide import decide, record
from autozero.engine.readings import Reading
from autozero.engine.spec import (
    ActionType,
    Activation,
    Capacity,
    Direction,
    GroupSpec,
    Operator,
    Profile,
    Recurrence,
    Rule,
    ScaleAction,
    Statistic,
    TimeAggregation,
)
from autozero.engine.state import GroupState

try:  # target rules and behavior: absent from an engine older than issue #16
    from autozero.engine.spec import (
        Behavior,
        PolicyType,
        RatePolicy,
        ScalingRules,
        SelectPolicy,
        TargetKind,
        TargetRule,
        TrackingTarget,
    )

    TRACKING = True
except ImportError:
    TRACKING = False

STEP = timedelta(seconds=15)
T0 = datetime(2026, 11, 23, tzinfo=UTC)


OFFICE_HOURS = Recurrence(
    "Europe/Paris", frozenset(range(5)), (8,), (0,), duration=timedelta(hours=10)
)


def _target_rule(n: int) -> object:
    backlog = n % 2 == 0
    return TargetRule(
        metric="backlog" if backlog else "cpu",
        time_grain=timedelta(minutes=1),
        statistic=Statistic.AVERAGE,
        time_window=timedelta(minutes=5),
        time_aggregation=TimeAggregation.AVERAGE,
        target=TrackingTarget(
            TargetKind.AVERAGE_VALUE if backlog else TargetKind.VALUE,
            18.0 if backlog else 42.0,  # near what 3 replicas see: within tolerance, a hold
        ),
    )


def _hpa_default() -> object:
    return Behavior(
        scale_up=ScalingRules(
            timedelta(0),
            SelectPolicy.MAX,
            (
                RatePolicy(PolicyType.PERCENT, 100, timedelta(seconds=15)),
                RatePolicy(PolicyType.PODS, 4, timedelta(seconds=15)),
            ),
        ),
        scale_down=ScalingRules(
            timedelta(minutes=5),
            SelectPolicy.MAX,
            (RatePolicy(PolicyType.PERCENT, 100, timedelta(seconds=15)),),
        ),
    )


def _no_stabilization() -> object:
    return Behavior(scale_down=ScalingRules(timedelta(0)))


def make_spec(
    rule_count: int,
    *,
    scheduled: bool = False,
    targets: int = 0,
    behavior: bool = False,
    stabilized: bool = True,
) -> GroupSpec:
    """`rule_count` rules, the first `targets` of them target rules; `behavior`: the HPA's
    defaults; not `stabilized`: `behavior.scaleDown` with a 0s window (no stabilization)."""
    rules: list[object] = [_target_rule(n) for n in range(targets)]
    for n in range(rule_count - targets):
        increase = n % 2 == 0
        rules.append(
            Rule(
                metric="backlog" if n % 4 < 2 else "cpu",
                time_grain=timedelta(minutes=1),
                statistic=Statistic.AVERAGE,
                time_window=timedelta(minutes=5),
                time_aggregation=TimeAggregation.MAXIMUM if increase else TimeAggregation.AVERAGE,
                operator=Operator.GREATER_THAN if increase else Operator.LESS_THAN,
                threshold=1000 + n if increase else -1 - n,  # never fire: measure steady state
                action=ScaleAction(
                    Direction.INCREASE if increase else Direction.DECREASE,
                    ActionType.CHANGE_COUNT,
                    1,
                    timedelta(minutes=5),
                ),
            )
        )
    profiles = (Profile("default", rules=tuple(rules)),)  # type: ignore[arg-type]
    if scheduled:
        office = Profile("office", tuple(rules), Capacity(1, 20, 2), recurrence=OFFICE_HOURS)  # type: ignore[arg-type]
        profiles = (office, *profiles)
    extra = {"behavior": _hpa_default()} if behavior else {}
    if not stabilized:
        extra = {"behavior": _no_stabilization()}
    return GroupSpec(
        name="bench",
        capacity=Capacity(0, 20, 1),
        profiles=profiles,
        activation=Activation("backlog", timedelta(minutes=30)),
        **extra,  # type: ignore[arg-type]
    )


def reads(step: int) -> dict[str, Reading]:
    return {
        "backlog": Reading(float(50 + step % 7), pending=float(50 + step % 7), in_flight=2.0),
        "cpu": Reading(float(40 + step % 5)),
    }


def warm_state(spec: GroupSpec) -> tuple[GroupState, int]:
    state = GroupState()
    for step in range(25):
        state = decide(spec, state, reads(step), now=T0 + step * STEP, current=3).state
    return state, 25


def decisions_per_second(
    rule_count: int,
    seconds: float,
    *,
    scheduled: bool = False,
    targets: int = 0,
    behavior: bool = False,
    stabilized: bool = True,
) -> float:
    spec = make_spec(
        rule_count, scheduled=scheduled, targets=targets, behavior=behavior, stabilized=stabilized
    )
    state, step = warm_state(spec)
    observations = [reads(n) for n in range(64)]
    done = 0
    start = time.perf_counter()
    until = start + seconds
    while time.perf_counter() < until:
        for _ in range(200):
            now = T0 + step * STEP
            state = decide(spec, state, observations[step % 64], now=now, current=3).state
            step += 1
        done += 200
    return done / (time.perf_counter() - start)


def records_per_second(rule_count: int, seconds: float) -> float:
    """`record`: what a read of a group that needs no decision costs (asleep, say)."""
    spec = make_spec(rule_count)
    state, step = warm_state(spec)
    observations = [reads(n) for n in range(64)]
    done = 0
    start = time.perf_counter()
    until = start + seconds
    while time.perf_counter() < until:
        for _ in range(200):
            state = record(spec, state, observations[step % 64], T0 + step * STEP)
            step += 1
        done += 200
    return done / (time.perf_counter() - start)


def memory_for_groups(groups: int) -> dict[str, float]:
    spec = make_spec(4)
    tracemalloc.start()
    states = []
    for _ in range(groups):
        state, _ = warm_state(spec)
        states.append(state)
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"groups": groups, "retainedMiB": current / 2**20, "peakMiB": peak / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--groups", type=int, default=10_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results: dict[str, object] = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "decisionsPerSecond": {
            str(n): round(decisions_per_second(n, args.seconds)) for n in (1, 4, 20)
        },
        "scheduledDecisionsPerSecond": {
            "4": round(decisions_per_second(4, args.seconds, scheduled=True))
        },
        "recordsPerSecond": {"4": round(records_per_second(4, args.seconds))},
        "memory": memory_for_groups(args.groups),
    }
    if TRACKING:
        results["targetDecisionsPerSecond"] = {
            "4 target rules": round(decisions_per_second(4, args.seconds, targets=4)),
            "4 target rules, no stabilization": round(
                decisions_per_second(4, args.seconds, targets=4, stabilized=False)
            ),
            "2 threshold and 2 target rules": round(
                decisions_per_second(4, args.seconds, targets=2)
            ),
            "4 target rules and the HPA's default behavior": round(
                decisions_per_second(4, args.seconds, targets=4, behavior=True)
            ),
            "20 target rules": round(decisions_per_second(20, args.seconds, targets=20)),
        }
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"python {results['python']} on {results['machine']}, one core")
    for rules, rate in results["decisionsPerSecond"].items():  # type: ignore[attr-defined]
        print(f"  {rules:>2} rules: {rate:>8,} decisions/s")
    for rules, rate in results["scheduledDecisionsPerSecond"].items():  # type: ignore[attr-defined]
        print(f"  {rules:>2} rules and an office-hours recurrence: {rate:>8,} decisions/s")
    for rules, rate in results["recordsPerSecond"].items():  # type: ignore[attr-defined]
        print(f"  {rules:>2} rules, record only (a read that needs no decision): {rate:>8,}/s")
    for rules, rate in results.get("targetDecisionsPerSecond", {}).items():  # type: ignore[attr-defined]
        print(f"  {rules}: {rate:>8,} decisions/s")
    memory = results["memory"]
    print(
        f"  state of {memory['groups']:,} groups (2 metrics, full 5-minute windows): "  # type: ignore[index]
        f"{memory['retainedMiB']:.1f} MiB retained, {memory['peakMiB']:.1f} MiB peak"  # type: ignore[index]
    )


if __name__ == "__main__":
    main()
