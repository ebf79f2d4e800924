"""Slim records: the few fields autozero reads of a workload or an HPA, projected from each
object as it arrives, so the cache of 10,000 Deployments is a few MiB rather than the hundreds a
dict (or client model) per object would take.

Equality ignores `resource_version`: two records are equal when everything autozero reads is, so
an update that only touched what autozero ignores (a condition's timestamp) is not a change.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from autozero.runtime.resources import ReplicaPaths, evaluate_path, parse_path

MANAGED_BY = "app.kubernetes.io/managed-by"


@dataclass(frozen=True, slots=True)
class WorkloadRecord:
    """One workload (Deployment, StatefulSet, a CRD with `/scale`) as the cache keeps it."""

    namespace: str
    name: str
    uid: str
    generation: int
    replicas: int | None  # the desired count (spec); None when the object does not set it
    status_replicas: int | None  # the count the workload's controller reports, if any
    ready_replicas: int | None  # built-in kinds only (`.status.readyReplicas`)
    selector: str | None  # label selector in its string form (`app=worker`), as `/scale` shows
    resource_version: str = field(compare=False)


@dataclass(frozen=True, slots=True)
class HPARecord:
    """One HorizontalPodAutoscaler: what it scales, and who owns it."""

    namespace: str
    name: str
    uid: str
    target_api_version: str
    target_kind: str
    target_name: str
    owner_uids: tuple[str, ...]
    managed_by: str | None  # the `app.kubernetes.io/managed-by` label
    resource_version: str = field(compare=False)

    @property
    def target_group(self) -> str:
        return self.target_api_version.rpartition("/")[0]

    def targets(self, api_version: str, kind: str, name: str) -> bool:
        """Whether it scales `kind`/`name` of `api_version`'s group (any version of it)."""
        return (
            self.target_kind == kind
            and self.target_name == name
            and self.target_group == api_version.rpartition("/")[0]
        )


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _metadata(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return _mapping(obj.get("metadata"))


def object_key(obj: Mapping[str, Any]) -> tuple[str, str]:
    """(namespace, name) of an object as the API sends it; namespace "" when cluster-scoped."""
    meta = _metadata(obj)
    return sys.intern(str(meta.get("namespace") or "")), str(meta.get("name") or "")


def resource_version(obj: Mapping[str, Any]) -> str | None:
    found = _metadata(obj).get("resourceVersion")
    return str(found) if found else None


def format_label_selector(selector: Mapping[str, Any]) -> str:
    """A LabelSelector object as the string the apiserver puts in `/scale`'s `status.selector`
    (Go's `LabelSelectorAsSelector(...).String()`): requirements sorted by key."""
    requirements: list[tuple[str, str]] = []
    for key, value in (selector.get("matchLabels") or {}).items():
        requirements.append((str(key), f"{key}={value}"))
    for expression in selector.get("matchExpressions") or ():
        key = str(expression.get("key", ""))
        operator = expression.get("operator")
        values = ",".join(sorted(str(v) for v in expression.get("values") or ()))
        text = {
            "In": f"{key} in ({values})",
            "NotIn": f"{key} notin ({values})",
            "Exists": key,
            "DoesNotExist": f"!{key}",
        }.get(str(operator), f"{key} {operator} ({values})")
        requirements.append((key, text))
    requirements.sort(key=lambda pair: pair[0])
    return ",".join(text for _, text in requirements)


class WorkloadProjector:
    """Projects workload objects through one kind's replica paths (parsed once)."""

    def __init__(self, paths: ReplicaPaths) -> None:
        self.paths = paths
        self._spec = parse_path(paths.spec)
        self._status = parse_path(paths.status) if paths.status else None
        self._ready = parse_path(paths.ready) if paths.ready else None
        self._selector = parse_path(paths.selector) if paths.selector else None

    def __call__(self, obj: Mapping[str, Any]) -> WorkloadRecord:
        meta = _metadata(obj)
        namespace, name = object_key(obj)
        selector: str | None = None
        if self._selector is not None:
            found = evaluate_path(obj, self._selector)
            form = self.paths.selector_form
            if isinstance(found, Mapping) and form == "LabelSelector":
                selector = format_label_selector(found)
            elif isinstance(found, Mapping) and form == "labels":
                selector = format_label_selector({"matchLabels": found})
            elif isinstance(found, str) and form == "string":
                selector = found
        return WorkloadRecord(
            namespace=namespace,
            name=name,
            uid=str(meta.get("uid") or ""),
            generation=_int(meta.get("generation")) or 0,
            replicas=_int(evaluate_path(obj, self._spec)),
            status_replicas=_int(evaluate_path(obj, self._status)) if self._status else None,
            ready_replicas=_int(evaluate_path(obj, self._ready)) if self._ready else None,
            selector=selector,
            resource_version=str(meta.get("resourceVersion") or ""),
        )


def project_hpa(obj: Mapping[str, Any]) -> HPARecord:
    meta = _metadata(obj)
    namespace, name = object_key(obj)
    ref = _mapping(_mapping(obj.get("spec")).get("scaleTargetRef"))
    owners: Sequence[Any] = meta.get("ownerReferences") or ()
    managed_by = _mapping(meta.get("labels")).get(MANAGED_BY)
    return HPARecord(
        namespace=namespace,
        name=name,
        uid=str(meta.get("uid") or ""),
        target_api_version=str(ref.get("apiVersion") or ""),
        target_kind=str(ref.get("kind") or ""),
        target_name=str(ref.get("name") or ""),
        owner_uids=tuple(str(o.get("uid")) for o in owners if isinstance(o, Mapping)),
        managed_by=str(managed_by) if managed_by is not None else None,
        resource_version=str(meta.get("resourceVersion") or ""),
    )
