"""The emulated Compute Engine: managed instance groups, their instances, autoscalers, operations.

Time drives everything, as in the real service: a mutation returns a PENDING Operation at once and
takes effect when the Operation reaches DONE; instances take time to boot and to stop; an
autoscaler re-evaluates its group every period. `advance()` moves the world to the present and is
called before every request and by a ticker thread, so the world moves even when nobody asks.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gce_emulator.errors import ApiError, condition_not_met, invalid, not_found


def rfc3339(moment: float) -> str:
    return datetime.fromtimestamp(moment, tz=UTC).isoformat(timespec="milliseconds")


@dataclass
class Settings:
    operation_seconds: float = 0.5  # PENDING for the first fifth, then RUNNING, then DONE
    instance_boot_seconds: float = 1.0
    instance_stop_seconds: float = 0.5
    autoscaler_period_seconds: float = 1.0
    wait_timeout_seconds: float = 120.0  # operations.wait returns by then, done or not
    requests_per_minute: int | None = None  # the rate quota; None: unlimited
    instance_command: list[str] | None = None  # run while each instance is RUNNING (the demo)
    instance_env: dict[str, str] = field(default_factory=dict)


@dataclass
class Scope:
    project: str
    kind: str  # "zones" or "regions"
    location: str

    @property
    def path(self) -> str:
        return f"projects/{self.project}/{self.kind}/{self.location}"


@dataclass
class Instance:
    name: str
    id: int
    action: str  # CREATING, NONE, DELETING
    changes_at: float
    process: subprocess.Popen[bytes] | None = None

    @property
    def status(self) -> str:
        return {"CREATING": "PROVISIONING", "NONE": "RUNNING", "DELETING": "STOPPING"}[self.action]


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
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.groups: dict[tuple[str, str, str, str], Group] = {}
        self.autoscalers: dict[tuple[str, str, str, str], Autoscaler] = {}
        self.operations: dict[tuple[str, str, str, str], Operation] = {}
        self.request_ids: dict[str, Operation] = {}
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
    ) -> Operation:
        """A PENDING Operation whose `effect` runs when it completes. Same requestId, same op."""
        if request_id:
            previous = self.request_ids.get(request_id)
            if previous is not None:
                return previous
        now = time.time()
        length = self.settings.operation_seconds
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
        current = max(1, len([i for i in group.instances if i.action != "DELETING"]))
        target = (policy.get("cpuUtilization") or {}).get("utilizationTarget", 0.6)
        wanted = math.ceil(current * group.cpu_utilization / target) if target else current
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
            if instance.action == "CREATING" and now >= instance.changes_at:
                instance.action = "NONE"
                instance.process = self._start_process(group, instance)
                moved = True
            elif instance.action == "DELETING" and now >= instance.changes_at:
                self.stop_process(instance)
                group.instances.remove(instance)
                moved = True
        alive = [i for i in group.instances if i.action != "DELETING"]
        while len(alive) < group.target_size:
            instance = Instance(
                name=f"{group.base_instance_name}-{self.next_id() % 100000:05d}",
                id=self.next_id(),
                action="CREATING",
                changes_at=now + self.settings.instance_boot_seconds,
            )
            group.instances.append(instance)
            alive.append(instance)
            moved = True
        # Scale-in removes the newest instances first (the real MIG prefers the unhealthy and
        # the not-yet-running, which are the newest here).
        for instance in reversed(alive[group.target_size :]):
            instance.action = "DELETING"
            instance.changes_at = now + self.settings.instance_stop_seconds
            moved = True
        return moved

    def is_stable(self, group: Group) -> bool:
        return all(i.action == "NONE" for i in group.instances) and len(group.instances) == (
            group.target_size
        )

    def _start_process(self, group: Group, instance: Instance) -> subprocess.Popen[bytes] | None:
        command = self.settings.instance_command
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

    @staticmethod
    def stop_process(instance: Instance) -> None:
        process = instance.process
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
        instance.process = None

    def stop_all_processes(self) -> None:
        with self.lock:
            for group in self.groups.values():
                for instance in group.instances:
                    self.stop_process(instance)

    def reset(self) -> None:
        with self.lock:
            self.stop_all_processes()
            self.groups.clear()
            self.autoscalers.clear()
            self.operations.clear()
            self.request_ids.clear()
