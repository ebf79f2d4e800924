"""The HTTP face of the emulator: the real API's paths, bodies, pagination and errors, plus a
control API under /_emulator/ for tests (faults, request log, settings, CPU, reset)."""

from __future__ import annotations

import base64
import json
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from gce_emulator.errors import FAULTS, ApiError, already_exists, invalid, not_found, rate_limited
from gce_emulator.world import (
    Autoscaler,
    Group,
    Operation,
    Scope,
    Settings,
    World,
    rfc3339,
)

NAME = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
SCOPED = r"^/compute/v1/projects/(?P<project>[^/]+)/(?P<kind>zones|regions)/(?P<location>[^/]+)"
AGGREGATED = r"^/compute/v1/projects/(?P<project>[^/]+)/aggregated"
ACTIONS = (
    "abandoning",
    "creating",
    "creatingWithoutRetries",
    "deleting",
    "none",
    "recreating",
    "refreshing",
    "restarting",
    "resuming",
    "starting",
    "stopping",
    "suspending",
    "verifying",
)

Handler = Callable[["Request"], tuple[int, Any]]


class Request:
    def __init__(
        self, method: str, path: str, query: dict[str, list[str]], body: Any, params: dict[str, str]
    ) -> None:
        self.method, self.path, self.query, self.body, self.params = (
            method,
            path,
            query,
            body,
            params,
        )

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    @property
    def scope(self) -> Scope:
        return Scope(self.params["project"], self.params["kind"], self.params["location"])


class Faults:
    """POST /_emulator/faults: `rate` (the share of requests refused), `codes` (drawn from),
    `latencyMs` (before each request), `seed`, and `apis` (only these methods, e.g.
    `instanceGroupManagers.suspendInstances`, are refused; all when absent)."""

    def __init__(self) -> None:
        self.rate = 0.0
        self.codes: list[int] = [503]
        self.latency_seconds = 0.0
        self.random = random.Random(0)
        self.apis: frozenset[str] | None = None  # only these methods fail (None: every one)

    def configure(self, body: dict[str, Any]) -> None:
        self.rate = float(body.get("rate", 0.0))
        self.codes = [int(c) for c in body.get("codes", [503])]
        self.latency_seconds = float(body.get("latencyMs", 0)) / 1000
        self.random = random.Random(body.get("seed", 0))
        apis = body.get("apis")
        self.apis = frozenset(apis) if apis is not None else None


class Emulator:
    """The routes and the shared state of one emulator instance."""

    def __init__(self, base_url: str, settings: Settings | None = None) -> None:
        self.world = World(base_url, settings)
        self.faults = Faults()
        self.log: list[dict[str, Any]] = []
        self.quota_window: deque[float] = deque()
        self.reserved: set[tuple[str, str, str, str, str]] = set()
        self.tokens_issued: list[str] = []  # service accounts that got a token
        self.token_owner: dict[str, str] = {}  # access token -> the service account it was for
        self.routes: list[tuple[str, re.Pattern[str], Handler, str]] = []
        self._route()

    # -- routing ------------------------------------------------------------------------------
    def add(self, method: str, pattern: str, handler: Handler, name: str) -> None:
        self.routes.append((method, re.compile(pattern + "$"), handler, name))

    def _route(self) -> None:
        igm, asc, ops = (
            SCOPED + "/instanceGroupManagers",
            SCOPED + "/autoscalers",
            SCOPED + "/operations",
        )
        one = r"/(?P<name>[^/]+)"
        self.add("GET", igm, self.list_groups, "instanceGroupManagers.list")
        self.add("POST", igm, self.insert_group, "instanceGroupManagers.insert")
        self.add("GET", igm + one, self.get_group, "instanceGroupManagers.get")
        self.add("DELETE", igm + one, self.delete_group, "instanceGroupManagers.delete")
        self.add("POST", igm + one + "/resize", self.resize_group, "instanceGroupManagers.resize")
        self.add("PATCH", igm + one, self.patch_group, "instanceGroupManagers.patch")
        self.add("PUT", igm + one, self.update_group, "instanceGroupManagers.update")
        for verb in ("suspend", "resume", "stop", "start"):
            self.add(
                "POST",
                igm + one + f"/{verb}Instances",
                self._mover(verb),
                f"instanceGroupManagers.{verb}Instances",
            )
        self.add(
            "POST",
            igm + one + "/listManagedInstances",
            self.list_instances,
            "instanceGroupManagers.listManagedInstances",
        )
        self.add(
            "GET",
            AGGREGATED + "/instanceGroupManagers",
            self.aggregated_groups,
            "instanceGroupManagers.aggregatedList",
        )
        self.add("GET", asc, self.list_autoscalers, "autoscalers.list")
        self.add("POST", asc, self.insert_autoscaler, "autoscalers.insert")
        self.add("PATCH", asc, self.patch_autoscaler, "autoscalers.patch")
        self.add("PUT", asc, self.update_autoscaler, "autoscalers.update")
        self.add("GET", asc + one, self.get_autoscaler, "autoscalers.get")
        self.add("DELETE", asc + one, self.delete_autoscaler, "autoscalers.delete")
        self.add(
            "GET",
            AGGREGATED + "/autoscalers",
            self.aggregated_autoscalers,
            "autoscalers.aggregatedList",
        )
        self.add("GET", ops, self.list_operations, "operations.list")
        self.add("GET", ops + one, self.get_operation, "operations.get")
        self.add("POST", ops + one + "/wait", self.wait_operation, "operations.wait")

    def dispatch(
        self, method: str, raw_path: str, body: Any, authorization: str = ""
    ) -> tuple[int, Any]:
        parts = urlsplit(raw_path)
        query = parse_qs(parts.query)
        if parts.path.startswith("/_emulator/"):
            return self.control(method, parts.path, body)
        if parts.path == "/token" and method == "POST":
            return self.token(body)
        scheme, _, credential = authorization.partition(" ") if authorization else ("none", "", "")
        scheme = scheme.lower()
        with self.world.lock:
            principal = self.token_owner.get(credential.strip(), "anonymous")
        entry: dict[str, Any] = {
            "method": method,
            "path": parts.path,
            "query": parts.query,
            "at": time.time(),
            "api": None,
            "project": None,
            "auth": scheme,
            "principal": principal,  # the service account of the bearer token, never the token
        }
        status, answer = self._api(method, parts.path, query, body, entry)
        entry["status"] = status
        entry["answered"] = time.time()  # with `at`: how long the call took (injected latency)
        if isinstance(answer, dict) and answer.get("kind") == "compute#operation":
            entry["operation"] = answer.get("name")  # its outcome: GET the operation
        with self.world.lock:
            self.log.append(entry)
        return status, answer

    def _api(
        self, method: str, path: str, query: dict[str, list[str]], body: Any, entry: dict[str, Any]
    ) -> tuple[int, Any]:
        for verb, pattern, handler, name in self.routes:
            match = pattern.match(path)
            if match is None or verb != method:
                continue
            params = match.groupdict()
            entry["api"] = (
                ("region" + name[0].upper() + name[1:]) if params.get("kind") == "regions" else name
            )
            entry["project"] = params.get("project")
            try:
                self._admit(params.get("project", ""), entry["api"])
                self.world.advance()
                with self.world.lock:
                    return handler(Request(method, path, query, body, params))
            except ApiError as error:
                return error.code, error.body()
        missing = ApiError(404, "notFound", f"No such method: {method} {path}")
        return missing.code, missing.body()

    def _admit(self, project: str, api: str) -> None:
        """Rate quota and injected faults, before the request does anything."""
        if self.faults.latency_seconds:
            time.sleep(self.faults.latency_seconds)
        limit = self.world.settings.requests_per_minute
        if limit is not None:
            now = time.time()
            with self.world.lock:
                while self.quota_window and self.quota_window[0] < now - 60:
                    self.quota_window.popleft()
                if len(self.quota_window) >= limit:
                    raise rate_limited(project)
                self.quota_window.append(now)
        with self.world.lock:
            chosen = self.faults.apis is None or api in self.faults.apis
            if chosen and self.faults.rate and self.faults.random.random() < self.faults.rate:
                raise FAULTS[self.faults.random.choice(self.faults.codes)](project)

    # -- rendering ----------------------------------------------------------------------------
    def _scope_fields(self, scope: Scope) -> dict[str, str]:
        key = "zone" if scope.kind == "zones" else "region"
        return {key: self.world.scope_link(scope)}

    def render_group(self, group: Group) -> dict[str, Any]:
        world = self.world
        counts = dict.fromkeys(ACTIONS, 0)
        for instance in group.instances:
            if instance.action == "NONE" and instance.status != "RUNNING":
                continue  # `none` counts running instances only; the pool is in the targets
            counts[instance.action.lower()] += 1
        status: dict[str, Any] = {
            "isStable": world.is_stable(group),
            "versionTarget": {"isReached": True},
        }
        if group.autoscaler:
            status["autoscaler"] = group.autoscaler
        return {
            "kind": "compute#instanceGroupManager",
            "id": str(group.id),
            "creationTimestamp": rfc3339(group.created),
            "name": group.name,
            **self._scope_fields(group.scope),
            "instanceTemplate": world.template_link(group.scope.project, group.instance_template),
            "instanceGroup": world.link(group.scope, "instanceGroups", group.name),
            "baseInstanceName": group.base_instance_name,
            "fingerprint": base64.b64encode(str(group.fingerprint).encode()).decode(),
            "currentActions": counts,
            "status": status,
            "targetSize": group.target_size,
            "targetSuspendedSize": group.target_suspended_size,
            "targetStoppedSize": group.target_stopped_size,
            "standbyPolicy": {
                "mode": group.standby_mode,
                "initialDelaySec": group.initial_delay_sec,
            },
            "selfLink": world.link(group.scope, "instanceGroupManagers", group.name),
        }

    def render_autoscaler(self, autoscaler: Autoscaler) -> dict[str, Any]:
        policy = {"mode": "ON", "coolDownPeriodSec": 60, "minNumReplicas": 0, **autoscaler.policy}
        out: dict[str, Any] = {
            "kind": "compute#autoscaler",
            "id": str(autoscaler.id),
            "creationTimestamp": rfc3339(autoscaler.created),
            "name": autoscaler.name,
            "target": autoscaler.target,
            "autoscalingPolicy": policy,
            **self._scope_fields(autoscaler.scope),
            "status": "ACTIVE",
            "selfLink": self.world.link(autoscaler.scope, "autoscalers", autoscaler.name),
        }
        if autoscaler.recommended is not None:
            out["recommendedSize"] = autoscaler.recommended
        return out

    def render_operation(self, op: Operation) -> dict[str, Any]:
        now = time.time()
        status = op.status(now)
        out: dict[str, Any] = {
            "kind": "compute#operation",
            "id": str(op.id),
            "name": op.name,
            "operationType": op.operation_type,
            "targetLink": op.target_link,
            "targetId": str(op.target_id),
            "status": status,
            "user": "autozero@emulator",
            "progress": 100 if status == "DONE" else 0,
            "insertTime": rfc3339(op.inserted),
            **self._scope_fields(op.scope),
            "selfLink": self.world.link(op.scope, "operations", op.name),
        }
        if status != "PENDING":
            out["startTime"] = rfc3339(op.starts)
        if status == "DONE":
            out["endTime"] = rfc3339(op.done)
            if op.error is not None:
                out["error"] = op.error.operation_errors()
                out["httpErrorStatusCode"] = op.error.code
                out["httpErrorMessage"] = op.error.reason.upper()
        return out

    # -- lists --------------------------------------------------------------------------------
    @staticmethod
    def _filter(request: Request, names: Iterable[tuple[str, Any]]) -> list[Any]:
        expression = (request.arg("filter") or "").strip()
        items = list(names)
        if not expression:
            return [item for _, item in items]
        match = re.fullmatch(r'name\s*(=|!=|eq|ne)\s*"?(.*?)"?', expression)
        if match is None:
            raise invalid(
                f"Invalid value for field 'filter': '{expression}'. Only filters on "
                "name are supported by this emulator."
            )
        operator, operand = match.groups()
        if operator in ("=", "!="):
            keep = [item for name, item in items if (name == operand) == (operator == "=")]
        else:
            pattern = re.compile(operand)
            keep = [
                item for name, item in items if bool(pattern.fullmatch(name)) == (operator == "eq")
            ]
        return keep

    @staticmethod
    def _page(request: Request, items: list[Any]) -> tuple[list[Any], str | None]:
        raw = request.arg("maxResults", "500") or "500"
        if not raw.isdigit() or not 0 <= int(raw) <= 500:
            raise invalid(
                f"Invalid value for field 'maxResults': '{raw}'. Must be between 0 and 500."
            )
        size = int(raw) or 500
        token = request.arg("pageToken")
        start = 0
        if token:
            try:
                start = int(base64.urlsafe_b64decode(token.encode()).decode().split(":")[1])
            except (ValueError, IndexError):
                raise invalid(f"Invalid value for field 'pageToken': '{token}'.") from None
        page = items[start : start + size]
        more = start + size < len(items)
        next_token = base64.urlsafe_b64encode(f"offset:{start + size}".encode()).decode()
        return page, next_token if more else None

    def _list(self, request: Request, kind: str, items: list[Any]) -> tuple[int, Any]:
        page, token = self._page(request, items)
        body: dict[str, Any] = {
            "kind": kind,
            "id": request.path,
            "items": page,
            "selfLink": self.world.base_url + request.path[len("/compute/v1/") :],
        }
        if not page:
            del body["items"]
        if token:
            body["nextPageToken"] = token
        return 200, body

    def _in_scope(self, scope: Scope, table: dict[Any, Any]) -> list[tuple[str, Any]]:
        return sorted(
            (
                (key[3], value)
                for key, value in table.items()
                if key[:3] == (scope.project, scope.kind, scope.location)
            ),
            key=lambda pair: pair[0],
        )

    def _aggregated(
        self,
        request: Request,
        table: dict[Any, Any],
        member: str,
        kind: str,
        render: Callable[[Any], dict[str, Any]],
    ) -> tuple[int, Any]:
        project = request.params["project"]
        flat = sorted(
            (
                (f"{key[1]}/{key[2]}", key[3], value)
                for key, value in table.items()
                if key[0] == project
            ),
        )
        kept = set(map(id, self._filter(request, ((name, v) for _, name, v in flat))))
        flat = [entry for entry in flat if id(entry[2]) in kept]
        page, token = self._page(request, flat)
        items: dict[str, Any] = {}
        for scope_key, _, value in page:
            items.setdefault(scope_key, {member: []})[member].append(render(value))
        body: dict[str, Any] = {"kind": kind, "id": request.path, "items": items}
        if token:
            body["nextPageToken"] = token
        return 200, body

    # -- instance group managers ----------------------------------------------------------------
    def list_groups(self, request: Request) -> tuple[int, Any]:
        rows = self._in_scope(request.scope, self.world.groups)
        items = [self.render_group(g) for g in self._filter(request, rows)]
        return self._list(request, "compute#instanceGroupManagerList", items)

    def aggregated_groups(self, request: Request) -> tuple[int, Any]:
        return self._aggregated(
            request,
            self.world.groups,
            "instanceGroupManagers",
            "compute#instanceGroupManagerAggregatedList",
            self.render_group,
        )

    def get_group(self, request: Request) -> tuple[int, Any]:
        return 200, self.render_group(self.world.group(request.scope, request.params["name"]))

    def insert_group(self, request: Request) -> tuple[int, Any]:
        body = request.body if isinstance(request.body, dict) else {}
        name = body.get("name")
        if not isinstance(name, str) or not NAME.match(name):
            raise invalid(
                f"Invalid value for field 'resource.name': '{name}'. Must be a match "
                "of regex '(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)'"
            )
        if not isinstance(body.get("instanceTemplate"), str):
            raise invalid("Required field 'resource.instanceTemplate' not specified")
        size = body.get("targetSize", 0)
        if not isinstance(size, int) or size < 0:
            raise invalid(f"Invalid value for field 'resource.targetSize': '{size}'.")
        scope = request.scope
        key = (scope.project, scope.kind, scope.location, name)
        link = self.world.link(scope, "instanceGroupManagers", name)
        if key in self.world.groups or ("igm", *key) in self.reserved:
            raise already_exists(f"{scope.path}/instanceGroupManagers/{name}")
        group_id = self.world.next_id()
        group = Group(
            scope=scope,
            name=name,
            id=group_id,
            base_instance_name=body.get("baseInstanceName") or name,
            instance_template=body["instanceTemplate"],
            target_size=size,
            created=0.0,
        )
        # The pools, the standby policy and the template: validated now as a patch would be.
        settle = self.world.change_group(
            group, {k: v for k, v in body.items() if k != "targetSize"}, replace=False
        )
        self.reserved.add(("igm", *key))

        def effect() -> None:
            self.reserved.discard(("igm", *key))
            settle()
            group.created, group.fingerprint = time.time(), 0
            self.world.groups[key] = group

        op = self.world.start_operation(
            scope,
            "insert",
            link,
            group_id,
            effect,
            request.arg("requestId"),
            undo=lambda: self.reserved.discard(("igm", *key)),
        )
        return 200, self.render_operation(op)

    def delete_group(self, request: Request) -> tuple[int, Any]:
        scope = request.scope
        group = self.world.group(scope, request.params["name"])
        key = (scope.project, scope.kind, scope.location, group.name)

        def effect() -> None:
            for instance in group.instances:
                self.world.stop_process(instance, wait=False)
            self.world.groups.pop(key, None)

        op = self.world.start_operation(
            scope,
            "delete",
            self.world.link(scope, "instanceGroupManagers", group.name),
            group.id,
            effect,
            request.arg("requestId"),
        )
        return 200, self.render_operation(op)

    def resize_group(self, request: Request) -> tuple[int, Any]:
        group = self.world.group(request.scope, request.params["name"])
        raw = request.arg("size")
        if raw is None or not raw.lstrip("-").isdigit():
            raise invalid(f"Invalid value for field 'size': '{raw}'.")
        effect = self.world.resize(group, int(raw))
        op = self.world.start_operation(
            request.scope,
            "compute.instanceGroupManagers.resize",
            self.world.link(group.scope, "instanceGroupManagers", group.name),
            group.id,
            effect,
            request.arg("requestId"),
        )
        return 200, self.render_operation(op)

    def _group_operation(
        self, request: Request, group: Group, kind: str, effect: Callable[[], None]
    ) -> tuple[int, Any]:
        op = self.world.start_operation(
            request.scope,
            kind,
            self.world.link(group.scope, "instanceGroupManagers", group.name),
            group.id,
            effect,
            request.arg("requestId"),
        )
        return 200, self.render_operation(op)

    def patch_group(self, request: Request) -> tuple[int, Any]:
        group = self.world.group(request.scope, request.params["name"])
        body = request.body if isinstance(request.body, dict) else {}
        effect = self.world.change_group(group, body, replace=False)
        return self._group_operation(request, group, "patch", effect)

    def update_group(self, request: Request) -> tuple[int, Any]:
        group = self.world.group(request.scope, request.params["name"])
        body = request.body if isinstance(request.body, dict) else {}
        effect = self.world.change_group(group, body, replace=True)
        return self._group_operation(request, group, "update", effect)

    def _mover(self, verb: str) -> Handler:
        def handler(request: Request) -> tuple[int, Any]:
            group = self.world.group(request.scope, request.params["name"])
            body = request.body if isinstance(request.body, dict) else {}
            urls = body.get("instances") or []
            if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
                raise invalid(f"Invalid value for field 'instances': '{urls}'.")
            force = bool(body.get("forceSuspend") or body.get("forceStop"))
            effect = self.world.move_instances(group, urls, verb, force=force)
            return self._group_operation(
                request, group, f"compute.instanceGroupManagers.{verb}Instances", effect
            )

        return handler

    def list_instances(self, request: Request) -> tuple[int, Any]:
        group = self.world.group(request.scope, request.params["name"])
        rows = [
            {
                "instance": self.world.link(group.scope, "instances", i.name).replace(
                    "/regions/", "/zones/"
                ),
                "id": str(i.id),
                "name": i.name,
                "instanceStatus": i.status,
                "currentAction": i.action,
            }
            for i in group.instances
        ]
        rows = self._filter(request, ((row["name"], row) for row in rows))
        page, token = self._page(request, rows)
        body: dict[str, Any] = {"managedInstances": page} if page else {}
        if token:
            body["nextPageToken"] = token
        return 200, body

    # -- autoscalers ----------------------------------------------------------------------------
    def list_autoscalers(self, request: Request) -> tuple[int, Any]:
        rows = self._in_scope(request.scope, self.world.autoscalers)
        items = [self.render_autoscaler(a) for a in self._filter(request, rows)]
        return self._list(request, "compute#autoscalerList", items)

    def aggregated_autoscalers(self, request: Request) -> tuple[int, Any]:
        return self._aggregated(
            request,
            self.world.autoscalers,
            "autoscalers",
            "compute#autoscalerAggregatedList",
            self.render_autoscaler,
        )

    def get_autoscaler(self, request: Request) -> tuple[int, Any]:
        found = self.world.autoscaler(request.scope, request.params["name"])
        return 200, self.render_autoscaler(found)

    def insert_autoscaler(self, request: Request) -> tuple[int, Any]:
        body = request.body if isinstance(request.body, dict) else {}
        name = body.get("name")
        if not isinstance(name, str) or not NAME.match(name):
            raise invalid(f"Invalid value for field 'resource.name': '{name}'.")
        policy = body.get("autoscalingPolicy")
        if not isinstance(policy, dict):
            raise invalid("Required field 'resource.autoscalingPolicy' not specified")
        self.world.check_policy(policy)
        scope = request.scope
        key = (scope.project, scope.kind, scope.location, name)
        if key in self.world.autoscalers or ("asc", *key) in self.reserved:
            raise already_exists(f"{scope.path}/autoscalers/{name}")
        group = self.world.group_by_link(str(body.get("target")))
        if group is None:
            raise not_found(str(body.get("target")))
        if group.autoscaler is not None:
            raise already_exists(f"{group.autoscaler} (the group is already autoscaled)")
        link = self.world.link(scope, "autoscalers", name)
        autoscaler_id = self.world.next_id()
        self.reserved.add(("asc", *key))

        def effect() -> None:
            self.reserved.discard(("asc", *key))
            self.world.autoscalers[key] = Autoscaler(
                scope, name, autoscaler_id, body["target"], dict(policy), time.time()
            )
            group.autoscaler = link

        op = self.world.start_operation(
            scope,
            "insert",
            link,
            autoscaler_id,
            effect,
            request.arg("requestId"),
            undo=lambda: self.reserved.discard(("asc", *key)),
        )
        return 200, self.render_operation(op)

    def _change_autoscaler(self, request: Request, merge: bool) -> tuple[int, Any]:
        name = request.arg("autoscaler") or (request.body or {}).get("name")
        autoscaler = self.world.autoscaler(request.scope, str(name))
        body = request.body if isinstance(request.body, dict) else {}
        policy = body.get("autoscalingPolicy", {})
        new = {**autoscaler.policy, **policy} if merge else dict(policy)
        self.world.check_policy(new)

        def effect() -> None:
            autoscaler.policy = new
            autoscaler.next_evaluation = 0.0

        op = self.world.start_operation(
            request.scope,
            "patch" if merge else "update",
            self.world.link(autoscaler.scope, "autoscalers", autoscaler.name),
            autoscaler.id,
            effect,
            request.arg("requestId"),
        )
        return 200, self.render_operation(op)

    def patch_autoscaler(self, request: Request) -> tuple[int, Any]:
        return self._change_autoscaler(request, merge=True)

    def update_autoscaler(self, request: Request) -> tuple[int, Any]:
        return self._change_autoscaler(request, merge=False)

    def delete_autoscaler(self, request: Request) -> tuple[int, Any]:
        scope = request.scope
        autoscaler = self.world.autoscaler(scope, request.params["name"])
        key = (scope.project, scope.kind, scope.location, autoscaler.name)

        def effect() -> None:
            self.world.autoscalers.pop(key, None)
            group = self.world.group_by_link(autoscaler.target)
            if group is not None:
                group.autoscaler = None

        op = self.world.start_operation(
            scope,
            "delete",
            self.world.link(scope, "autoscalers", autoscaler.name),
            autoscaler.id,
            effect,
            request.arg("requestId"),
        )
        return 200, self.render_operation(op)

    # -- operations -----------------------------------------------------------------------------
    def list_operations(self, request: Request) -> tuple[int, Any]:
        rows = self._in_scope(request.scope, self.world.operations)
        items = [self.render_operation(o) for o in self._filter(request, rows)]
        return self._list(request, "compute#operationList", items)

    def get_operation(self, request: Request) -> tuple[int, Any]:
        return 200, self.render_operation(
            self.world.operation(request.scope, request.params["name"])
        )

    def wait_operation(self, request: Request) -> tuple[int, Any]:
        """Returns when the operation is DONE or after wait_timeout_seconds, as the real one."""
        op = self.world.operation(request.scope, request.params["name"])
        deadline = time.time() + self.world.settings.wait_timeout_seconds
        while not op.applied and time.time() < deadline:
            self.world.changed.wait(timeout=min(0.05, max(0.0, deadline - time.time())))
            self.world.advance()
        return 200, self.render_operation(op)

    # -- OAuth token endpoint (for service-account keys whose token_uri points here) ------------
    def token(self, body: Any) -> tuple[int, Any]:
        """Exchange a signed JWT (RFC 7523) for an access token, as oauth2.googleapis.com does.
        The token is random and never logged; only who asked is kept."""
        form = body if isinstance(body, dict) else {}
        assertion = str(form.get("assertion", ""))
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" or (
            assertion.count(".") != 2
        ):
            return 400, {"error": "invalid_grant", "error_description": "expected a JWT bearer"}
        payload = assertion.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        token = "emulated-" + base64.urlsafe_b64encode(random.randbytes(24)).decode()
        with self.world.lock:
            self.tokens_issued.append(str(claims.get("iss", "")))
            self.token_owner[token] = str(claims.get("iss", ""))
        return 200, {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": 3600,
        }

    # -- control --------------------------------------------------------------------------------
    def control(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        world = self.world
        body = body if isinstance(body, dict) else {}
        with world.lock:
            if path == "/_emulator/requests" and method == "GET":
                return 200, {"requests": list(self.log), "tokensIssued": list(self.tokens_issued)}
            if path == "/_emulator/requests" and method == "DELETE":
                self.log.clear()
                return 200, {}
            if path == "/_emulator/faults" and method == "POST":
                self.faults.configure(body)
                return 200, {}
            if path == "/_emulator/settings" and method == "POST":
                for key, value in body.items():
                    attribute = re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), key)
                    if not hasattr(world.settings, attribute):
                        return 400, {"error": f"unknown setting {key}"}
                    setattr(world.settings, attribute, value)
                return 200, {}
            if path == "/_emulator/cpu" and method == "POST":
                scope = Scope(body["project"], body.get("kind", "zones"), body["location"])
                world.group(scope, body["group"]).cpu_utilization = float(body["utilization"])
                return 200, {}
            if path == "/_emulator/delete-instance" and method == "POST":
                scope = Scope(body["project"], body.get("kind", "zones"), body["location"])
                try:
                    world.delete_underneath(world.group(scope, body["group"]), body["instance"])
                except ApiError as error:
                    return error.code, error.body()
                return 200, {}
            if path == "/_emulator/reset" and method == "POST":
                world.reset()
                self.log.clear()
                self.reserved.clear()
                self.faults.configure({})
                return 200, {}
            if path == "/_emulator/state" and method == "GET":
                return 200, {
                    "groups": [
                        self.render_group(g)
                        | {
                            "instances": [
                                {
                                    "name": i.name,
                                    "action": i.action,
                                    "status": i.status,
                                    "role": i.role,
                                    "pid": i.process.pid if i.process else None,
                                }
                                for i in g.instances
                            ]
                        }
                        for g in world.groups.values()
                    ]
                }
        return 404, {"error": f"no control endpoint {method} {path}"}


class _HTTPHandler(BaseHTTPRequestHandler):
    emulator: Emulator
    protocol_version = "HTTP/1.1"

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        form = "x-www-form-urlencoded" in (self.headers.get("Content-Type") or "")
        try:
            if form:
                body: Any = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
            else:
                body = json.loads(raw) if raw else None
        except (json.JSONDecodeError, UnicodeDecodeError):
            status, answer = 400, invalid("Invalid JSON payload received.").body()
        else:
            status, answer = self.emulator.dispatch(
                self.command, self.path, body, self.headers.get("Authorization") or ""
            )
        payload = json.dumps(answer).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (its timeout, under injected latency): the request is in the
            # log with the answer it would have had, as a real API would have served it.
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the request log is kept in the emulator, readable at /_emulator/requests."""


class EmulatorServer:
    """An emulator serving on host:port in background threads (port 0: any free port)."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, settings: Settings | None = None
    ) -> None:
        handler: type[_HTTPHandler] = type("Handler", (_HTTPHandler,), {})
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self.host = str(self.httpd.server_address[0])
        self.port = int(self.httpd.server_address[1])
        self.emulator = Emulator(self.url, settings)
        handler.emulator = self.emulator
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self.httpd.serve_forever, daemon=True),
            threading.Thread(target=self._tick, daemon=True),
        ]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def control(self, path: str, body: Any = None, method: str = "POST") -> Any:
        """Call a /_emulator/ control endpoint over HTTP (faults, requests, settings, ...)."""
        import urllib.request

        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.url}/_emulator/{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    @property
    def api_endpoint(self) -> str:
        """What google-api-python-client takes as client_options={"api_endpoint": ...}."""
        return f"{self.url}/compute/v1/"

    def _tick(self) -> None:
        while not self._stop.wait(0.1):
            self.emulator.world.advance()

    def start(self) -> EmulatorServer:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.emulator.world.stop_all_processes()
