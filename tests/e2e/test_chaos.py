"""A short seeded chaos campaign (benchmarks/chaos.py): a dozen random faults against the operator,
its apiserver, its source and the Compute API while real RQ jobs run on a GCE group and a
Deployment; every invariant holds, judged from the emulator's request log, the apiserver's audit
log and the workers' own job log. `make chaos` runs the long campaign."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

from chaos import Campaign  # noqa: E402

SEED = 22


def test_a_short_seeded_campaign_breaks_no_invariant(tmp_path: Path) -> None:
    campaign = Campaign(SEED, faults=12, gap=3.0, out=tmp_path)
    try:
        campaign.start()
        report = campaign.run()
    finally:
        campaign.close()
    assert len(report.faults) >= 10
    # The checks had evidence to judge: both groups scaled, every job logged twice.
    assert report.evidence["MIG resizes"] >= 2, report.text()
    assert report.evidence["autozero Deployment scale writes"] >= 2, report.text()
    assert report.evidence["job log lines"] >= 2 * report.jobs > 0, report.text()
    assert report.processed == report.jobs, report.text()
    assert not report.violations, report.text()
