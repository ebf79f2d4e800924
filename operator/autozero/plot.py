"""`autozero simulate --plot`: a picture of a simulation, because people would rather look.

Top: each metric the simulated groups read, as the engine saw it. Bottom: each group's replica
count as a step line, with a marker at every decision that changed it (wake, scale out, scale in,
sleep). matplotlib is an optional dependency (`pip install autozero[plot]`), imported here only.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from autozero.engine.decision import Action, Decision
from autozero.simulator import Trace

MARKERS = {
    Action.WAKE: ("^", "tab:green"),
    Action.SCALE_OUT: ("^", "tab:blue"),
    Action.SCALE_IN: ("v", "tab:orange"),
    Action.SLEEP: ("v", "tab:red"),
}


class PlotUnavailable(RuntimeError):
    """matplotlib is not installed."""


def plot_simulation(
    path: Path, trace: Trace, decisions: Sequence[Decision], metrics: Sequence[str], title: str
) -> None:
    """Write a PNG of `decisions` (every group's, every step) over `trace`'s `metrics`."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: no display, no GUI toolkit
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator
    except ImportError as exc:
        raise PlotUnavailable("--plot needs matplotlib: pip install 'autozero[plot]'") from exc

    figure, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(11, 6.5), layout="tight")
    for metric in metrics:
        points = trace.series(metric)
        times = [t for t, _ in points]
        line = top.step(times, [r.value for _, r in points], where="post", label=metric)
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
    top.set_ylabel("metric value")
    top.set_title(title)
    top.legend(loc="upper right")
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
    bottom.legend(loc="upper right")
    bottom.grid(alpha=0.3)
    figure.autofmt_xdate()
    figure.savefig(path, dpi=100)
    plt.close(figure)
