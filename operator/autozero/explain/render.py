"""An explanation as text: a headline per group, one sentence per fact, the rules as a table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

ORIGINS = {
    "status": "its status and Events",
    "simulation": "the simulation",
    "run": "autozero run's memory",
}


def _table(rows: Sequence[Sequence[str]], indent: str) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        indent + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def _observed(value: Any) -> str:
    return "?" if value is None else f"{float(value):g}"


def render_text(explanation: Mapping[str, Any]) -> str:
    lines: list[str] = []
    origin = ORIGINS.get(str(explanation.get("from")), "")
    head = f"ScalingPolicy {explanation['policy']}"
    if "error" in explanation:
        return f"{head}: {explanation['error']}\n"
    lines.append(f"{head}, from {origin} at {explanation['at']}")
    lines.extend(f"  {note}" for note in explanation.get("notes") or ())
    for group in explanation.get("groups") or ():
        lines.append("")
        lines.append(f"{group['group']}: {group['summary']}")
        for line in group.get("lines") or ():
            if line["topic"] != "rules":
                lines.append(f"  {line['text']}")
        rules = group.get("rules") or []
        if rules:
            rows = [["rule", "metric", "observed", "against", "verdict"]]
            rows += [
                [
                    str(r["rule"]),
                    str(r["metric"]),
                    _observed(r["observed"]),
                    str(r["against"]),
                    str(r["verdict"]),
                ]
                for r in rules
            ]
            lines.extend(_table(rows, "  "))
        recent = group.get("recent") or []
        if recent:
            lines.append("  recent decisions:")
            lines.extend(f"    {r['time']}  {r['what']}: {r['message']}" for r in recent)
    events = explanation.get("events") or []
    if events:
        lines.append("")
        lines.append("recent events of the policy:")
        lines.extend(f"  {e['time']}  {e['what']}: {e['message']}" for e in events)
    return "\n".join(lines) + "\n"
