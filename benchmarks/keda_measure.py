"""The arithmetic of the KEDA comparison, apart from the servers: per-minute rates, Redis command
deltas, a replica timeline in words, the table's cells. Kept pure so that it is tested cheaply."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Mapping

from procstats import percentile


def commandstats_calls(info: Mapping[str, object]) -> dict[str, int]:
    """`INFO commandstats` as redis-py parses it ({"cmdstat_llen": {"calls": 3, ...}}) -> calls
    per command, lower case ("config|get" for a subcommand)."""
    calls: dict[str, int] = {}
    for key, value in info.items():
        if not key.startswith("cmdstat_") or not isinstance(value, Mapping):
            raise ValueError(f"not an INFO commandstats entry: {key}={value!r}")
        calls[key.removeprefix("cmdstat_").lower()] = int(value["calls"])
    return calls


def commands_per_minute(
    before: Mapping[str, int], after: Mapping[str, int], seconds: float, *, own_info: int = 1
) -> dict[str, float]:
    """Commands each kind the clients sent in a window of `seconds`, per minute. The reader's own
    `INFO` (`own_info` calls: the one that took `before`; a command is counted after it runs)
    is not the clients'."""
    if seconds <= 0:
        raise ValueError(f"a window of {seconds} s")
    delta = Counter({k: v - before.get(k, 0) for k, v in after.items()})
    delta["info"] -= own_info
    if delta["info"] < 0 or any(v < 0 for v in delta.values()):
        raise ValueError(f"counters went back (was the server restarted?): {dict(delta)}")
    return {k: v * 60 / seconds for k, v in sorted(delta.items()) if v}


def per_minute(counts: Mapping[tuple[str, ...], int], seconds: float) -> dict[str, float]:
    """Audit-log counts keyed by (verb, resource) -> "verb resource" per minute, largest first."""
    rates = {" ".join(k): v * 60 / seconds for k, v in counts.items()}
    return dict(sorted(rates.items(), key=lambda kv: (-kv[1], kv[0])))


def rates_cell(rates: Mapping[str, float], limit: int = 4) -> str:
    """'total (largest parts)' for a table cell: '24.0 (get deployments/scale 20.0, ...)'."""
    total = sum(rates.values())
    if not total:
        return "0"
    parts = [f"{k} {v:.1f}" for k, v in list(rates.items())[:limit]]
    more = len(rates) - limit
    return f"{total:.1f} ({', '.join(parts)}{f', +{more} more' if more > 0 else ''})"


def timeline(changes: Iterable[tuple[float, int]], origin: float) -> str:
    """A replica history as '1, 2 at +45 s, 0 at +130 s' (seconds after `origin`)."""
    text = []
    for seen, replicas in changes:
        at = seen - origin
        text.append(f"{replicas}" if at <= 0 else f"{replicas} at +{at:.0f} s")
    return ", ".join(text) or "no record"


def latency_cell(values: list[float], expected: int) -> str:
    """'p50 / p99 s (n)', or why there is no figure: fewer trials than planned are said."""
    if not values:
        return "no wake seen"
    text = f"{statistics.median(values):.2f} / {percentile(values, 0.99):.2f} s"
    if len(values) < expected:
        text += f" ({len(values)} of {expected} trials woke)"
    return text
