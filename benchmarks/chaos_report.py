"""The chaos campaign's record: the faults it injected, the violations it found, and the report
it prints (text for a person, JSON for a script), so that the judging and the driving share one
vocabulary and neither has to know how the other is printed."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Fault:
    kind: str
    started: float
    ended: float = 0.0
    serving_again: float = 0.0  # when the restarted operator or runner answered, else ended
    converged_after: float | None = None  # seconds from serving_again to converged
    slow_until: float = 0.0  # Compute latency: when the last call begun under it was answered
    judged_with_next: bool = False  # the next fault began before this one's bound elapsed
    together: bool = False  # injected with another one, at the same time
    first_evaluation: float | None = None  # restart kinds: from serving_again to all evaluated
    subject: str = ""  # which of several sharded replicas it stopped (its identity)


@dataclass
class Violation:
    invariant: str
    evidence: str


@dataclass
class Report:
    seed: int
    faults: list[Fault] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    jobs: int = 0
    processed: int = 0
    seconds: float = 0.0
    evidence: dict[str, int] = field(default_factory=dict)  # lines read, by source
    options: list[str] = field(default_factory=list)  # the run's other options, to replay it

    def by_kind(self) -> dict[str, int]:
        return dict(sorted(Counter(f.kind for f in self.faults).items()))

    def slowest_start(self) -> float:
        return max((f.first_evaluation or 0.0 for f in self.faults), default=0.0)

    def worst_convergence(self) -> tuple[float, str]:
        timed = [(f.converged_after or 0.0, f.kind) for f in self.faults]
        return max(timed, default=(0.0, "-"))

    def to_json(self) -> dict[str, Any]:
        worst, kind = self.worst_convergence()
        return {
            "seed": self.seed,
            "options": self.options,
            "seconds": round(self.seconds, 1),
            "faults": len(self.faults),
            "faults_by_kind": self.by_kind(),
            "jobs": self.jobs,
            "processed": self.processed,
            "evidence": self.evidence,
            "worst_convergence_s": round(worst, 2),
            "worst_convergence_after": kind,
            "judged_with_the_next_fault": sum(f.judged_with_next for f in self.faults),
            "slowest_first_evaluation_after_a_restart_s": round(self.slowest_start(), 2),
            "violations": [
                {"invariant": v.invariant, "evidence": v.evidence} for v in self.violations
            ],
        }

    def text(self) -> str:
        worst, kind = self.worst_convergence()
        lines = [
            f"chaos campaign, seed {self.seed}: {len(self.faults)} faults in {self.seconds:.0f} s, "
            f"{self.processed}/{self.jobs} jobs processed",
            "faults: " + ", ".join(f"{k} {n}" for k, n in self.by_kind().items()),
            "evidence: " + ", ".join(f"{k} {n}" for k, n in self.evidence.items()),
            f"worst convergence: {worst:.1f} s (after {kind}); "
            f"{sum(f.judged_with_next for f in self.faults)} faults judged with the next one",
            f"slowest first evaluation after an operator or runner restart: "
            f"{self.slowest_start():.1f} s after its /metrics answered",
            f"violations: {len(self.violations)}",
        ]
        first: dict[str, Violation] = {}
        counts = Counter(v.invariant for v in self.violations)
        for violation in self.violations:
            first.setdefault(violation.invariant, violation)
        for name, violation in first.items():
            lines.append(f"  {name} ({counts[name]}): {violation.evidence}")
        lines.append(
            f"replay: benchmarks/chaos.py --seed {self.seed} --faults {len(self.faults)}"
            + "".join(f" {option}" for option in self.options)
        )
        return "\n".join(lines)
