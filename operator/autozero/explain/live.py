"""Evidence from the cluster: the policy (its spec and the status the operator wrote) and the
Events the operator posted about it, read through the user's kubeconfig.

Read-only, two GETs (the policy, its Events), each with a timeout. A policy that cannot be read
raises `Unexplainable` with one line that says why and what to do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from autozero.explain.evidence import (
    Evidence,
    GroupEvidence,
    Recent,
    Recommendations,
    Timed,
    parse_time,
)
from autozero.policy.errors import PolicyInvalid
from autozero.policy.model import API_GROUP, API_VERSION, KIND
from autozero.policy.parse import parse_policy

PLURAL = "scalingpolicies"
TIMEOUT = 10.0  # seconds, for each of the two reads
ACTIONS = ("Wake", "ScaleOut", "ScaleIn", "Sleep")


class Unexplainable(Exception):
    """The policy cannot be read at all: not found, access refused, the apiserver unreachable."""


def _api_error(exc: Any, what: str, namespace: str) -> Unexplainable:
    status = getattr(exc, "status", None)
    if status == 404:
        return Unexplainable(
            f"no {KIND} {what} in namespace {namespace} "
            f"(kubectl get {PLURAL} -n {namespace} lists them)"
        )
    if status in (401, 403):
        return Unexplainable(
            f"access refused: may not get {PLURAL} in namespace {namespace} "
            f"({getattr(exc, 'reason', '')}); ask for get on {PLURAL}.{API_GROUP} and list "
            "on events"
        )
    if status is None:  # urllib3: no answer at all
        return Unexplainable(f"cannot reach the apiserver: {exc}")
    return Unexplainable(f"reading {KIND} {namespace}/{what}: HTTP {status} {exc}")


def read_policy(api: Any, namespace: str, name: str) -> dict[str, Any]:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    try:
        body = client.CustomObjectsApi(api).get_namespaced_custom_object(
            API_GROUP, API_VERSION, namespace, PLURAL, name, _request_timeout=TIMEOUT
        )
    except ApiException as exc:
        raise _api_error(exc, name, namespace) from None
    except HTTPError as exc:
        raise Unexplainable(f"cannot reach the apiserver: {exc}") from None
    if not isinstance(body, dict):
        raise Unexplainable(f"reading {KIND} {namespace}/{name}: not an object: {body!r:.80}")
    return body


def read_events(api: Any, namespace: str, name: str) -> tuple[list[Recent], str | None]:
    """The policy's Events, oldest first; or none and why (a user may read policies, not
    Events: the explanation goes on without them)."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    selector = f"involvedObject.kind={KIND},involvedObject.name={name}"
    try:
        items = (
            client.CoreV1Api(api)
            .list_namespaced_event(namespace, field_selector=selector, _request_timeout=TIMEOUT)
            .items
        )
    except ApiException as exc:
        return [], f"Events not shown: {exc.status} {exc.reason}"
    except HTTPError as exc:
        return [], f"Events not shown: {exc}"
    found = []
    for event in items:
        when = event.last_timestamp or event.event_time or event.metadata.creation_timestamp
        if when is None:
            continue
        order = (when.astimezone(UTC), int(event.metadata.resource_version or 0))
        found.append((order, Recent(when.astimezone(UTC), event.reason or "", event.message or "")))
    found.sort(key=lambda pair: pair[0])
    return [recent for _, recent in found], None


def _timed(entries: Sequence[Mapping[str, Any]] | None, value: str) -> tuple[Timed, ...]:
    out = []
    for entry in entries or ():
        moment = parse_time(entry.get("time"))
        if moment is not None:
            out.append((moment.timestamp(), int(entry.get(value, 0))))
    return tuple(out)


def _group(
    status: Mapping[str, Any], events: Sequence[Recent], applied: bool, limit: int
) -> GroupEvidence:
    name = str(status.get("name"))
    prefix = f"{name}: "
    mine = [
        Recent(e.time, e.what, e.message.removeprefix(prefix))
        for e in events
        if e.message.startswith(prefix)  # decisions and TargetErrors name their group first
    ]
    recorded = status.get("recommendations")
    recommendations = (
        Recommendations(
            _timed(recorded.get("highs"), "replicas"), _timed(recorded.get("lows"), "replicas")
        )
        if isinstance(recorded, Mapping)
        else None
    )
    return GroupEvidence(
        name=name,
        decision=status.get("lastDecision"),
        error=status.get("error"),
        idle_since=parse_time(status.get("idleSince")),
        last_scale=parse_time((status.get("lastScale") or {}).get("time")),
        scale_events=_timed(status.get("scaleEvents"), "change"),
        recommendations=recommendations,
        recent=tuple(mine[-limit:]) if limit else (),
        applied=applied and not status.get("error"),
        # The status says the pool only when it holds VMs: absent is empty.
        pool={k: int((status.get("replicas") or {}).get(k, 0)) for k in ("suspended", "stopped")},
        finishing=None if status.get("finishing") is None else int(status["finishing"]),
    )


def evidence_of(
    body: Mapping[str, Any],
    events: Sequence[Recent],
    *,
    now: datetime,
    limit: int = 5,
    problems: Sequence[str] = (),
) -> Evidence:
    """What the status and the Events say about the policy `body`, at `now`."""
    meta = body.get("metadata") or {}
    status = body.get("status") or {}
    notes = list(problems)
    try:
        policy = parse_policy(body)
    except PolicyInvalid as exc:
        policy = None
        notes.append("the policy is invalid: " + "; ".join(str(e) for e in exc.errors))
    paused = any(
        c.get("type") == "Paused" and c.get("status") == "True"
        for c in status.get("conditions") or ()
    )
    groups = {
        str(g.get("name")): _group(g, events, not paused, limit) for g in status.get("groups") or ()
    }
    policy_events = [e for e in events if not any(e.message.startswith(f"{n}: ") for n in groups)]
    return Evidence(
        namespace=str(meta.get("namespace")),
        name=str(meta.get("name")),
        now=now,
        origin="status",
        policy=policy,
        groups=groups,
        readings=status.get("metrics") or {},
        conditions=tuple(status.get("conditions") or ()),
        events=tuple(e for e in policy_events if e.what not in ACTIONS)[-limit:] if limit else (),
        problems=tuple(notes),
    )


def context_namespace(kubeconfig: Path | None) -> str | None:
    """The namespace of the kubeconfig's current context, as kubectl would default to."""
    from kubernetes import config

    try:
        _, active = config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
            config_file=None if kubeconfig is None else str(kubeconfig)
        )
    except (config.ConfigException, OSError):
        return None
    namespace = ((active or {}).get("context") or {}).get("namespace")
    return str(namespace) if namespace else None


def gather(api: Any, namespace: str, name: str, *, limit: int = 5) -> Evidence:
    body = read_policy(api, namespace, name)
    events, problem = read_events(api, namespace, name)
    return evidence_of(
        body,
        events,
        now=datetime.now(UTC),
        limit=limit,
        problems=[problem] if problem else [],
    )
