"""Which REST collection an `apiVersion` + `kind` lives at, and where its replica counts are.

Discovery (`GET /apis/<group>/<version>`) gives the plural, the scope and the subresources. The
replica paths of the built-in workloads are fixed; a CRD's come from its `scale` subresource
definition (`specReplicasPath`, `statusReplicasPath`, `labelSelectorPath`), read by listing the
CustomResourceDefinition by name (the operator's ClusterRole already has `list` on CRDs; it has
no `get`).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from urllib3.exceptions import HTTPError

from autozero.runtime.errors import (
    InformerNotFound,
    NotScalable,
    ReplicaPathsUnknown,
    from_exception,
)
from autozero.runtime.kubeapi import TIMEOUT, collection_path, get_json

#: What the selector path points at: a string (a CRD's `labelSelectorPath`), a LabelSelector
#: object (`matchLabels`/`matchExpressions`: apps/v1 kinds) or a plain label map (v1
#: ReplicationController). Records hold every one in its string form, as `/scale` shows it.
SelectorForm = Literal["string", "LabelSelector", "labels"]


@dataclass(frozen=True, slots=True)
class ReplicaPaths:
    """Simple JSONPath-like paths (`.spec.replicas`) into a workload object; None: not exposed."""

    spec: str
    status: str | None
    selector: str | None = None
    ready: str | None = None
    selector_form: SelectorForm = "string"


def _builtin(selector_form: SelectorForm) -> ReplicaPaths:
    return ReplicaPaths(
        ".spec.replicas",
        ".status.replicas",
        ".spec.selector",
        ".status.readyReplicas",
        selector_form,
    )


#: The built-in kinds with `/scale`, by (group, kind).
BUILTIN_PATHS: Mapping[tuple[str, str], ReplicaPaths] = {
    ("apps", "Deployment"): _builtin("LabelSelector"),
    ("apps", "StatefulSet"): _builtin("LabelSelector"),
    ("apps", "ReplicaSet"): _builtin("LabelSelector"),
    ("", "ReplicationController"): _builtin("labels"),
}


def split_api_version(api_version: str) -> tuple[str, str]:
    """`apps/v1` -> (`apps`, `v1`); `v1` -> (``, `v1`) for the core group."""
    group, _, version = api_version.rpartition("/")
    return group, version


@dataclass(frozen=True, slots=True)
class Resource:
    """A resource as the informer lists and watches it."""

    api_version: str
    kind: str
    plural: str
    namespaced: bool
    paths: ReplicaPaths | None = None  # None: not a workload (an HPA)

    @property
    def group(self) -> str:
        return split_api_version(self.api_version)[0]

    @property
    def version(self) -> str:
        return split_api_version(self.api_version)[1]

    def path(self, namespace: str | None) -> str:
        """The collection's path: in `namespace`, or cluster-wide for None."""
        return collection_path(self.group, self.version, self.plural, namespace)


HPA = Resource("autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", True)


class PathError(ValueError):
    """A replica path that is not a simple dotted path (`.spec.replicas`)."""


def parse_path(path: str) -> tuple[str, ...]:
    """`.spec.replicas` -> ("spec", "replicas"). CRD scale paths are simple JSONPaths without
    array notation (the apiserver validates them so), so a dotted walk is enough."""
    if not path.startswith(".") or len(path) < 2:
        raise PathError(f"{path!r} is not a path like .spec.replicas")
    parts = tuple(path[1:].split("."))
    if any(not part or any(ch in part for ch in "[]*@$'\" ") for part in parts):
        raise PathError(f"{path!r} is not a simple path (no arrays, filters or quotes)")
    return parts


def evaluate_path(obj: Mapping[str, Any], path: str | tuple[str, ...]) -> Any:
    """The value at `path` in `obj`, or None when any step is missing or not an object."""
    node: Any = obj
    for part in parse_path(path) if isinstance(path, str) else path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
        if node is None:
            return None
    return node


class ResourceResolver:
    """Discovery, cached per process; safe to share between informer threads.

    A kind that is not found is not cached (its CRD may be installed later: the informer retries
    with backoff, so a miss costs one request per retry, not one per cycle).
    """

    def __init__(self, api_client: Any, timeout: float = TIMEOUT) -> None:
        self.api_client = api_client
        self.timeout = timeout
        self.requests = 0
        self._lock = threading.Lock()
        self._resolved: dict[tuple[str, str], Resource] = {}

    def resolve(self, api_version: str, kind: str) -> Resource:
        """The workload resource for `api_version`/`kind`, with its replica paths.

        Raises InformerNotFound (not served), NotScalable (no `/scale`, or no list/watch),
        ReplicaPathsUnknown, InformerForbidden or InformerUnavailable.
        """
        key = (api_version, kind)
        with self._lock:
            found = self._resolved.get(key)
        if found is not None:
            return found
        resource = self._discover(api_version, kind)
        with self._lock:
            self._resolved[key] = resource
        return resource

    def _get(self, what: str, path: str, query: tuple[tuple[str, str], ...] = ()) -> dict[str, Any]:
        from kubernetes.client.exceptions import ApiException

        with self._lock:
            self.requests += 1
        try:
            return get_json(self.api_client, path, query, self.timeout)
        except (ApiException, HTTPError, OSError) as exc:
            raise from_exception(what, exc) from exc

    def _discover(self, api_version: str, kind: str) -> Resource:
        group, version = split_api_version(api_version)
        what = f"{kind} ({api_version})"
        path = f"/apis/{group}/{version}" if group else f"/api/{version}"
        try:
            listing = self._get(f"API discovery of {api_version}", path)
        except InformerNotFound as exc:
            raise InformerNotFound(what, f"the API serves no {api_version}", status=404) from exc
        resources = listing.get("resources") or []
        entry = next(
            (r for r in resources if r.get("kind") == kind and "/" not in str(r.get("name"))),
            None,
        )
        if entry is None:
            raise InformerNotFound(what, f"the API serves no {kind} in {api_version}", status=404)
        plural = str(entry["name"])
        verbs = set(entry.get("verbs") or ())
        if not {"list", "watch"} <= verbs:
            raise NotScalable(what, f"{plural} cannot be listed and watched ({sorted(verbs)})")
        if not any(r.get("name") == f"{plural}/scale" for r in resources):
            raise NotScalable(what, f"{kind} ({api_version}) has no /scale subresource")
        paths = BUILTIN_PATHS.get((group, kind)) or self._crd_paths(what, group, version, plural)
        return Resource(api_version, kind, plural, bool(entry.get("namespaced")), paths)

    def _crd_paths(self, what: str, group: str, version: str, plural: str) -> ReplicaPaths:
        name = f"{plural}.{group}"
        listing = self._get(
            f"CustomResourceDefinition {name}",
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            (("fieldSelector", f"metadata.name={name}"),),
        )
        items = listing.get("items") or []
        if not items:
            raise ReplicaPathsUnknown(
                what, f"has /scale but no CustomResourceDefinition {name}: an aggregated API"
            )
        versions = (items[0].get("spec") or {}).get("versions") or []
        served = next((v for v in versions if v.get("name") == version), None)
        scale = ((served or {}).get("subresources") or {}).get("scale")
        if not scale or not scale.get("specReplicasPath"):
            raise NotScalable(what, f"CustomResourceDefinition {name} {version} defines no scale")
        try:
            paths = ReplicaPaths(
                spec=str(scale["specReplicasPath"]),
                status=scale.get("statusReplicasPath"),
                selector=scale.get("labelSelectorPath"),
            )
            for path in (paths.spec, paths.status, paths.selector):
                if path is not None:
                    parse_path(path)
        except PathError as exc:
            raise NotScalable(what, f"CustomResourceDefinition {name}: {exc}") from exc
        return paths
