"""A short seeded chaos campaign (benchmarks/chaos.py): a dozen random faults against the operator
(two sharded replicas: one of them killed or stopped), `autozero run`, the apiserver, Redis,
RabbitMQ and the Compute API while real jobs run on two GCE groups (one the operator's, fed by RQ
and handed to the GCE autoscaler while awake; one `autozero run`'s, fed by MRQ), a Deployment (RQ,
handed to an HPA while awake) and a StatefulSet (RabbitMQ), whose workers run as Pods on a real
node (containerd, a kubelet); every invariant holds, judged from the emulator's request log, the
apiserver's audit log and the workers' own job log. `make chaos` runs
the long campaign; the one operator without handoff is its default."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

from chaos import Campaign  # noqa: E402
from chaos_invariants import GROUPS, NAMESPACE, job_group  # noqa: E402

SEED = 22
PODS = ("dep", "sts")  # the groups whose workers are Pods


def test_a_short_seeded_campaign_breaks_no_invariant(tmp_path: Path) -> None:
    campaign = Campaign(SEED, faults=12, gap=3.0, out=tmp_path, handoff=True, replicas=2, pods=True)
    try:
        campaign.start()
        report = campaign.run()
        # The Deployment's and StatefulSet's jobs ran in Pods the kubelet started.
        workers = {e["worker"] for e in campaign.job_events() if job_group(e["job"]) in PODS}
        ran_in = {w: list(campaign.node.pod_logs.glob(f"{NAMESPACE}_{w}_*")) for w in workers}
    finally:
        campaign.close()
    assert {w.split("-", 1)[0] for w in workers} == set(PODS), (workers, report.text())
    assert all(ran_in.values()), ran_in
    assert len(report.faults) >= 10
    assert {"operator-sigkill", "operator-sigterm"} <= set(report.by_kind()), report.text()
    # The checks had evidence to judge: every group scaled by its driver, and ran jobs, each
    # job logged at its start and its end.
    for group in GROUPS:
        assert report.evidence[f"{group} autozero writes"] >= 2, (group, report.text())
    ran = {job_group(e["job"]) for e in campaign.job_events() if e["event"] == "end"}
    assert ran == set(GROUPS), report.text()
    assert report.evidence["job log lines"] >= 2 * report.jobs > 0, report.text()
    assert report.processed == report.jobs, report.text()
    assert not report.violations, report.text()
    # The node's directory (containerd's unpacked images, 0.7 GiB) went with it.
    assert not campaign.node.workdir.exists()
