"""`autozero simulate --plot`: a picture of a simulation, because people would rather look.

Top: each metric the simulated groups read, as the engine saw it, with each rule's threshold or
target drawn as a dotted line while its profile is active (a `perInstance` threshold and an
`averageValue` target are drawn times the current count, in the metric's own units). Bottom:
each group's replica count as a step line, with a marker at every decision that changed it (wake,
scale out, scale in, sleep), and hatched the periods a native autoscaler owned the count.
Scheduled profiles are shaded on both. matplotlib is an optional dependency (`pip install
autozero[plot]`), imported here only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from autozero.engine.decision import Action, Decision, RuleVerdict
from autozero.engine.spec import Rule, TargetKind
from autozero.policy.model import Policy
from autozero.simulator import Trace
from autozero.targets.registry import handoff_of

MARKERS = {
    Action.WAKE: ("^", "tab:green"),
    Action.SCALE_OUT: ("^", "tab:blue"),
    Action.SCALE_IN: ("v", "tab:orange"),
    Action.SLEEP: ("v", "tab:red"),
}
PROFILE_COLOURS = ("tab:purple", "tab:olive", "tab:cyan", "tab:pink", "tab:brown")
#: Rule lines share their metric's colour; each rule of a profile gets its own dash pattern.
RULE_DASHES = (":", "-.", (0, (1, 4)), (0, (6, 2, 1, 2)))
HANDOFF_COLOUR = "tab:gray"


class PlotUnavailable(RuntimeError):
    """matplotlib is not installed."""


def _line_value(policy: Policy, decision: Decision, verdict: RuleVerdict) -> float:
    """Where a rule's threshold or target lies, in the units of the metric as plotted."""
    if verdict.target is not None:
        if verdict.target.kind is TargetKind.AVERAGE_VALUE:
            return verdict.target.value * max(1, decision.current)
        return verdict.target.value
    group = policy.group(decision.group).engine
    profile = next((p for p in group.profiles if p.name == decision.profile), None)
    rule = profile.rules[verdict.index] if profile is not None else None
    if isinstance(rule, Rule) and rule.per_instance:
        return verdict.threshold * max(1, decision.current)
    return verdict.threshold


def _label(verdict: RuleVerdict, decision: Decision) -> str:
    if verdict.target is not None:
        per = " per replica" if verdict.target.kind is TargetKind.AVERAGE_VALUE else ""
        return f"{decision.profile} rule {verdict.index}: target {verdict.target.value:g}{per}"
    symbol = verdict.operator.symbol if verdict.operator else "?"
    return f"{decision.profile} rule {verdict.index}: {symbol} {verdict.threshold:g}"


def _rule_lines(
    policy: Policy, decisions: Sequence[Decision], metrics: Sequence[str]
) -> dict[tuple[str, str, int], tuple[str, str, list[datetime], list[float]]]:
    """Per (group, profile, rule): its metric, its label, and its line over every decision time
    (NaN where the rule was not evaluated)."""
    times = sorted({d.at for d in decisions})
    position = {t: n for n, t in enumerate(times)}
    lines: dict[tuple[str, str, int], tuple[str, str, list[datetime], list[float]]] = {}
    for decision in decisions:
        if decision.current == 0:  # a wake's target rules: there is no current count to draw
            continue
        for verdict in decision.rules:
            if verdict.metric not in metrics:
                continue
            key = (decision.group, decision.profile, verdict.index)
            if key not in lines:
                lines[key] = (
                    verdict.metric,
                    _label(verdict, decision),
                    times,
                    [math.nan] * len(times),
                )
            lines[key][3][position[decision.at]] = _line_value(policy, decision, verdict)
    return lines


def _runs(points: Sequence[tuple[datetime, bool]]) -> list[tuple[datetime, datetime]]:
    """The spans during which the flag held, each to the next point (or the last one)."""
    spans: list[tuple[datetime, datetime]] = []
    start: datetime | None = None
    for moment, flag in points:
        if flag and start is None:
            start = moment
        elif not flag and start is not None:
            spans.append((start, moment))
            start = None
    if start is not None and points:
        spans.append((start, points[-1][0]))
    return spans


def _shade_profiles(axes: Sequence[Any], policy: Policy, decisions: Sequence[Decision]) -> None:
    scheduled = {p.name for g in policy.groups for p in g.engine.scheduled_profiles}
    colours: dict[str, str] = {}
    for name in sorted(scheduled):
        colours[name] = PROFILE_COLOURS[len(colours) % len(PROFILE_COLOURS)]
    labelled: set[str] = set()
    for group in dict.fromkeys(d.group for d in decisions):
        own = [d for d in decisions if d.group == group]
        for name, colour in colours.items():
            for start, end in _runs([(d.at, d.profile == name) for d in own]):
                for index, ax in enumerate(axes):
                    label = f"profile {name}" if index == 0 and name not in labelled else None
                    ax.axvspan(start, end, color=colour, alpha=0.12, lw=0, label=label)
                labelled.add(name)


def _mark_handoffs(ax: Any, policy: Policy, decisions: Sequence[Decision]) -> None:
    labelled = False
    for group in dict.fromkeys(d.group for d in decisions):
        handed = policy.group(group)
        if handed.handoff is None:
            continue
        who = handoff_of(handed.target).autoscaler
        own = [d for d in decisions if d.group == group]
        for start, end in _runs([(d.at, d.target > 0) for d in own]):
            ax.axvspan(
                start,
                end,
                facecolor="none",
                edgecolor=HANDOFF_COLOUR,
                hatch="//",
                lw=0,
                label=None if labelled else f"handed off ({who} owns the count)",
            )
            labelled = True


def plot_simulation(
    path: Path,
    trace: Trace,
    decisions: Sequence[Decision],
    metrics: Sequence[str],
    title: str,
    *,
    policy: Policy | None = None,
) -> None:
    """Write a PNG of `decisions` (every group's, every step) over `trace`'s `metrics`; with the
    `policy`, its rules' thresholds and targets, its scheduled profiles and its handoffs too."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: no display, no GUI toolkit
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator
    except ImportError as exc:
        raise PlotUnavailable("--plot needs matplotlib: pip install 'autozero[plot]'") from exc

    figure, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(11, 6.5), layout="tight")
    colours: dict[str, str] = {}
    for metric in metrics:
        points = trace.series(metric)
        times = [t for t, _ in points]
        line = top.step(times, [r.value for _, r in points], where="post", label=metric)
        colours[metric] = line[0].get_color()
        in_flight = [r.in_flight for _, r in points]
        if any(v is not None for v in in_flight):
            values = [v or 0.0 for v in in_flight]
            top.step(
                times,
                values,
                where="post",
                linestyle="--",
                color=line[0].get_color(),
                label=f"{metric} in flight",
            )
    if policy is not None:
        lines = _rule_lines(policy, decisions, metrics)
        for (_, _, index), (metric, name, times, values) in lines.items():
            top.step(
                times,
                values,
                where="post",
                linestyle=RULE_DASHES[index % len(RULE_DASHES)],
                linewidth=1.2,
                color=colours.get(metric),
                label=name,
            )
        _shade_profiles((top, bottom), policy, decisions)
        _mark_handoffs(bottom, policy, decisions)
    top.set_ylabel("metric value")
    top.set_title(title)
    top.legend(loc="upper right", fontsize="small")
    top.grid(alpha=0.3)

    groups = list(dict.fromkeys(d.group for d in decisions))
    for group in groups:
        own = [d for d in decisions if d.group == group]
        bottom.step([d.at for d in own], [d.target for d in own], where="post", label=group)
    seen: set[Action] = set()
    for decision in decisions:
        if decision.action in MARKERS and decision.target != decision.current:
            marker, colour = MARKERS[decision.action]
            label = decision.action.value if decision.action not in seen else None
            seen.add(decision.action)
            bottom.scatter(decision.at, decision.target, marker=marker, c=colour, label=label)
    bottom.yaxis.set_major_locator(MaxNLocator(integer=True))
    bottom.set_ylabel("replicas")
    bottom.set_xlabel("time (UTC)")
    bottom.legend(loc="upper right", fontsize="small")
    bottom.grid(alpha=0.3)
    figure.autofmt_xdate()
    figure.savefig(path, dpi=100)
    plt.close(figure)
