"""The emulated Compute Engine: managed instance groups, their instances, autoscalers, operations.

Time drives everything, as in the real service: a mutation returns a PENDING Operation at once and
takes effect when the Operation reaches DONE; instances take time to boot and to stop; an
autoscaler re-evaluates its group every period. `advance()` moves the world to the present and is
called before every request and by a ticker thread, so the world moves even when nobody asks.

Standby pools: every instance has a role (running, suspended or stopped) and the group keeps as
many of each as its targetSize, targetSuspendedSize and targetStoppedSize say, level-triggered: an
instance whose status does not match its role is moved towards it (resume, start, suspend, stop),
a missing one is created (and, for a pool, suspended or stopped once standbyPolicy.initialDelaySec
has passed since its creation), a surplus one deleted. In SCALE_OUT_POOL mode a scale-out takes
pool instances first and the pool is refilled afterwards by new ones.

Timings are this emulator's stated assumptions (`Settings`), not measurements of Compute Engine:
Google publishes no boot, resume or start durations.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import random
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from gce_emulator.errors import ApiError, condition_not_met, invalid, not_found


def rfc3339(moment: float) -> str:
    return datetime.fromtimestamp(moment, tz=UTC).isoformat(timespec="milliseconds")


@dataclass
class Settings:
    operation_seconds: float = 0.5  # PENDING for the first fifth, then RUNNING, then DONE
    instance_boot_seconds: float = 1.0  # create -> RUNNING (PROVISIONING, then STAGING)
    instance_stop_seconds: float = 0.5  # delete, and stop (STOPPING -> TERMINATED)
    instance_resume_seconds: float = 0.3  # SUSPENDED -> RUNNING (assumed, not measured)
    instance_start_seconds: float = 0.6  # TERMINATED -> RUNNING (assumed, not measured)
    instance_suspend_seconds: float = 0.3  # RUNNING -> SUSPENDED (assumed, not measured)
    autoscaler_period_seconds: float = 1.0
    wait_timeout_seconds: float = 120.0  # operations.wait returns by then, done or not
    requests_per_minute: int | None = None  # the rate quota; None: unlimited
    instance_command: list[str] | None = None  # run while each instance is RUNNING (the demo)
    # Per group name, a command that replaces instance_command for that group's instances: two
    # groups of one emulator running different workers (the chaos campaign's MIGs).
    group_commands: dict[str, list[str]] = field(default_factory=dict)
    instance_env: dict[str, str] = field(default_factory=dict)
    failed_operations: float = 0.0  # the share of new operations that end in error (faults)


@dataclass
class Scope:
    project: str
    kind: str  # "zones" or "regions"
    location: str

    @property
    def path(self) -> str:
        return f"projects/{self.project}/{self.kind}/{self.location}"


RUNNING, SUSPENDED, STOPPED = "RUNNING", "SUSPENDED", "STOPPED"  # an instance's role
SETTLED = {RUNNING: "RUNNING", SUSPENDED: "SUSPENDED", STOPPED: "TERMINATED"}  # role -> status
POOL_MODES = ("MANUAL", "SCALE_OUT_POOL")
PAST = {"suspend": "suspended", "stop": "stopped", "resume": "resumed", "start": "started"}


@dataclass
class Instance:
    """One VM of a group. `action` is the managed instance's currentAction; `changes_at` is when
    the transition under way ends (None: nothing under way, though one may be scheduled)."""

    name: str
    id: int
    created: float
    role: str = RUNNING
    status: str = "PROVISIONING"
    action: str = "CREATING"
    changes_at: float | None = None
    staging_at: float | None = None
    force: bool = False  # suspend/stop without waiting for initialDelaySec
    process: subprocess.Popen[bytes] | None = None

    @property
    def settled(self) -> bool:
        return self.changes_at is None and self.status == SETTLED[self.role]


@dataclass
class Group:
    scope: Scope
    name: str
    id: int
    base_instance_name: str
    instance_template: str
    target_size: int
    created: float
    instances: list[Instance] = field(default_factory=list)
    autoscaler: str | None = None  # the selfLink of the autoscaler targeting it
    cpu_utilization: float = 0.0  # what the emulated autoscaler sees (set by tests / the demo)
    fingerprint: int = 0
    target_suspended_size: int = 0
    target_stopped_size: int = 0
    standby_mode: str = "MANUAL"
    initial_delay_sec: int = 0

    def target_of(self, role: str) -> int:
        return {
            RUNNING: self.target_size,
            SUSPENDED: self.target_suspended_size,
            STOPPED: self.target_stopped_size,
        }[role]

    def members(self, role: str) -> list[Instance]:
        return [i for i in self.instances if i.role == role and i.action != "DELETING"]


@dataclass
class Autoscaler:
    scope: Scope
    name: str
    id: int
    target: str
    policy: dict[str, Any]
    created: float
    next_evaluation: float = 0.0
    recommended: int | None = None


@dataclass
class Operation:
    scope: Scope
    name: str
    id: int
    operation_type: str
    target_link: str
    target_id: int
    inserted: float
    starts: float
    done: float
    effect: Callable[[], None] | None
    error: ApiError | None = None
    applied: bool = False

    def status(self, now: float) -> str:
        if self.applied:
            return "DONE"
        return "PENDING" if now < self.starts else "RUNNING"


class World:
    def __init__(self, base_url: str, settings: Settings | None = None) -> None:
        self.base_url = base_url.rstrip("/") + "/compute/v1/"
        self.settings = settings or Settings()
        self.failing = random.Random(0)  # which operations `failed_operations` fails
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.groups: dict[tuple[str, str, str, str], Group] = {}
        self.autoscalers: dict[tuple[str, str, str, str], Autoscaler] = {}
        self.operations: dict[tuple[str, str, str, str], Operation] = {}
        self.request_ids: dict[str, Operation] = {}
        self.exiting: set[subprocess.Popen[bytes]] = set()  # stopped VMs' processes, finishing
        self._ids = itertools.count(1_000_000_001)

    # -- identity -----------------------------------------------------------------------------
    def next_id(self) -> int:
        return next(self._ids)

    def link(self, scope: Scope, collection: str, name: str) -> str:
        return f"{self.base_url}{scope.path}/{collection}/{name}"

    def scope_link(self, scope: Scope) -> str:
        return f"{self.base_url}{scope.path}"

    # -- lookups ------------------------------------------------------------------------------
    def group(self, scope: Scope, name: str) -> Group:
        found = self.groups.get((scope.project, scope.kind, scope.location, name))
        if found is None:
            raise not_found(f"{scope.path}/instanceGroupManagers/{name}")
        return found

    def autoscaler(self, scope: Scope, name: str) -> Autoscaler:
        found = self.autoscalers.get((scope.project, scope.kind, scope.location, name))
        if found is None:
            raise not_found(f"{scope.path}/autoscalers/{name}")
        return found

    def operation(self, scope: Scope, name: str) -> Operation:
        found = self.operations.get((scope.project, scope.kind, scope.location, name))
        if found is None:
            raise not_found(f"{scope.path}/operations/{name}")
        return found

    def group_by_link(self, link: str) -> Group | None:
        for group in self.groups.values():
            if self.link(group.scope, "instanceGroupManagers", group.name) == link:
                return group
        return None

    # -- operations ---------------------------------------------------------------------------
    def start_operation(
        self,
        scope: Scope,
        operation_type: str,
        target_link: str,
        target_id: int,
        effect: Callable[[], None] | None,
        request_id: str | None,
        undo: Callable[[], None] | None = None,
    ) -> Operation:
        """A PENDING Operation whose `effect` runs when it completes. Same requestId, same op.
        One that fails (`failed_operations`) runs `undo` instead: an insert's name, reserved
        while its operation ran, is free again, as GCE frees it."""
        if request_id:
            previous = self.request_ids.get(request_id)
            if previous is not None:
                return previous
        now = time.time()
        length = self.settings.operation_seconds
        if self.settings.failed_operations and (
            self.failing.random() < self.settings.failed_operations
        ):
            effect = partial(_operation_failed, undo)  # accepted, then DONE in error
        op = Operation(
            scope=scope,
            name=f"operation-{int(now * 1000)}-{self.next_id()}",
            id=self.next_id(),
            operation_type=operation_type,
            target_link=target_link,
            target_id=target_id,
            inserted=now,
            starts=now + length / 5,
            done=now + length,
            effect=effect,
        )
        self.operations[(scope.project, scope.kind, scope.location, op.name)] = op
        if request_id:
            self.request_ids[request_id] = op
        return op

    # -- mutations (validated now, applied when their operation completes) ---------------------
    def resize(self, group: Group, size: int) -> Callable[[], None]:
        if size < 0:
            raise invalid(
                f"Invalid value for field 'size': '{size}'. Must be greater than or equal to 0."
            )
        if group.autoscaler is not None:
            autoscaler = self._autoscaler_by_link(group.autoscaler)
            mode = (autoscaler.policy.get("mode") or "ON") if autoscaler else "ON"
            if mode != "OFF":
                raise condition_not_met(
                    f"Resource '{group.scope.path}/instanceGroupManagers/{group.name}' is "
                    f"autoscaled by '{group.autoscaler}' in mode {mode}: resize is not allowed; "
                    "delete the autoscaler or set its mode to OFF."
                )

        def effect() -> None:
            group.target_size = size
            group.fingerprint += 1

        return effect

    def _autoscaler_by_link(self, link: str) -> Autoscaler | None:
        for autoscaler in self.autoscalers.values():
            if self.link(autoscaler.scope, "autoscalers", autoscaler.name) == link:
                return autoscaler
        return None

    @staticmethod
    def check_policy(policy: dict[str, Any]) -> None:
        low = policy.get("minNumReplicas", 0)
        high = policy.get("maxNumReplicas")
        if high is None:
            raise invalid(
                "Invalid value for field 'autoscaler.autoscalingPolicy.maxNumReplicas': "
                "must be set."
            )
        if low > high:
            raise invalid(
                f"Invalid value for field 'autoscaler.autoscalingPolicy.minNumReplicas': '{low}'."
                f" Must be less than or equal to maxNumReplicas ({high})."
            )
        mode = policy.get("mode", "ON")
        if mode not in ("ON", "OFF", "ONLY_SCALE_OUT", "ONLY_UP"):
            raise invalid(f"Invalid value for field 'autoscaler.autoscalingPolicy.mode': '{mode}'.")

    # -- time ---------------------------------------------------------------------------------
    def advance(self) -> None:
        with self.lock:
            now = time.time()
            moved = False
            for op in list(self.operations.values()):
                if not op.applied and now >= op.done:
                    try:
                        if op.effect is not None:
                            op.effect()
                    except ApiError as error:
                        op.error = error
                    op.applied = True
                    moved = True
            for autoscaler in list(self.autoscalers.values()):
                moved |= self._autoscale(autoscaler, now)
            for group in list(self.groups.values()):
                moved |= self._reconcile(group, now)
            if moved:
                self.changed.notify_all()

    def _autoscale(self, autoscaler: Autoscaler, now: float) -> bool:
        if now < autoscaler.next_evaluation:
            return False
        autoscaler.next_evaluation = now + self.settings.autoscaler_period_seconds
        group = self.group_by_link(autoscaler.target)
        policy = autoscaler.policy
        mode = policy.get("mode", "ON")
        if group is None or mode == "OFF":
            return False
        current = max(1, len(group.members(RUNNING)))
        target = (policy.get("cpuUtilization") or {}).get("utilizationTarget", 0.6)
        # Rounded first: 3 VMs at exactly the target (0.8 / 0.8) is 3, not ceil(3.0000000000000004).
        ratio = round(current * group.cpu_utilization / target, 9) if target else current
        wanted = math.ceil(ratio)
        wanted = max(policy.get("minNumReplicas", 0), min(policy["maxNumReplicas"], wanted))
        if mode in ("ONLY_SCALE_OUT", "ONLY_UP"):
            wanted = max(wanted, group.target_size)
        autoscaler.recommended = wanted
        if wanted != group.target_size:
            group.target_size = wanted
            return True
        return False

    def _reconcile(self, group: Group, now: float) -> bool:
        moved = False
        for instance in list(group.instances):
            moved |= self._step(group, instance, now)
        for role in (RUNNING, SUSPENDED, STOPPED):
            members = group.members(role)
            wanted = group.target_of(role)
            if role == RUNNING and len(members) < wanted and group.standby_mode == "SCALE_OUT_POOL":
                # Scale-out from the pool first (settled ones first); the pool refills below.
                pool = group.members(SUSPENDED) + group.members(STOPPED)
                pool.sort(key=lambda i: (not i.settled, i.created))
                for instance in pool[: wanted - len(members)]:
                    instance.role = RUNNING
                    members.append(instance)
                    moved |= self._step(group, instance, now)
            while len(members) < wanted:
                members.append(self._create(group, role, now))
                moved = True
            # Scale-in removes the newest instances first (the real MIG prefers the unhealthy and
            # the not-yet-running, which are the newest here).
            for instance in sorted(members, key=lambda i: i.created)[wanted:]:
                self._delete(instance, now)
                moved = True
        return moved

    def _create(self, group: Group, role: str, now: float) -> Instance:
        boot = self.settings.instance_boot_seconds
        instance = Instance(
            name=f"{group.base_instance_name}-{self.next_id() % 100000:05d}",
            id=self.next_id(),
            created=now,
            role=role,
            changes_at=now + boot,
            staging_at=now + boot / 2,
        )
        group.instances.append(instance)
        return instance

    def _delete(self, instance: Instance, now: float) -> None:
        if instance.process is not None:
            self._signal(instance, signal.SIGCONT)  # a suspended one must be able to exit
        instance.action = "DELETING"
        instance.status = "STOPPING"
        instance.changes_at = now + self.settings.instance_stop_seconds

    def _step(self, group: Group, instance: Instance, now: float) -> bool:
        """Move one instance along: finish the transition under way, or start the one its role
        asks for. Returns whether anything changed."""
        finished = False
        if instance.changes_at is not None:
            if now < instance.changes_at:
                if instance.staging_at is not None and now >= instance.staging_at:
                    instance.status, instance.staging_at = "STAGING", None
                    return True
                return False
            self._finish(group, instance)
            if instance.action == "DELETING":
                return True
            finished = True
        if instance.status == SETTLED[instance.role]:
            changed = instance.action != "NONE"
            instance.action = "NONE"
            return changed or finished
        return self._begin(group, instance, now) or finished

    def _finish(self, group: Group, instance: Instance) -> None:
        action = instance.action
        instance.changes_at = instance.staging_at = None
        if action == "DELETING":
            self.stop_process(instance, wait=False)
            group.instances.remove(instance)
            return
        instance.status = {"SUSPENDING": "SUSPENDED", "STOPPING": "TERMINATED"}.get(
            action, "RUNNING"
        )
        instance.action = "NONE"
        if action in ("CREATING", "STARTING"):
            instance.process = self._start_process(group, instance)
        elif action == "RESUMING":
            self._signal(instance, signal.SIGCONT)  # memory kept: the same process goes on
        instance.force = False

    def _begin(self, group: Group, instance: Instance, now: float) -> bool:
        """Start the transition from the instance's status towards its role's."""
        settings = self.settings
        if instance.status == "SUSPENDED":  # to run, or to be stopped: resume first
            instance.action, instance.status = "RESUMING", "STAGING"
            instance.changes_at = now + settings.instance_resume_seconds
            return True
        if instance.status == "TERMINATED":
            instance.action, instance.status = "STARTING", "STAGING"
            instance.changes_at = now + settings.instance_start_seconds
            return True
        # RUNNING, to be suspended or stopped: scheduled until initialDelaySec after creation.
        verb = "SUSPENDING" if instance.role == SUSPENDED else "STOPPING"
        if not instance.force and now < instance.created + group.initial_delay_sec:
            changed = instance.action != verb
            instance.action = verb  # scheduled: the status stays RUNNING
            return changed
        instance.action = instance.status = verb
        if verb == "SUSPENDING":
            self._signal(instance, signal.SIGSTOP)  # memory kept: the process is frozen
            instance.changes_at = now + settings.instance_suspend_seconds
        else:
            self.stop_process(instance, wait=False)
            instance.changes_at = now + settings.instance_stop_seconds
        return True

    @staticmethod
    def _signal(instance: Instance, signum: int) -> None:
        if instance.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(instance.process.pid, signum)

    def is_stable(self, group: Group) -> bool:
        return all(i.action == "NONE" for i in group.instances) and all(
            len(group.members(role)) == group.target_of(role)
            for role in (RUNNING, SUSPENDED, STOPPED)
        )

    # -- standby pools: suspend/resume/stop/start (validated now, applied at DONE) -------------
    def move_instances(
        self, group: Group, urls: list[str], verb: str, force: bool = False
    ) -> Callable[[], None]:
        """suspendInstances/resumeInstances/stopInstances/startInstances: the named instances
        change role, and targetSize and the pool's target change by as many."""
        source, dest, status = {
            "suspend": (RUNNING, SUSPENDED, "RUNNING"),
            "stop": (RUNNING, STOPPED, "RUNNING"),
            "resume": (SUSPENDED, RUNNING, "SUSPENDED"),
            "start": (STOPPED, RUNNING, "TERMINATED"),
        }[verb]
        if not urls:
            raise invalid("Invalid value for field 'instances': ''. At least one is required.")
        chosen: list[Instance] = []
        for url in urls:
            name = url.rstrip("/").rsplit("/", 1)[-1]
            found = next((i for i in group.instances if i.name == name), None)
            if found is None or "/instances/" not in "/" + url.lstrip("/"):
                raise invalid(
                    f"Invalid value for field 'instances': '{url}'. The instance is not a "
                    f"member of instance group manager '{group.name}'."
                )
            if found.role != source or found.status != status or found.action == "DELETING":
                raise invalid(
                    f"Invalid value for field 'instances': '{url}'. Instance '{name}' cannot "
                    f"be {PAST[verb]}: its status is "
                    f"{found.status} and its current action {found.action}; only "
                    f"{status} instances can be."
                )
            if found in chosen:
                raise invalid(f"Invalid value for field 'instances': '{url}'. Duplicate.")
            chosen.append(found)

        def effect() -> None:
            for instance in chosen:
                if instance not in group.instances or instance.role != source:
                    raise invalid(f"Instance '{instance.name}' changed before the operation ran.")
            for instance in chosen:
                instance.role = dest
                instance.force = force
            count = len(chosen)
            group.target_size += count if dest == RUNNING else -count
            pool = dest if dest != RUNNING else source
            if pool == SUSPENDED:
                group.target_suspended_size += count if dest == SUSPENDED else -count
            else:
                group.target_stopped_size += count if dest == STOPPED else -count
            group.fingerprint += 1

        return effect

    def change_group(self, group: Group, body: dict[str, Any], replace: bool) -> Callable[[], None]:
        """patch (merge) or update (replace) of the fields this emulator models."""
        sizes: dict[str, int] = {}
        for key in ("targetSize", "targetSuspendedSize", "targetStoppedSize"):
            if key in body:
                value = body[key]
                if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                    raise invalid(
                        f"Invalid value for field 'resource.{key}': '{value}'. "
                        "Must be greater than or equal to 0."
                    )
                sizes[key] = value
        if "targetSize" in sizes and sizes["targetSize"] != group.target_size:
            self.resize(group, sizes["targetSize"])  # the autoscaler check
        standby = body.get("standbyPolicy")
        if standby is None and replace:
            standby = {}
        mode, delay = group.standby_mode, group.initial_delay_sec
        if standby is not None:
            if not isinstance(standby, dict):
                raise invalid(f"Invalid value for field 'resource.standbyPolicy': '{standby}'.")
            if replace:
                mode, delay = "MANUAL", 0
            mode = standby.get("mode", mode)
            delay = standby.get("initialDelaySec", delay)
            if mode not in POOL_MODES:
                raise invalid(f"Invalid value for field 'resource.standbyPolicy.mode': '{mode}'.")
            if not isinstance(delay, int) or isinstance(delay, bool) or not 0 <= delay <= 3600:
                raise invalid(
                    f"Invalid value for field 'resource.standbyPolicy.initialDelaySec': "
                    f"'{delay}'. Must be between 0 and 3600."
                )
        template = body.get("instanceTemplate")
        if template is not None and not isinstance(template, str):
            raise invalid(f"Invalid value for field 'resource.instanceTemplate': '{template}'.")

        def effect() -> None:
            group.target_size = sizes.get("targetSize", group.target_size)
            group.target_suspended_size = sizes.get(
                "targetSuspendedSize", group.target_suspended_size
            )
            group.target_stopped_size = sizes.get("targetStoppedSize", group.target_stopped_size)
            group.standby_mode, group.initial_delay_sec = mode, delay
            if template is not None:
                group.instance_template = self.template_link(group.scope.project, template)
            group.fingerprint += 1

        return effect

    def template_link(self, project: str, template: str) -> str:
        """The full URL the API returns for an instance template given as a partial one."""
        if template.startswith(("http://", "https://")):
            return template
        if template.startswith(("global/", "regions/")):
            template = f"projects/{project}/{template}"
        return self.base_url + template.lstrip("/")

    def delete_underneath(self, group: Group, name: str) -> None:
        """instances.delete on a managed VM, behind the group's back: the group recreates it."""
        found = next((i for i in group.instances if i.name == name), None)
        if found is None:
            raise not_found(f"{group.scope.path}/instances/{name}")
        self.stop_process(found, wait=False)
        group.instances.remove(found)

    def _start_process(self, group: Group, instance: Instance) -> subprocess.Popen[bytes] | None:
        command = self.settings.group_commands.get(group.name, self.settings.instance_command)
        if not command:
            return None
        env = {
            **os.environ,
            **self.settings.instance_env,
            "GCE_PROJECT": group.scope.project,
            "GCE_LOCATION": group.scope.location,
            "GCE_GROUP": group.name,
            "GCE_INSTANCE": instance.name,
        }
        return subprocess.Popen(command, env=env, start_new_session=True, stdin=subprocess.DEVNULL)

    def stop_process(self, instance: Instance, *, wait: bool = True) -> None:
        """SIGTERM the instance's process (SIGKILL after 10 s). `wait=False` when the world's
        lock is held: a worker finishing its job in hand takes seconds, and the API must go on
        answering meanwhile (a real VM's shutdown freezes no API call)."""
        process = instance.process
        if process is None:
            return
        instance.process = None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
            os.killpg(process.pid, signal.SIGCONT)  # a suspended (stopped) one must run to exit
        if wait:
            _reap(process)
            return
        with self.lock:
            self.exiting.add(process)
        threading.Thread(target=self._reap_later, args=(process,), daemon=True).start()

    def _reap_later(self, process: subprocess.Popen[bytes]) -> None:
        _reap(process)
        with self.lock:
            self.exiting.discard(process)

    def stop_all_processes(self) -> None:
        with self.lock:
            for group in self.groups.values():
                for instance in group.instances:
                    self.stop_process(instance)
            exiting = list(self.exiting)
        for process in exiting:  # those of deleted or stopped VMs, still finishing
            _reap(process)

    def reset(self) -> None:
        with self.lock:
            self.stop_all_processes()
            self.groups.clear()
            self.autoscalers.clear()
            self.operations.clear()
            self.request_ids.clear()


def _reap(process: subprocess.Popen[bytes]) -> None:
    """Wait for a SIGTERMed process; SIGKILL it after 10 s."""
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


def _operation_failed(undo: Callable[[], None] | None) -> None:
    if undo is not None:
        undo()
    raise ApiError(500, "internalError", "Internal error. The operation failed; try again.")
