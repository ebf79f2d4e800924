"""The chaos campaign's judge: the evidence read back from what autozero does not write (the
emulator's request log, the apiserver's audit log, the workers' job log, the campaign's samples
and /metrics scrapes) and the invariants checked on it. Nothing here talks to a server: the
campaign collects, this module parses and judges, so a judgement can be replayed from the files
a run leaves behind."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from chaos_report import Report, Violation

NAMESPACE = "chaos"
INTERVAL = 1.0  # the policies' pollingInterval, in seconds
LAST_EVALUATION = "autozero_last_evaluation_timestamp_seconds"
# The groups, as the job names, samples and resizes name them: two GCE groups (the operator's
# `mig`, `autozero run`'s `mig-run`), a Deployment and a StatefulSet.
GROUPS = ("mig", "dep", "sts", "mig-run")
MIGS = ("mig", "mig-run")
POLICY_GROUP = {"gce": "mig", "dep": "dep", "sts": "sts", "run": "mig-run"}  # policy -> its group
# Which process evaluates which policy, and so whose /metrics tells when it was evaluated.
EVALUATED_BY = {"operator": ("gce", "dep", "sts"), "runner": ("run",)}
WORKLOADS = {"deployments": "dep", "statefulsets": "sts"}  # audit objectRef.resource -> group
# How long after its source showed work a policy has to act on it: its next read (one interval)
# and the write after it. A group scaled to 0 under a job its source showed earlier than that
# broke invariant 1; under one its source had not shown by then, it could not have known.
ACT_WITHIN = INTERVAL + 0.5


@dataclass(frozen=True)
class Resize:
    """An accepted write of a group's size: a MIG resize or a workload's /scale, or (`pool`,
    with `--standby`) VMs suspended or stopped into a MIG's standby pool, which autozero does only
    as a sleep's first step: the group going to 0, its machines taken down."""

    at: float
    group: str
    size: int
    # "autozero"; "hand" (the campaign's scale-by-hand); "controller" (another, e.g. an HPA's);
    # "failed" (an accepted resize whose operation failed)
    actor: str
    line: str  # the evidence, as read
    pool: bool = False


@dataclass
class Evidence:
    jobs: dict[str, str]  # every job enqueued -> its group
    events: list[dict[str, Any]]  # the workers' job log
    resizes: list[Resize]
    reads_failed: list[tuple[float, float, frozenset[str]]]  # start, end, the groups whose failed
    samples: list[tuple[float, dict[str, int], dict[str, int]]]  # at, size and work by group
    evaluations: list[tuple[float, str, dict[str, float]]]  # at, evaluator, policy -> last
    calls: list[dict[str, Any]]  # the emulator's request log
    serving: dict[str, float]  # evaluator -> when it first answered
    # For a group whose source shows work late (the `rabbitmq` source reads the management API's
    # samples), what that API showed, read beside it: at, messages (ready + unacknowledged).
    seen: dict[str, list[tuple[float, int]]] = field(default_factory=dict)


def job_group(job: str) -> str:
    """Jobs are named `<group>/<id>`."""
    return job.rsplit("/", 1)[0]


# The methods that move VMs into a standby pool: each is a sleep's first step (a Resize to 0).
INTO_POOL = ("instanceGroupManagers.suspendInstances", "instanceGroupManagers.stopInstances")


def emulator_resizes(
    calls: Iterable[dict[str, Any]], failed: Callable[[str | None], bool]
) -> list[Resize]:
    """Accepted resizes, and moves into a standby pool, from the emulator's log; the request
    path names the group."""
    found: list[Resize] = []
    for entry in calls:
        api = entry.get("api")
        if api not in ("instanceGroupManagers.resize", *INTO_POOL) or entry["status"] != 200:
            continue
        group = entry["path"].split("/instanceGroupManagers/", 1)[1].split("/", 1)[0]
        query = dict(p.split("=", 1) for p in entry["query"].split("&") if "=" in p)
        # An accepted write whose operation then failed changed nothing.
        actor = "failed" if failed(entry.get("operation")) else "autozero"
        pool = api in INTO_POOL
        size = 0 if pool else int(query["size"])
        line = f"emulator: {json.dumps(entry)}"
        found.append(Resize(entry["at"], group, size, actor, line, pool=pool))
    return found


def audit_resizes(lines: Iterable[str]) -> list[Resize]:
    """Accepted /scale writes from the apiserver's audit log; objectRef names the workload, the
    user agent the writer (the campaign's own hand scaling calls itself chaos-campaign)."""
    found: list[Resize] = []
    for line in lines:
        event = json.loads(line)
        status = (event.get("responseStatus") or {}).get("code")
        body = event.get("requestObject") or {}
        replicas = (body.get("spec") or {}).get("replicas")
        if event.get("stage") != "ResponseComplete" or status != 200 or replicas is None:
            continue
        ref = event.get("objectRef") or {}
        group = WORKLOADS[ref["resource"]]
        at = dt.datetime.fromisoformat(event["requestReceivedTimestamp"].replace("Z", "+00:00"))
        agent = str(event.get("userAgent", ""))
        actor = (
            "hand"
            if agent.startswith("chaos-campaign")
            else "autozero"
            if agent.startswith("autozero/")
            else "controller"  # e.g. the HPA controller, with --handoff
        )
        line = f"audit: {at.isoformat()} {event['verb']} {ref['resource']}/{ref.get('name')}"
        found.append(
            Resize(at.timestamp(), group, int(replicas), actor, f"{line} replicas={replicas} "
                   f"by {agent[:40]}")
        )  # fmt: skip
    return found


# With handoff: each sample's flag of a group's autoscaler (the GCE autoscaler, the HPA).
HANDED = {"autoscaler": "mig", "hpa": "dep"}


def converged(sizes: Mapping[str, int], work: Mapping[str, int]) -> bool:
    """Every group with work has a replica; with handoff, the MIG has a GCE autoscaler and the
    Deployment an HPA exactly while awake (none left on a sleeping group, none missing on an
    awake one)."""
    groups = all(sizes[g] >= 1 or not work[g] for g in GROUPS)
    return groups and all(
        bool(sizes[flag]) == (sizes[group] >= 1) for flag, group in HANDED.items() if flag in sizes
    )


def runs(events: Iterable[dict[str, Any]]) -> list[tuple[str, str, float, float]]:
    """(job, worker, start, end) of every run of a job; end is inf for a run never ended. A job
    redelivered after a broker restart runs twice: each run is judged."""
    open_: dict[tuple[str, str], list[float]] = defaultdict(list)
    found: list[tuple[str, str, float, float]] = []
    for event in events:
        key = (event["job"], event["worker"])
        if event["event"] == "start":
            open_[key].append(event["at"])
        elif open_[key]:
            found.append((*key, open_[key].pop(0), event["at"]))
    found += [(*key, start, math.inf) for key, starts in open_.items() for start in starts]
    return found


def judge(evidence: Evidence, report: Report) -> None:
    """Invariants 1, 2, 4, 5 from the logs; 3 and 6 from the samples and scrapes."""
    ended = {e["job"] for e in evidence.events if e["event"] == "end"}
    started = {e["job"]: e for e in evidence.events if e["event"] == "start"}
    report.jobs, report.processed = len(evidence.jobs), len(set(evidence.jobs) & ended)
    # 5. every job of every wave processed
    for job in evidence.jobs:
        if job not in ended:
            how = f"started on {started[job]['worker']}" if job in started else "never started"
            report.violations.append(Violation("every job processed", f"job {job}: {how}"))
    resizes = sorted(evidence.resizes, key=lambda r: r.at)
    writes = Counter(f"{r.group} {r.actor} {'pool moves' if r.pool else 'writes'}" for r in resizes)
    report.evidence = {
        "job log lines": len(evidence.events),
        **{f"{group} autozero writes": 0 for group in GROUPS},  # a group with none shows 0
        **dict(sorted(writes.items())),
        "samples": len(evidence.samples),
    }
    # 1. never 0 while a job of the group runs (nor a job cut short by it)
    job_runs = runs(evidence.events)
    unseen = 0
    for resize in resizes:
        if resize.size != 0 or resize.actor != "autozero":
            continue
        running = [
            (job, worker, start, end)
            for job, worker, start, end in job_runs
            if job_group(job) == resize.group and start < resize.at < end
        ]
        if not running:
            continue
        job, worker, start, end = running[0]
        if resize.group in evidence.seen and math.isfinite(end):
            shown = [
                at
                for at, messages in evidence.seen[resize.group]
                if start <= at <= resize.at - ACT_WITHIN and messages > 0
            ]
            if not shown:
                unseen += 1  # begun within the source's lag, and it finished: counted apart
                continue
        how = "" if math.isfinite(end) else ", cut short"
        report.violations.append(
            Violation(
                "never 0 while a job runs",
                f"{resize.line[:300]} while {job} ran on {worker} (from {start:.2f}{how})",
            )
        )
    if evidence.seen:
        report.evidence["scaled to 0 under a job begun within its source's lag (it finished)"] = (
            unseen
        )
    # 2. never scaled down while the group's source reads failed (and one interval after)
    last: dict[str, int] = defaultdict(int)
    for resize in resizes:
        if resize.actor == "failed":
            continue
        if resize.actor == "autozero" and resize.size < last[resize.group]:
            for start, end, groups in evidence.reads_failed:
                if resize.group in groups and start <= resize.at <= end + INTERVAL:
                    report.violations.append(
                        Violation(
                            "no scale-down during a failing read",
                            f"{resize.line[:300]} (from {last[resize.group]}; {resize.group}'s "
                            f"reads failed {start:.1f}-{end:.1f})",
                        )
                    )
        if not resize.pool:  # the resize to 0 after it is judged against the size before
            last[resize.group] = resize.size
    # 4. no duplicated resize: two accepted resizes of one MIG to one size in a row
    previous: dict[str, Resize] = {}
    for resize in resizes:
        if resize.pool:  # the group went to 0 (a wake from the pool resumes: no resize)
            previous.pop(resize.group, None)
        if resize.group not in MIGS or resize.actor != "autozero" or resize.pool:
            continue
        before = previous.get(resize.group)
        if before is not None and before.size == resize.size:
            report.violations.append(
                Violation(
                    "no duplicated resize", f"{resize.line[:300]} (same size as {before.at:.2f})"
                )
            )
        previous[resize.group] = resize
    judge_convergence(evidence, report)  # 3
    judge_starvation(evidence, report)  # 6


def judge_convergence(evidence: Evidence, report: Report) -> None:
    """3. After each fault, within 3 intervals, every group with work has a replica. Counted from
    when the fault ended, a restarted operator or runner served /metrics again, or the last
    Compute call begun under a latency fault was answered (the runtime can neither hurry it nor,
    without risking a second writer, pass beside it). A fault followed by the next before its
    bound is judged with the next, from whichever of the two is served again last (a killed
    sharded replica's policies wait for its Lease whatever comes after)."""
    carried = 0.0  # serving_again of the faults judged with this one
    for n, fault in enumerate(report.faults):
        if fault.kind == "compute-latency":
            fault.slow_until = max(
                (
                    c["answered"]
                    for c in evidence.calls
                    if c["at"] <= fault.ended < c.get("answered", 0.0)
                ),
                default=0.0,
            )
            fault.serving_again = max(fault.serving_again, fault.slow_until)
        since = max(fault.serving_again, carried)
        carried = 0.0
        bound = since + 3 * INTERVAL
        following = report.faults[n + 1].started if n + 1 < len(report.faults) else math.inf
        after = [s for s in evidence.samples if since <= s[0] <= following]
        good = next((t for t, sizes, work in after if converged(sizes, work)), None)
        if good is not None:
            fault.converged_after = good - since
        if good is not None and good <= bound:
            continue
        if following < bound:
            fault.judged_with_next = True
            fault.converged_after = None
            carried = since
            continue
        report.violations.append(
            Violation(
                "converged within 3 intervals",
                f"{fault.kind} at {fault.started:.1f}: "
                + (f"{fault.converged_after:.1f} s" if good is not None else "never"),
            )
        )


def restarted(kind: str) -> str | None:
    """The evaluator a fault of this kind restarts, if any."""
    who = kind.split("-", 1)[0]
    return who if who in EVALUATED_BY else None


def judge_starvation(evidence: Evidence, report: Report) -> None:
    """6. From its first evaluation on, outside the faults and their 3 intervals of grace, every
    policy's last evaluation is at most 2 intervals old at every scrape of its evaluator. A
    restarted evaluator's first evaluations are not judged but measured (`first_evaluation`):
    building every policy again takes longer than 3 intervals on this test ground."""
    unhealthy = [(0.0, max(evidence.serving.values()) + 3 * INTERVAL)]
    for fault in report.faults:
        end = fault.serving_again + 3 * INTERVAL
        who = restarted(fault.kind)
        if who is not None:
            keys = [f"{NAMESPACE}/{n}" for n in EVALUATED_BY[who]]
            first = next(
                (
                    at
                    for at, by, last in evidence.evaluations
                    if by == who
                    and at >= fault.serving_again
                    and all(last.get(k, 0.0) >= fault.ended for k in keys)
                ),
                None,
            )
            if first is not None:
                fault.first_evaluation = first - fault.serving_again
                end = max(end, first)
        unhealthy.append((fault.started, end))
    starved: set[str] = set()
    writing = 0  # gaps of a policy whose own pass was writing its group meanwhile
    begun: set[str] = set()  # policies evaluated once: the first start is not judged
    for at, by, last in evidence.evaluations:
        names = EVALUATED_BY[by]
        begun |= {name for name in names if f"{NAMESPACE}/{name}" in last}
        if any(start <= at <= end for start, end in unhealthy):
            continue
        for name in names:
            seen = last.get(f"{NAMESPACE}/{name}")
            if name in starved or name not in begun:
                continue
            if seen is not None and at - seen <= 2 * INTERVAL:
                continue
            if seen is not None and writes_between(evidence, name, seen, at):
                writing += 1  # served, busy: its next pass waits for this one's operations
                continue
            starved.add(name)
            how = "no series" if seen is None else f"{at - seen:.1f} s old"
            report.violations.append(
                Violation(
                    "no policy starved",
                    f"{LAST_EVALUATION} of {NAMESPACE}/{name} on the {by}'s /metrics: {how} at "
                    f"the scrape of {at:.1f}",
                )
            )
    report.evidence["metrics scrapes"] = len(evidence.evaluations)
    report.evidence["evaluations late while the policy's own writes ran"] = writing


def writes_between(evidence: Evidence, policy: str, since: float, until: float) -> bool:
    """Whether the policy's group was written (a resize or, for the MIG, an autoscaler call, as
    the emulator and audit logs tell) after its last evaluation: a pass that waits for Compute
    operations (a handoff sleep: two of them) is the policy served, not starved."""
    group = POLICY_GROUP[policy]
    if any(r.group == group and since < r.at <= until for r in evidence.resizes):
        return True
    return any(
        since < c["at"] <= until
        and (
            (group == "mig" and str(c.get("api") or "").startswith("autoscalers."))
            # a write of the group's: a pool's suspend or resume
            or (c["method"] != "GET" and f"/instanceGroupManagers/{group}/" in c["path"])
        )
        for c in evidence.calls
    )


def last_evaluations(text: str) -> dict[str, float]:
    """`namespace/policy` -> the value of its last-evaluation gauge, from a /metrics page."""
    found: dict[str, float] = {}
    for line in text.splitlines():
        if not line.startswith(LAST_EVALUATION + "{"):
            continue
        labels, _, value = line[len(LAST_EVALUATION) + 1 :].rpartition("} ")
        pairs = {k: v.strip('"') for k, _, v in (p.partition("=") for p in labels.split(","))}
        found[f"{pairs.get('namespace')}/{pairs.get('policy')}"] = float(value)
    return found
