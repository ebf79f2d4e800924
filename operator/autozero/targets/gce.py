"""`target.gce`: GCE managed instance groups, zonal and regional, through google-api-python-client.

Observation is batched: one paginated list per zone or region per identity per cycle, whatever
the number of groups (one Compute client per identity: the operator's own, or a key from a
Secret). Writes happen only when the observed state differs from the change (`targets.compute`
retries and waits for them).

Handoff (docs/concepts.md): on Wake, resize to the wake count and then create the group's
autoscaler (min, max, cool-down, CPU target); before Sleep, delete the autoscaler and only then
resize to 0. Delete rather than `mode: OFF`: a deleted autoscaler cannot linger with a stale
configuration or be mistaken for the user's own, and a new one is made from the current policy at
the next wake. The autoscaler exists exactly while the group is awake; `apply` restores that after
a crash between two steps (an awake group without one gets one, a group at 0 loses it).

Standby pool (`standby`, docs/gce.md): Sleep suspends (or stops) up to `size` of the running VMs
instead of deleting them, and a wake resumes (starts) pool VMs before it creates any. The group's
standbyPolicy keeps its mode (autozero's own writes move VMs explicitly, so MANUAL is enough) and
gets the policy's initialDelaySec. The pool's counts are the group's targetSuspendedSize and
targetStoppedSize, observed in the same list call as everything else.

Tenancy: the operator's identity reaches every project it was granted, so each namespace may
target only the projects an administrator allowed it (`GCEAllowlist`, deny by default).
"""

from __future__ import annotations

import fnmatch
import json
import os
import uuid
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from autozero.engine.durations import format_duration, parse_duration
from autozero.policy.fields import (
    Schema,
    duration,
    enum,
    integer,
    number,
    obj,
    secret_ref,
    string,
)
from autozero.policy.model import Policy, SecretKeyRef
from autozero.secrets import SecretUnavailable
from autozero.targets.base import (
    Applied,
    Change,
    Observed,
    PoolWrites,
    Recheck,
    ScaleTarget,
    SleepWithdrawn,
    Standby,
    Step,
    TargetConfigError,
    TargetError,
    TargetNotFound,
    converge,
    plan,
)
from autozero.targets.compute import Compute, GCEError, Retry, Where
from autozero.targets.kind import (
    Assembled,
    Environment,
    HandoffKind,
    Refusal,
    SecretResolver,
    TargetKind,
)

AUTOSCALER_PREFIX = "autozero-"
GCE_ALLOW_ENV = "AUTOZERO_GCE_ALLOW"
#: A VM's statuses on its way up (created, resumed, started): not yet RUNNING, so it cannot be
#: suspended or stopped.
BOOTING = ("PROVISIONING", "STAGING")


def autoscaler_name(group: str) -> str:
    """The name of the autoscaler autozero makes for a group (names mark ownership)."""
    return (AUTOSCALER_PREFIX + group)[:63].rstrip("-")


@dataclass(frozen=True, slots=True)
class GCETarget:
    project: str
    instance_group_manager: str
    zone: str | None = None
    region: str | None = None
    credentials: SecretKeyRef | None = None  # a service-account key; else the operator's own
    standby: Standby | None = None  # a pool of suspended or stopped VMs kept at Sleep

    @property
    def location(self) -> str:
        return self.zone or self.region or ""

    @property
    def where(self) -> Where:
        return Where.of(self.project, self.zone, self.region)


@dataclass(frozen=True, slots=True)
class GCEAutoscalerHandoff:
    min_replicas: int
    max_replicas: int
    cool_down_period: timedelta
    cpu_utilization_target: float
    stabilization_period: timedelta | None = None


class AllowlistError(ValueError):
    """An allowlist entry that cannot be read (a flag, an env var or a Helm value)."""


@dataclass(frozen=True, slots=True)
class GCEAllowlist:
    """Which GCE projects the policies of each namespace may target.

    Entries are `NAMESPACE=PROJECT[,PROJECT...]`; NAMESPACE may be a glob (`team-*`, `*`). A
    namespace may target the union of the projects of every entry it matches, and nothing when it
    matches none: the operator denies by default. `everything()` is for the standalone runner,
    where the policy's author runs autozero with their own credentials.
    """

    entries: tuple[tuple[str, frozenset[str]], ...] = ()
    allow_all: bool = False

    @classmethod
    def everything(cls) -> GCEAllowlist:
        return cls(allow_all=True)

    @classmethod
    def parse(cls, entries: Iterable[str]) -> GCEAllowlist:
        parsed: list[tuple[str, frozenset[str]]] = []
        for entry in entries:
            for part in (p.strip() for p in entry.split(";")):
                if not part:
                    continue
                namespace, sep, projects = part.partition("=")
                names = frozenset(p.strip() for p in projects.split(",") if p.strip())
                if not sep or not namespace.strip() or not names:
                    raise AllowlistError(
                        f"GCE allowlist entry {part!r}: expected NAMESPACE=PROJECT[,PROJECT...]"
                    )
                parsed.append((namespace.strip(), names))
        return cls(tuple(parsed))

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Sequence[str]]) -> GCEAllowlist:
        return cls(tuple((ns, frozenset(projects)) for ns, projects in mapping.items()))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> GCEAllowlist | None:
        """The allowlist in $AUTOZERO_GCE_ALLOW (entries separated by `;`), or None if unset."""
        value = (environ if environ is not None else os.environ).get(GCE_ALLOW_ENV)
        return cls.parse([value]) if value else None

    def projects(self, namespace: str) -> frozenset[str]:
        allowed: set[str] = set()
        for pattern, projects in self.entries:
            if fnmatch.fnmatchcase(namespace, pattern):
                allowed |= projects
        return frozenset(allowed)

    def allows(self, namespace: str, project: str) -> bool:
        return self.allow_all or project in self.projects(namespace)


class GCEConfig(Protocol):
    """What this kind reads of the shell's `RuntimeConfig`."""

    gce_allow: GCEAllowlist  # which projects each namespace may target
    gce_endpoint: str | None  # the Compute API's, when not Google's (the emulator's)


def _observed(item: Mapping[str, Any]) -> Observed:
    actions = item.get("currentActions", {})
    status = item.get("status", {})
    link = status.get("autoscaler")
    name = link.rsplit("/", 1)[1] if link else None
    return Observed(
        replicas=int(item.get("targetSize", 0)),
        ready=int(actions.get("none", 0)),
        stable=bool(status.get("isStable", True)),
        autoscaler=name,
        owned_autoscaler=bool(name and name.startswith(AUTOSCALER_PREFIX)),
        suspended=int(item.get("targetSuspendedSize", 0)),
        stopped=int(item.get("targetStoppedSize", 0)),
        standby_delay=int((item.get("standbyPolicy") or {}).get("initialDelaySec", 0)),
    )


def observe_groups(
    compute: Compute, targets: Mapping[str, GCETarget], *, page_size: int = 500
) -> dict[str, Observed | TargetError]:
    """Observe many groups with one paginated list call per zone or region."""
    by_scope: dict[Where, dict[str, str]] = defaultdict(dict)  # where -> MIG name -> group name
    for group, target in targets.items():
        by_scope[target.where][target.instance_group_manager] = group
    out: dict[str, Observed | TargetError] = {}
    for where, wanted in by_scope.items():
        scope = where.scope
        collection = (
            compute.service.instanceGroupManagers()
            if where.kind == "zones"
            else (compute.service.regionInstanceGroupManagers())
        )
        found: dict[str, Observed] = {}
        try:
            request = collection.list(project=where.project, maxResults=page_size, **scope)
            while request is not None:
                page = compute.call(request, ",".join(sorted(wanted.values())), where)
                for item in page.get("items", []):
                    if item.get("name") in wanted:
                        found[item["name"]] = _observed(item)
                request = collection.list_next(request, page)
        except TargetError as error:
            for group in wanted.values():
                out[group] = error
            continue
        for mig, group in wanted.items():
            out[group] = found.get(mig) or TargetNotFound(
                group, f"{where}/instanceGroupManagers/{mig} was not found"
            )
    return out


@dataclass
class GCEGroup:
    """One managed instance group as a ScaleTarget."""

    name: str
    target: GCETarget
    compute: Compute

    @property
    def where(self) -> Where:
        return self.target.where

    def _scope(self) -> dict[str, str]:
        return self.where.scope

    def _managers(self) -> Any:
        service = self.compute.service
        return (
            service.instanceGroupManagers()
            if self.where.kind == "zones"
            else (service.regionInstanceGroupManagers())
        )

    def _autoscalers(self) -> Any:
        service = self.compute.service
        return (
            service.autoscalers() if self.where.kind == "zones" else (service.regionAutoscalers())
        )

    def _run(
        self, request: Any, before_retry: Callable[[TargetError], None] | None = None
    ) -> dict[str, Any]:
        operation = self.compute.call(request, self.name, self.where, before_retry=before_retry)
        return self.compute.wait(operation, self.name, self.where)

    def observe(self) -> Observed:
        result = observe_groups(self.compute, {self.name: self.target})[self.name]
        if isinstance(result, TargetError):
            raise result
        return result

    def resize(self, size: int, before_retry: Callable[[TargetError], None] | None = None) -> None:
        self._run(
            self._managers().resize(
                project=self.target.project,
                instanceGroupManager=self.target.instance_group_manager,
                size=size,
                requestId=str(uuid.uuid4()),
                **self._scope(),
            ),
            before_retry,
        )

    def _policy(self, handoff: GCEAutoscalerHandoff) -> dict[str, Any]:
        policy: dict[str, Any] = {
            "mode": "ON",
            "minNumReplicas": handoff.min_replicas,
            "maxNumReplicas": handoff.max_replicas,
            "coolDownPeriodSec": int(handoff.cool_down_period.total_seconds()),
            "cpuUtilization": {"utilizationTarget": handoff.cpu_utilization_target},
        }
        if handoff.stabilization_period is not None:
            policy["stabilizationPeriodSec"] = int(handoff.stabilization_period.total_seconds())
        return policy

    def _self_link(self) -> str:
        group = self.compute.call(
            self._managers().get(
                project=self.target.project,
                instanceGroupManager=self.target.instance_group_manager,
                **self._scope(),
            ),
            self.name,
            self.where,
        )
        return str(group["selfLink"])

    def create_autoscaler(self, handoff: GCEAutoscalerHandoff) -> str:
        name = autoscaler_name(self.target.instance_group_manager)
        body = {
            "name": name,
            "target": self._self_link(),
            "autoscalingPolicy": self._policy(handoff),
        }
        try:
            self._run(
                self._autoscalers().insert(
                    project=self.target.project,
                    body=body,
                    requestId=str(uuid.uuid4()),
                    **self._scope(),
                )
            )
            return f"create autoscaler {name}"
        except GCEError as error:
            if error.status != 409:
                raise
        # Ours already exists (a run that crashed after creating it): make it match the policy.
        self._run(
            self._autoscalers().patch(
                project=self.target.project,
                autoscaler=name,
                body={"name": name, "autoscalingPolicy": body["autoscalingPolicy"]},
                requestId=str(uuid.uuid4()),
                **self._scope(),
            )
        )
        return f"update autoscaler {name}"

    def delete_autoscaler(self, name: str) -> None:
        self._run(
            self._autoscalers().delete(
                project=self.target.project,
                autoscaler=name,
                requestId=str(uuid.uuid4()),
                **self._scope(),
            )
        )

    # -- the standby pool ------------------------------------------------------------------
    def configure_pool(self, step: Step) -> str:
        """The pool's initial delay, and its size when it is larger than the policy's."""
        standby = self.target.standby
        if standby is None:  # plan() makes this step only for a group with a pool
            raise TargetError(self.name, "no standby pool to configure")
        mine, other = (
            ("targetStoppedSize", "targetSuspendedSize")
            if standby.stopped
            else ("targetSuspendedSize", "targetStoppedSize")
        )
        body = {
            "standbyPolicy": {"initialDelaySec": standby.initial_delay},
            mine: step.to,
            other: 0,
        }
        self._run(
            self._managers().patch(
                project=self.target.project,
                instanceGroupManager=self.target.instance_group_manager,
                body=body,
                requestId=str(uuid.uuid4()),
                **self._scope(),
            )
        )
        pool = "stopped" if standby.stopped else "suspended"
        return f"set pool: initial delay {standby.initial_delay}s, {pool} {step.was} -> {step.to}"

    def managed_instances(self) -> list[dict[str, Any]]:
        managers = self._managers()
        request = managers.listManagedInstances(
            project=self.target.project,
            instanceGroupManager=self.target.instance_group_manager,
            **self._scope(),
        )
        rows: list[dict[str, Any]] = []
        while request is not None:
            page = self.compute.call(request, self.name, self.where)
            rows += page.get("managedInstances", [])
            request = managers.listManagedInstances_next(request, page)
        return rows

    def _move(
        self,
        verb: str,
        status: str,
        count: int,
        rows: list[dict[str, Any]] | None = None,
        before_retry: Callable[[TargetError], None] | None = None,
    ) -> int:
        """`verb`Instances on up to `count` VMs in `status` with nothing under way; how many."""
        chosen = [
            row["instance"]
            for row in (self.managed_instances() if rows is None else rows)
            if row.get("instanceStatus") == status and row.get("currentAction") == "NONE"
        ][:count]
        if chosen:
            self._run(
                getattr(self._managers(), f"{verb}Instances")(
                    project=self.target.project,
                    instanceGroupManager=self.target.instance_group_manager,
                    body={"instances": chosen},
                    requestId=str(uuid.uuid4()),
                    **self._scope(),
                ),
                before_retry,
            )
        return len(chosen)

    def to_pool(
        self, was: int, to: int, before_retry: Callable[[TargetError], None] | None = None
    ) -> tuple[str, int, int]:
        """Suspend (stop) up to `was - to` running VMs. VMs still booting cannot be (the API
        takes running ones only): the pool's target is raised by as many of them as the pool has
        room for, so the group makes new VMs for the pool while the resize after deletes them.
        Returns what was done, how many were suspended, and how many the pool was raised by.
        `before_retry`: asked before the suspend (stop) is sent again after a refusal."""
        stopped = self._pool_stops
        verb = self._into_pool
        rows = self.managed_instances()
        moved = self._move(verb, "RUNNING", was - to, rows, before_retry)
        said = f"{verb} {moved} of {was - to} VMs (running {was} -> {was - moved})"
        booting = sum(
            1
            for row in rows
            if row.get("instanceStatus") in BOOTING and row.get("currentAction") != "DELETING"
        )
        fresh = min(booting, was - to - moved)
        if fresh:
            said += f"; {self._grow_pool(fresh, stopped)} for {fresh} still booting"
        return said, moved, fresh

    def _grow_pool(self, count: int, stopped: bool) -> str:
        """Raise the pool's target by `count`: the group makes as many VMs for it."""
        field = "targetStoppedSize" if stopped else "targetSuspendedSize"
        managers = self._managers()
        where = {
            "project": self.target.project,
            "instanceGroupManager": self.target.instance_group_manager,
            **self._scope(),
        }
        held = int(self.compute.call(managers.get(**where), self.name, self.where).get(field, 0))
        self._run(managers.patch(body={field: held + count}, requestId=str(uuid.uuid4()), **where))
        return f"pool {held} -> {held + count}"

    def from_pool(self, was: int, to: int) -> tuple[str, int]:
        verb, status = ("start", "TERMINATED") if self._pool_stops else ("resume", "SUSPENDED")
        moved = self._move(verb, status, to - was)
        return f"{verb} {moved} of {to - was} VMs (running {was} -> {was + moved})", moved

    def plan(self, change: Change, observed: Observed) -> tuple[Step, ...]:
        return plan(
            change,
            observed,
            handoff=isinstance(change.handoff, GCEAutoscalerHandoff),
            standby=self.target.standby,
        )

    @property
    def _pool_stops(self) -> bool:
        """The pool keeps stopped VMs (else suspended ones)."""
        return self.target.standby is not None and self.target.standby.stopped

    @property
    def _into_pool(self) -> str:
        """The verb that moves VMs into the pool."""
        return "stop" if self._pool_stops else "suspend"

    def _still_idle(
        self, recheck: Recheck, was: int, write: str = "resize to 0"
    ) -> Callable[[TargetError], None]:
        """Before a sleep's `write` that takes machines down (its resize, or suspending or
        stopping VMs into the pool) is sent again after a refusal: its sources read again, and
        the sleep withdrawn if work came or a read fails. The backoff delays (up to an
        interval each) are time for jobs to start on the machines the write takes down."""

        def ask(error: TargetError) -> None:
            reason = recheck()
            if reason is not None:
                refused = (
                    (f"HTTP {error.status} {error.reason}" if error.status else error.reason)
                    if isinstance(error, GCEError)
                    else error.detail
                )
                raise SleepWithdrawn(
                    self.name,
                    f"the sleep's {write} failed ({refused}) and was not sent again: "
                    f"{reason}; left at {was}, decided again at the next pass",
                )

        return ask

    def apply(self, change: Change, observed: Observed, recheck: Recheck | None = None) -> Applied:
        handoff = change.handoff if isinstance(change.handoff, GCEAutoscalerHandoff) else None

        def resize(was: int, to: int) -> str:
            again = None  # a sleep's resize is sent again only if the group is still idle
            if recheck is not None and change.replicas == 0 and to < was:
                again = self._still_idle(recheck, was)
            self.resize(to, again)
            return f"resize {was} -> {to}"

        def to_pool(was: int, to: int) -> tuple[str, int, int]:
            again = None  # so is a sleep's suspend (stop): the VMs' jobs would stop with them
            if recheck is not None and change.replicas == 0:
                again = self._still_idle(recheck, was, f"{self._into_pool} of {was - to} VMs")
            return self.to_pool(was, to, again)

        def delete(name: str) -> str:
            self.delete_autoscaler(name)
            return f"delete autoscaler {name}"

        def foreign(name: str) -> str:
            return (
                f"{self.where}/instanceGroupManagers/{self.target.instance_group_manager} "
                f"is autoscaled by {name}, which autozero did not create"
            )

        return converge(
            self.name,
            change,
            observed,
            handoff=handoff is not None,
            resize=resize,
            create_autoscaler=lambda: self.create_autoscaler(handoff) if handoff else "",
            delete_autoscaler=delete,
            foreign=foreign,
            standby=self.target.standby,
            pool=PoolWrites(self.configure_pool, to_pool, self.from_pool),
            recheck=recheck,
        )


# The kind: its schema fragments, parser and renderer, and hooks.


def _schema() -> Schema:
    return obj(
        "A GCE managed instance group, zonal (zone) or regional (region).",
        {
            "project": string("The GCE project.", minLength=1),
            "zone": string("The zone of a zonal group."),
            "region": string("The region of a regional group."),
            "instanceGroupManager": string("The group's name.", minLength=1),
            "credentials": secret_ref(
                "a service-account key (JSON) to call Compute Engine with "
                "instead of the operator's own identity"
            ),
            "standby": _standby_schema(),
        },
        required=["project", "instanceGroupManager"],
        rules=[
            (
                "has(self.zone) != has(self.region)",
                "set exactly one of zone or region",
            )
        ],
    )


def _standby_schema() -> Schema:
    return obj(
        "A standby pool: at Sleep, up to `size` of the running VMs are suspended (memory kept) "
        "or stopped (disk kept) instead of deleted, and a wake resumes or starts them before it "
        "creates any (docs/gce.md). Without it, Sleep deletes every VM.",
        {
            "mode": enum(
                "Suspend (billed for memory and disk storage) or Stop (disk only; boots again).",
                ["Suspend", "Stop"],
                default="Suspend",
            ),
            "size": integer("The most VMs kept in the pool (0 empties it).", minimum=0),
            "initialDelay": {
                **duration(
                    "How long a new VM runs before it may be suspended or stopped (its "
                    "startup script's time), at most 1h: the group's "
                    "standbyPolicy.initialDelaySec.",
                    "0s",
                ),
                "x-kubernetes-validations": [
                    {
                        "rule": "duration(self) <= duration('3600s')",
                        "message": "must be at most 1h (Compute Engine's limit)",
                    }
                ],
            },
        },
        required=["size"],
    )


def _parse_standby(standby: Mapping[str, Any] | None) -> Standby | None:
    if standby is None:
        return None
    delay = parse_duration(standby.get("initialDelay", "0s"))
    return Standby(
        size=int(standby["size"]),
        stopped=standby.get("mode", "Suspend") == "Stop",
        initial_delay=int(delay.total_seconds()),
    )


def _parse(gce: Mapping[str, Any]) -> GCETarget:
    ref = (gce.get("credentials") or {}).get("secretKeyRef")
    return GCETarget(
        gce["project"],
        gce["instanceGroupManager"],
        gce.get("zone"),
        gce.get("region"),
        SecretKeyRef(ref["name"], ref["key"]) if ref else None,
        _parse_standby(gce.get("standby")),
    )


def _render(target: GCETarget) -> dict[str, Any]:
    gce: dict[str, Any] = {
        "project": target.project,
        "instanceGroupManager": target.instance_group_manager,
    }
    gce.update({"zone": target.zone} if target.zone else {})
    gce.update({"region": target.region} if target.region else {})
    if target.credentials is not None:
        ref = target.credentials
        gce["credentials"] = {"secretKeyRef": {"name": ref.name, "key": ref.key}}
    if target.standby is not None:
        gce["standby"] = {
            "mode": "Stop" if target.standby.stopped else "Suspend",
            "size": target.standby.size,
            "initialDelay": format_duration(timedelta(seconds=target.standby.initial_delay)),
        }
    return gce


def _handoff_schema() -> Schema:
    return obj(
        "A GCE autoscaler created on wake and deleted before sleep.",
        {
            "minReplicas": integer("Autoscaler minimum.", minimum=1, default=1),
            "maxReplicas": integer("Autoscaler maximum.", minimum=1),
            "coolDownPeriod": duration("The VM initialisation period.", "60s"),
            "cpuUtilizationTarget": number(
                "CPU target (0-1].", minimum=0.01, maximum=1, default=0.6
            ),
            "stabilizationPeriod": duration("How long scale-in waits."),
        },
        required=["maxReplicas"],
        rules=[
            (
                "self.minReplicas <= self.maxReplicas",
                "minReplicas must not exceed maxReplicas",
            )
        ],
    )


def _parse_handoff(gce: Mapping[str, Any]) -> GCEAutoscalerHandoff:
    stabilization = gce.get("stabilizationPeriod")
    return GCEAutoscalerHandoff(
        min_replicas=gce["minReplicas"],
        max_replicas=gce["maxReplicas"],
        cool_down_period=parse_duration(gce["coolDownPeriod"]),
        cpu_utilization_target=float(gce["cpuUtilizationTarget"]),
        stabilization_period=parse_duration(stabilization) if stabilization else None,
    )


def _render_handoff(handoff: GCEAutoscalerHandoff) -> dict[str, Any]:
    out: dict[str, Any] = {
        "minReplicas": handoff.min_replicas,
        "maxReplicas": handoff.max_replicas,
        "coolDownPeriod": format_duration(handoff.cool_down_period),
        "cpuUtilizationTarget": handoff.cpu_utilization_target,
    }
    if handoff.stabilization_period is not None:
        out["stabilizationPeriod"] = format_duration(handoff.stabilization_period)
    return out


def _model(handoff: GCEAutoscalerHandoff, group: str) -> Any:
    from autozero.handoff_model import GCEAutoscalerModel  # the simulator's, not the runtime's

    return GCEAutoscalerModel(handoff, group)


def _refusals(policy: Policy, group: str, target: GCETarget, config: GCEConfig) -> list[Refusal]:
    """A project the policy's namespace was not allowed (the operator's identity reaches it)."""
    allow = config.gce_allow
    if allow.allows(policy.namespace, target.project):
        return []
    allowed = sorted(allow.projects(policy.namespace))
    return [
        Refusal(
            group,
            "GCEProjectNotAllowed",
            f"namespace {policy.namespace} may not target GCE project {target.project} "
            f"(allowed: {', '.join(allowed) or 'none'}); an administrator allows it with "
            f"the chart value gce.allowedProjects or the operator flag "
            f"--gce-allow {policy.namespace}={target.project}",
        )
    ]


def _assemble(policy: Policy, groups: Mapping[str, GCETarget], env: Environment) -> Assembled:
    """One Compute client per identity (the operator's own, or a key from a Secret), so that
    observing stays one list per location per identity."""
    from google.auth.exceptions import DefaultCredentialsError

    config: GCEConfig = env.config
    computes: dict[SecretKeyRef | None, tuple[Compute, dict[str, GCETarget]]] = {}
    targets: dict[str, ScaleTarget] = {}
    for name, target in groups.items():
        ref = target.credentials
        if ref not in computes:
            key = _service_account_key(policy, name, ref, env.resolve_secret)
            try:
                compute = Compute.build(
                    endpoint=config.gce_endpoint,
                    service_account_info=key,
                    retry=Retry.within(policy.polling_interval.total_seconds()),
                )
            except DefaultCredentialsError as exc:  # no key Secret, no endpoint, no ADC
                raise TargetConfigError(
                    name,
                    f"no Application Default Credentials for GCE project "
                    f"{target.project} ({str(exc).split('. ')[0].rstrip('.')}): set "
                    "GOOGLE_APPLICATION_CREDENTIALS to a service-account key file, run "
                    "`gcloud auth application-default login`, or name a key Secret in "
                    "target.gce.credentials",
                ) from None
            except ValueError:  # a key google-auth cannot load; its text is never shown
                raise TargetConfigError(
                    name,
                    f"secret {policy.namespace}/{ref.name if ref else '-'} holds a "
                    "service-account key that cannot be loaded",
                ) from None
            computes[ref] = (compute, {})
        compute, served = computes[ref]
        targets[name] = GCEGroup(name, target, compute)
        served[name] = target

    def observe(wanted: Collection[str]) -> dict[str, Observed | TargetError]:
        seen: dict[str, Observed | TargetError] = {}
        for compute, served in computes.values():
            mine = {name: target for name, target in served.items() if name in wanted}
            if mine:
                seen.update(observe_groups(compute, mine))
        return seen

    return Assembled(targets, observe)


def _service_account_key(
    policy: Policy, group: str, ref: SecretKeyRef | None, resolve_secret: SecretResolver
) -> Mapping[str, Any] | None:
    """The service-account key a GCE target names, from the policy's namespace; None for the
    operator's own identity. The key's content never appears in an error."""
    if ref is None:
        return None
    where = f"secret {policy.namespace}/{ref.name} key {ref.key!r}"
    try:
        text = resolve_secret(ref.name, ref.key)
    except SecretUnavailable as exc:  # which of no Secret, no key, forbidden... it says
        error = TargetConfigError(group, str(exc))
        error.retryable = exc.retryable
        raise error from exc
    except KeyError as exc:  # a plain resolver (a mapping): the key is not there
        raise TargetConfigError(group, f"{where} does not exist") from exc
    try:
        key = json.loads(text)
    except ValueError:
        key = None
    if not isinstance(key, dict) or key.get("type") != "service_account":
        raise TargetConfigError(group, f"{where} is not a service-account key (JSON)") from None
    return key


KIND = TargetKind(
    key="gce",
    spec=GCETarget,
    schema=_schema,
    parse=_parse,
    render=_render,
    assemble=_assemble,
    refusals=_refusals,
    standby=lambda target: target.standby,
    handoff=HandoffKind(
        key="gceAutoscaler",
        autoscaler="GCE autoscaler",
        schema=_handoff_schema,
        parse=_parse_handoff,
        render=_render_handoff,
        model=_model,
        named=lambda target: autoscaler_name(target.instance_group_manager),
        examples=({"maxReplicas": 5, "coolDownPeriod": "3m", "cpuUtilizationTarget": 0.8},),
    ),
    examples=(
        {"project": "proj", "zone": "europe-west1-c", "instanceGroupManager": "mig"},
        {
            "project": "proj",
            "region": "europe-west1",
            "instanceGroupManager": "mig",
            "credentials": {"secretKeyRef": {"name": "gce-key", "key": "key.json"}},
        },
        {
            "project": "proj",
            "zone": "europe-west1-c",
            "instanceGroupManager": "mig",
            "standby": {"mode": "Suspend", "size": 3, "initialDelay": "2m"},
        },
    ),
)
