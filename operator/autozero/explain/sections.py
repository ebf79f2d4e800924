"""The sections of a group's explanation, one function each: data for `--output json` and one
plain sentence for the text, built from the same values so the two never disagree.

Pure, like `build`: what a section does not know (a status too old to hold the rules'
recommendations) it says is unknown, never guesses.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from autozero.engine.behavior import describe_rules, rate_limit, stabilize
from autozero.engine.durations import format_duration
from autozero.engine.schedule import ActiveProfile, boundary_after
from autozero.engine.spec import (
    Capacity,
    GroupSpec,
    Profile,
    Rule,
    ScalingRules,
    TargetRule,
)
from autozero.explain.evidence import GroupEvidence, parse_time
from autozero.policy.model import DAYS, GroupPolicy
from autozero.targets.base import Standby
from autozero.targets.registry import handoff_of

#: What each decision reason means, in a user's words (the codes are `engine.decision.Reason`).
MEANINGS = {
    "WorkPending": "work is pending, so the group wakes",
    "Idle": "nothing was pending nor in flight for idleFor, so the group sleeps",
    "RuleFired": "a rule asked for more replicas",
    "AllDecreaseRulesFired": "every Decrease and target rule agreed to scale in",
    "ScheduleMinimum": "the active profile's minimum holds the count up",
    "ScheduleMaximum": "the active profile's maximum holds the count down",
    "Fallback": "a source failed failureThreshold reads in a row: raised to fallback replicas",
    "Asleep": "asleep: nothing is pending",
    "NoRuleFired": "no rule asks for a change",
    "NoRules": "the active profile has no rules: only activation moves the count",
    "NotAllDecreaseRulesFired": "not every Decrease and target rule agrees to scale in",
    "InCooldown": "a rule would act, but its cooldown since the last scale is running",
    "InsufficientData": "a rule's window is not full yet (a restart, a wake, a gap in reads)",
    "SourceFailed": "a source cannot be read: the count never goes down meanwhile",
    "WouldFlap": "scaling in would make an Increase rule fire at once (flapping guard)",
    "InFlight": "work is in flight: the group may not go below 1",
    "AtBound": "a rule fired, but the count is already at the profile's bound",
    "Handoff": "a native autoscaler owns the count while the group is awake",
    "Stabilized": "a stabilization window holds the count (behavior)",
    "RateLimited": "a rate policy limits how fast the count moves (behavior)",
    "Unfinished": "a scale-out a restart interrupted between its writes is finished",
}


def z(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _duration(seconds: float) -> str:
    return format_duration(timedelta(seconds=round(max(0.0, seconds))))


def _num(value: Any) -> str:
    return "?" if value is None else f"{float(value):g}"


@dataclass
class GroupView:
    """One group being explained: what every section needs."""

    evidence: GroupEvidence
    policy: GroupPolicy
    spec: GroupSpec
    decision: Mapping[str, Any]
    now: datetime
    active: ActiveProfile
    capacity: Capacity
    count: int  # the count now, as far as autozero knows: the decision's, once applied
    readings: Mapping[str, Mapping[str, Any]]

    @property
    def profile(self) -> Profile:
        return self.active.profile

    @property
    def decided_profile(self) -> Profile:
        name = self.decision.get("profile")
        for profile in self.spec.profiles:
            if profile.name == name:
                return profile
        return self.spec.default_profile

    @property
    def recommended(self) -> int | None:
        value = self.decision.get("recommended")
        return None if value is None else int(value)


def summary(g: GroupView, state: str) -> str:
    d = g.decision
    reason = str(d.get("reason"))
    action = str(d.get("action"))
    replicas = d.get("replicas") or {}
    before, after = replicas.get("before"), replicas.get("after")
    if g.evidence.error:
        head = f"error at {before}: {g.evidence.error}"
    elif action == "Hold":
        head = f"{state} at {g.count}, held"
    elif g.evidence.applied:
        head = f"{state} at {g.count}: {action} {before} -> {after}"
    else:
        head = f"{state} at {g.count}: would {action} {before} -> {after} (not applied)"
    return f"{head}: {reason}: {MEANINGS.get(reason, reason)} ({d.get('message')})"


def profile(g: GroupView) -> dict[str, Any]:
    active, spec, now = g.active, g.spec, g.now
    profile = active.profile
    upcoming = boundary_after(spec, now, active)
    if profile.fixed_date is not None:
        why = f"its fixed date runs {z(active.since)} to {z(active.until)}"
    elif profile.recurrence is not None:
        r = profile.recurrence
        days = ",".join(DAYS[d] for d in sorted(r.days))
        starts = ",".join(f"{h:02d}:{m:02d}" for h in r.hours for m in r.minutes)
        ends = (
            f"ends {z(active.until)} (duration {format_duration(r.duration)})"
            if active.until is not None and r.duration is not None
            else f"runs until the next scheduled start, {z(upcoming)}"
            if upcoming is not None
            else "runs on"
        )
        since = z(active.since)
        why = f"its recurrence ({days} at {starts} {r.time_zone}) started {since}; {ends}"
    elif spec.scheduled_profiles:
        why = "no scheduled profile is in force" + (
            f"; the schedule may change it at {z(upcoming)}" if upcoming else ""
        )
    else:
        why = "the only profile (no schedule)"
    sentence = f"profile {profile.name}: {why}"
    decided = g.decision.get("profile")
    if decided != profile.name:
        sentence += (
            f"; the last decision was made under profile {decided}, the next one uses "
            f"{profile.name}"
        )
    return {
        "name": profile.name,
        "since": z(active.since),
        "until": z(active.until),
        "nextChange": z(upcoming),
        "decidedUnder": decided,
        "sentence": sentence,
    }


def _wake_count(capacity: Capacity) -> int:
    return max(1, capacity.minimum, min(capacity.default, capacity.maximum))


def replicas(g: GroupView) -> dict[str, Any]:
    cap = g.capacity
    replicas = g.decision.get("replicas") or {}
    desired = replicas.get("after")
    wake = _wake_count(cap)
    more = ""
    scale_up = g.spec.behavior.scale_up
    if any(isinstance(r, TargetRule) for r in g.profile.rules) and not (
        scale_up is not None and scale_up.limited
    ):
        more = " (or to what its target rules want, if more)"
    sentence = (
        f"count {g.count} (last decided {replicas.get('before')} -> {desired}); bounds "
        f"{cap.minimum}..{cap.maximum} in profile {g.profile.name}; wakes to {wake}{more}"
    )
    recommended = g.recommended
    if recommended is not None and recommended != desired:
        sentence += f"; the rules recommended {recommended}"
    return {
        "current": g.count,
        "desired": desired,
        "minimum": cap.minimum,
        "maximum": cap.maximum,
        "wakeCount": wake,
        "recommended": recommended,
        "sentence": sentence,
    }


def activation(g: GroupView) -> dict[str, Any] | None:
    activation = g.spec.activation
    if activation is None:
        return {
            "metric": None,
            "state": "none",
            "sentence": "no activation metric: the group neither wakes on work nor sleeps",
        }
    metric = activation.metric
    reading = g.readings.get(metric) or {}
    failing = metric in (g.decision.get("failing") or ()) or "error" in reading
    pending = g.decision.get("pending")
    in_flight = g.decision.get("inFlight")
    unit = activation.unit or "units"
    threshold = activation.threshold
    above = f" (above the activation threshold {threshold:g})" if threshold else ""
    out: dict[str, Any] = {
        "metric": metric,
        "pending": pending,
        "inFlight": in_flight,
        "threshold": threshold,
        "idleFor": format_duration(activation.idle_for),
        "idleSince": z(g.evidence.idle_since),
        "sleepsAt": None,
    }
    fallback = g.spec.failure.fallback_replicas
    if failing:
        error = reading.get("error") or "its read failed"
        if g.count == 0:
            state, sentence = (
                "unknown",
                f"{metric} cannot be read ({error}): the group stays asleep, not knowing "
                "whether work waits"
                + (
                    f"; after {g.spec.failure.threshold} failed reads it wakes to fallback "
                    f"{fallback}"
                    if fallback
                    else "; set failure.fallbackReplicas to wake it anyway"
                ),
            )
        else:
            state, sentence = (
                "unknown",
                f"{metric} cannot be read ({error}): not knowing is not idle, so the group "
                "does not sleep",
            )
    elif g.count == 0:
        if pending is not None and pending > threshold:
            state = "pending"
            sentence = f"{metric}: {_num(pending)} {unit} pending{above}: wakes to " + str(
                _wake_count(g.capacity)
            )
            if not g.evidence.applied:
                sentence += " (not applied)"
        else:
            state = "asleep"
            sentence = (
                f"{metric}: {_num(pending)} {unit} pending; wakes when more than {threshold:g} "
                "are pending"
            )
    elif in_flight is not None and in_flight > 0:
        state = "in-flight"
        sentence = (
            f"{metric}: {_num(in_flight)} {unit} in flight: the group does not sleep while work "
            "runs (in-flight guard)"
        )
    elif pending is not None and pending > threshold:
        state = "pending"
        sentence = f"{metric}: {_num(pending)} {unit} pending{above}: not idle"
    elif g.evidence.idle_since is not None:
        state = "idle"
        sleeps = g.evidence.idle_since + activation.idle_for
        out["sleepsAt"] = z(sleeps)
        sentence = f"{metric}: idle since {z(g.evidence.idle_since)}"
        if g.capacity.minimum > 0:
            sentence += f"; the profile's minimum {g.capacity.minimum} keeps it awake"
        else:
            sentence += f"; sleeps at {z(sleeps)} (idleFor {format_duration(activation.idle_for)})"
            sentence += " unless work arrives"
    else:
        state = "idle"
        sentence = f"{metric}: nothing pending nor in flight; the idle clock starts now"
    out["state"] = state
    out["sentence"] = "activation " + sentence
    return out


def _against(rule: Rule | TargetRule) -> str:
    if isinstance(rule, TargetRule):
        target = rule.target
        return f"{target.kind.value} {target.value:g} ±{target.tolerance:g}"
    action = rule.action
    sign = "+" if action.direction.value == "Increase" else "-"
    by = {
        "ChangeCount": f"{sign}{action.value:g}",
        "PercentChangeCount": f"{sign}{action.value:g}%",
        "ExactCount": f"={action.value:g}",
    }[action.type.value]
    return f"{rule.operator.symbol} {rule.threshold:g} ({action.direction.value} {by})"


def rules(g: GroupView) -> list[dict[str, Any]]:
    profile = g.decided_profile
    rows: list[dict[str, Any]] = []
    for verdict in g.decision.get("rules") or ():
        index = int(verdict["rule"])
        rule = profile.rules[index] if index < len(profile.rules) else None
        against = _against(rule) if rule is not None else "?"
        status = str(verdict.get("status"))
        outcome = status
        if "wants" in verdict and verdict.get("wants") is not None:
            outcome = f"{status}: wants {verdict['wants']}"
        rows.append(
            {
                "rule": index,
                "metric": verdict.get("metric"),
                "observed": verdict.get("observed"),
                "against": against,
                "status": status,
                "verdict": outcome,
                "sentence": f"rule {index}: {verdict.get('metric')} {_num(verdict.get('observed'))}"
                f" against {against}: {outcome}",
            }
        )
    return rows


def cooldowns(g: GroupView) -> list[dict[str, Any]]:
    last = g.evidence.last_scale
    if last is None:
        return []
    out = []
    for index, rule in enumerate(g.profile.rules):
        if not isinstance(rule, Rule) or rule.action.cooldown <= timedelta(0):
            continue
        until = last + rule.action.cooldown
        if until <= g.now:
            continue
        out.append(
            {
                "rule": index,
                "cooldown": format_duration(rule.action.cooldown),
                "until": z(until),
                "sentence": f"cooldown of rule {index} ({rule.metric} "
                f"{rule.operator.symbol} {rule.threshold:g}) runs until {z(until)} "
                f"({format_duration(rule.action.cooldown)} from the last scale at {z(last)})",
            }
        )
    return out


def stabilization(g: GroupView) -> list[dict[str, Any]]:
    up, down = g.spec.stabilization_of(g.profile)
    if up <= 0 and down <= 0:
        return []
    if g.count == 0:
        windows = ", ".join(
            f"{d} {_duration(w)}" for d, w in (("scaleUp", up), ("scaleDown", down)) if w > 0
        )
        return [
            {
                "direction": None,
                "sentence": f"stabilization windows ({windows}) apply once awake, never to a wake",
            }
        ]
    known = g.evidence.recommendations
    out: list[dict[str, Any]] = []
    recommended = g.recommended
    now = g.now.timestamp()
    held = g.decision.get("reason") == "Stabilized"
    stable = None
    if known is not None and recommended is not None:
        stable = stabilize(
            g.count, recommended, known.highs, known.lows, now=now, windows=(up, down)
        )
    for window, way, direction in ((down, "scale-in", "scaleDown"), (up, "scale-out", "scaleUp")):
        if window <= 0:
            continue
        entry: dict[str, Any] = {
            "direction": direction,
            "window": _duration(window),
            "holds": False,
            "holdsAt": None,
            "until": None,
        }
        text = f"{direction} stabilization window {_duration(window)}"
        if stable is None:
            if held:
                text += (
                    f": holds the {way} ({g.decision.get('message')}); when it ends is not "
                    "recorded in this status"
                )
                entry["holds"] = True
            elif recommended is None:
                text += ": no recommendation to hold (no rule was asked)"
            else:
                text += ": holds nothing now"
        else:
            is_down = direction == "scaleDown"
            if (
                stable.held_by is not None
                and stable.down == is_down
                and math.isfinite(stable.until)
            ):
                entry.update(holds=True, holdsAt=stable.count, until=z(_at(stable.until)))
                text += (
                    f": holds the {way} to {recommended} at {stable.count} until "
                    f"{z(_at(stable.until))} ({stable.message})"
                )
            else:
                text += ": holds nothing now"
        entry["sentence"] = text
        out.append(entry)
    return out


def rate_limits(g: GroupView) -> list[dict[str, Any]]:
    behavior = g.spec.behavior
    out: list[dict[str, Any]] = []
    now = g.now.timestamp()
    events = g.evidence.scale_events
    floor = max(1, g.capacity.minimum)
    ceiling = max(floor, g.capacity.maximum)
    limited_now = g.decision.get("reason") == "RateLimited"
    pairs: tuple[tuple[str, ScalingRules | None, int], ...] = (
        ("scaleUp", behavior.scale_up, ceiling),
        ("scaleDown", behavior.scale_down, floor),
    )
    for direction, rules, extreme in pairs:
        if rules is None or not rules.limited:
            continue
        policies = describe_rules(rules)
        entry: dict[str, Any] = {"direction": direction, "policies": policies}
        if g.count == 0:
            entry["sentence"] = f"behavior.{direction}: {policies} (not applied to a wake)"
            out.append(entry)
            continue
        limit = rate_limit(g.count, extreme, events, rules, now=now)
        recent = [(at, change) for at, change in events if at > now - _longest(rules)]
        moved = sum(change for _, change in recent)
        way = "up to" if direction == "scaleUp" else "down to"
        text = f"behavior.{direction} ({policies}): may go {way} {limit.count} now"
        if recent:
            text += f" ({moved:+d} within the period since {z(_at(recent[0][0]))}"
            if math.isfinite(limit.until):
                text += f"; the first change leaves it at {z(_at(limit.until))}"
            text += ")"
        if limited_now and (g.decision.get("replicas") or {}).get("after") == g.count:
            text += "; it limited the last decision"
        entry.update(
            allows=limit.count,
            changes=moved,
            until=z(_at(limit.until)) if math.isfinite(limit.until) else None,
            sentence=text,
        )
        out.append(entry)
    return out


def _longest(rules: ScalingRules) -> float:
    return max((p.period.total_seconds() for p in rules.policies), default=0.0)


def sources(g: GroupView) -> list[dict[str, Any]]:
    out = []
    failing = set(g.decision.get("failing") or ())
    counts = g.evidence.failures or {}
    for metric in g.spec.metrics:
        reading = g.readings.get(metric) or {}
        if metric not in failing and "error" not in reading:
            continue
        error = reading.get("error") or "its last read failed"
        kind = reading.get("kind")
        text = f"source {metric} fails" + (f" ({kind})" if kind else "") + f": {error}"
        failures = counts.get(metric)
        threshold = g.spec.failure.threshold
        if failures is not None:
            text += f"; {failures} failed reads in a row (Degraded from {threshold})"
        out.append(
            {
                "metric": metric,
                "error": error,
                "kind": kind,
                "failures": failures,
                "sentence": text + "; the count does not go down meanwhile",
            }
        )
    return out


def handoff(g: GroupView) -> dict[str, Any]:
    handoff = g.policy.handoff
    if handoff is None:
        return {"owner": "autozero", "sentence": "owner: autozero's rules set the count"}
    kind = handoff_of(g.policy.target)
    native = f"{kind.autoscaler} {kind.named(g.policy.target)}"
    bounds = f"{handoff.min_replicas}..{handoff.max_replicas}"
    if g.count > 0:
        return {
            "owner": native,
            "sentence": f"owner: {native} ({bounds}) while awake; autozero only puts it to sleep",
        }
    return {
        "owner": "autozero",
        "sentence": f"owner: autozero while asleep; {native} ({bounds}) takes over once it wakes",
    }


def standby(g: GroupView) -> dict[str, Any] | None:
    """A GCE group's standby pool: what it holds beside the running count, and what the next
    wake takes from it. None for a group without one."""
    pool = getattr(g.policy.target, "standby", None)
    if not isinstance(pool, Standby):
        return None
    kind = "stopped" if pool.stopped else "suspended"
    mode = "Stop" if pool.stopped else "Suspend"
    counts = g.evidence.pool
    held = None if counts is None else int(counts.get(kind, 0))
    verb = "starts" if pool.stopped else "resumes"
    if held is None:
        sentence = f"standby pool ({mode}, size {pool.size}): its count is not known here"
    elif g.count == 0:
        sentence = (
            f"standby pool ({mode}, size {pool.size}): {held} {kind} beside {g.count} running; "
            f"a wake {verb} {min(held, _wake_count(g.capacity))} of them before creating any"
        )
    else:
        sentence = (
            f"standby pool ({mode}, size {pool.size}): {held} {kind} beside {g.count} running; "
            f"Sleep keeps up to {pool.size} of them {kind}, deletes the rest"
        )
    finishing = g.evidence.finishing
    if finishing is not None:
        sentence += (
            f"; a scale-out to {finishing} was under way (`finishing`): a restart finishes it"
        )
    out: dict[str, Any] = {"mode": mode, "size": pool.size, "sentence": sentence}
    if counts is not None:
        out |= {
            "suspended": int(counts.get("suspended", 0)),
            "stopped": int(counts.get("stopped", 0)),
        }
    if finishing is not None:
        out["finishing"] = finishing
    return out


def next_evaluation(g: GroupView) -> dict[str, Any]:
    deadline = parse_time(g.decision.get("nextEvaluation"))
    if deadline is None:
        return {
            "at": None,
            "sentence": "next evaluation: when an input changes (no deadline)",
        }
    why = _deadline_cause(g, deadline)
    when = "due now" if deadline <= g.now else z(deadline)
    return {
        "at": z(deadline),
        "cause": why,
        "sentence": f"next evaluation: {when}"
        + (f" ({why})" if why else "")
        + ", or sooner when an input changes",
    }


def _deadline_cause(g: GroupView, deadline: datetime) -> str | None:
    """What the deadline is, when one of the known instants matches it (to the second)."""
    candidates: list[tuple[datetime | None, str]] = [
        (g.active.until, f"profile {g.profile.name} ends"),
        (boundary_after(g.spec, g.now, g.active), "a schedule boundary"),
    ]
    activation = g.spec.activation
    if activation is not None and g.evidence.idle_since is not None:
        candidates.append((g.evidence.idle_since + activation.idle_for, "idleFor ends: sleep"))
    last = g.evidence.last_scale
    if last is not None:
        for rule in g.decided_profile.rules:
            if isinstance(rule, Rule):
                candidates.append((last + rule.action.cooldown, "a cooldown ends"))
    for when, what in candidates:
        if when is not None and abs((when - deadline).total_seconds()) < 1:
            return what
    return None
