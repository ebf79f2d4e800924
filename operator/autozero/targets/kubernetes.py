"""Kubernetes workloads with a `/scale` subresource: Deployments, StatefulSets, any such CRD.

The resource is found through API discovery from `apiVersion` and `kind`; only its `scale`
subresource is read and written, so autozero needs `get`/`patch` on `<resource>/scale` and
nothing on the workload itself.

HPA handoff mirrors the GCE one: on Wake, scale to the wake count and then create the HPA (an HPA
does not act on a workload at 0 replicas); before Sleep, delete the HPA and only then scale to 0.
The HPA is named `autozero-<workload>` and owned by the ScalingPolicy (deleting the policy deletes
it); an awake group without its HPA gets one back, a sleeping group loses it.
"""

from __future__ import annotations

import threading
import weakref
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from urllib3.exceptions import HTTPError  # connection refused, reset, timed out

from autozero.policy.model import HPAHandoff, KubernetesTarget
from autozero.targets.base import (
    Applied,
    Change,
    Observed,
    Step,
    TargetConflict,
    TargetError,
    TargetForbidden,
    TargetNotFound,
    converge,
    plan,
)

HPA_PREFIX = "autozero-"
TIMEOUT = 10  # seconds, every call


def hpa_name(workload: str) -> str:
    return (HPA_PREFIX + workload)[:253]


@dataclass(frozen=True, slots=True)
class Owner:
    """The ScalingPolicy that owns what autozero creates (an HPA)."""

    api_version: str
    kind: str
    name: str
    uid: str

    def reference(self) -> dict[str, Any]:
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": False,
        }


_DYNAMIC: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
_DYNAMIC_LOCK = threading.RLock()


def _dynamic(api_client: Any) -> Any:
    """One DynamicClient per API client: its discovery (every API group's resources) is done
    once per process, not once per workload; a kind it does not know triggers a refresh."""
    with _DYNAMIC_LOCK:
        found = _DYNAMIC.get(api_client)
        if found is None:
            from kubernetes.dynamic import DynamicClient

            found = _DYNAMIC[api_client] = DynamicClient(api_client)  # type: ignore[no-untyped-call]
        return found


def list_hpas(api_client: Any, namespace: str, group: str) -> list[dict[str, Any]]:
    """Every HPA of a namespace, as plain dicts: one call serves all the workloads there, and
    finds an HPA whatever its name (a user's own HPA on the same workload is a conflict)."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    try:
        found = client.AutoscalingV2Api(api_client).list_namespaced_horizontal_pod_autoscaler(
            namespace, _request_timeout=TIMEOUT
        )
    except (ApiException, HTTPError) as exc:
        raise _api_error(exc, group, f"HorizontalPodAutoscalers of {namespace}") from exc
    items: list[dict[str, Any]] = api_client.sanitize_for_serialization(found).get("items", [])
    return items


def observe_workloads(
    api_client: Any, workloads: Mapping[str, KubernetesWorkload]
) -> dict[str, Observed | TargetError]:
    """Observe many workloads: one HPA list per namespace, then one `/scale` read each."""
    by_namespace: dict[str, dict[str, KubernetesWorkload]] = defaultdict(dict)
    for group, workload in workloads.items():
        by_namespace[workload.namespace][group] = workload
    out: dict[str, Observed | TargetError] = {}
    for namespace, members in by_namespace.items():
        try:
            hpas = list_hpas(api_client, namespace, next(iter(members)))
        except TargetError as error:
            for group in members:
                each = type(error)(group, error.detail)
                each.retryable = error.retryable
                out[group] = each
            continue
        for group, workload in members.items():
            try:
                out[group] = workload.observe_with(hpas)
            except TargetError as error:
                out[group] = error
    return out


def _api_error(exc: Exception, group: str, what: str) -> TargetError:
    status = int(getattr(exc, "status", 0) or 0)
    reason = getattr(exc, "reason", "") or str(exc)
    if status == 404:
        return TargetNotFound(group, f"{what} not found")
    if status in (401, 403):
        return TargetForbidden(group, f"{what}: forbidden ({reason})")
    if status == 409:
        return TargetConflict(group, f"{what}: conflict ({reason})")
    if status == 0:  # no HTTP answer at all: refused, reset, timed out
        error = TargetError(group, f"{what}: the apiserver did not answer ({reason})")
    else:
        error = TargetError(group, f"{what}: HTTP {status} {reason}")
    error.retryable = status in (0, 429) or status >= 500
    return error


@dataclass
class KubernetesWorkload:
    """One workload as a ScaleTarget, in the policy's namespace."""

    name: str  # the policy's group name
    target: KubernetesTarget
    namespace: str
    api_client: Any  # kubernetes.client.ApiClient
    owner: Owner | None = None
    _resource: Any = None

    @property
    def what(self) -> str:
        return f"{self.target.kind} {self.namespace}/{self.target.name}"

    def scale_resource(self) -> Any:
        if self._resource is None:
            from kubernetes.dynamic.exceptions import ResourceNotFoundError

            try:
                with _DYNAMIC_LOCK:  # the discoverer's cache is not safe across threads
                    resource = _dynamic(self.api_client).resources.get(
                        api_version=self.target.api_version, kind=self.target.kind
                    )
            except ResourceNotFoundError as exc:
                raise TargetNotFound(
                    self.name, f"the API serves no {self.target.kind} in {self.target.api_version}"
                ) from exc
            except HTTPError as exc:  # discovery could not reach the apiserver: try next cycle
                raise _api_error(exc, self.name, "API discovery") from exc
            scale = resource.subresources.get("scale")
            if scale is None:
                raise TargetConflict(
                    self.name,
                    f"{self.target.kind} ({self.target.api_version}) has no /scale subresource",
                )
            self._resource = scale
        return self._resource

    def observe(self) -> Observed:
        return self.observe_with(list_hpas(self.api_client, self.namespace, self.name))

    def observe_with(self, hpas: Sequence[Mapping[str, Any]]) -> Observed:
        """The workload's scale, and the HPA among `hpas` (its namespace's) that targets it."""
        from kubernetes.client.exceptions import ApiException
        from kubernetes.dynamic.exceptions import DynamicApiError

        scale = self.scale_resource()
        try:
            answer = scale.get(
                name=self.target.name, namespace=self.namespace, _request_timeout=TIMEOUT
            ).to_dict()
        except (ApiException, DynamicApiError, HTTPError) as exc:
            raise _api_error(exc, self.name, self.what) from exc
        targeting = [h for h in hpas if self._targets_me(h)]
        # Ours first: a foreign HPA beside ours is still a conflict, reported once ours is gone.
        targeting.sort(key=lambda h: not self._owned(h))
        hpa = targeting[0] if targeting else None
        return Observed(
            replicas=int((answer.get("spec") or {}).get("replicas") or 0),
            ready=int((answer.get("status") or {}).get("replicas") or 0),
            autoscaler=hpa["metadata"]["name"] if hpa else None,
            owned_autoscaler=bool(hpa and self._owned(hpa)),
        )

    def _targets_me(self, hpa: Mapping[str, Any]) -> bool:
        ref = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
        group = str(ref.get("apiVersion", "")).rpartition("/")[0]
        return (
            ref.get("kind") == self.target.kind
            and ref.get("name") == self.target.name
            and group == self.target.api_version.rpartition("/")[0]
        )

    def _owned(self, hpa: Mapping[str, Any]) -> bool:
        if self.owner is None:
            return str(hpa["metadata"]["name"]).startswith(HPA_PREFIX)
        refs = hpa["metadata"].get("ownerReferences") or []
        return any(ref.get("uid") == self.owner.uid for ref in refs)

    def _autoscaling(self) -> Any:
        from kubernetes import client

        return client.AutoscalingV2Api(self.api_client)

    def scale(self, replicas: int) -> None:
        from kubernetes.client.exceptions import ApiException
        from kubernetes.dynamic.exceptions import DynamicApiError

        try:
            self.scale_resource().patch(
                body={"spec": {"replicas": replicas}},
                name=self.target.name,
                namespace=self.namespace,
                content_type="application/merge-patch+json",
                _request_timeout=TIMEOUT,
            )
        except (ApiException, DynamicApiError, HTTPError) as exc:
            raise _api_error(exc, self.name, f"{self.what}/scale") from exc

    def create_hpa(self, handoff: HPAHandoff) -> str:
        from kubernetes.client.exceptions import ApiException

        name = hpa_name(self.target.name)
        body: dict[str, Any] = {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {
                "name": name,
                "namespace": self.namespace,
                "labels": {"app.kubernetes.io/managed-by": "autozero"},
            },
            "spec": {
                "scaleTargetRef": {
                    "apiVersion": self.target.api_version,
                    "kind": self.target.kind,
                    "name": self.target.name,
                },
                "minReplicas": handoff.min_replicas,
                "maxReplicas": handoff.max_replicas,
            },
        }
        if self.owner is not None:
            body["metadata"]["ownerReferences"] = [self.owner.reference()]
        if handoff.metrics:
            body["spec"]["metrics"] = [dict(m) for m in handoff.metrics]
        if handoff.behavior:
            body["spec"]["behavior"] = dict(handoff.behavior)
        try:
            self._autoscaling().create_namespaced_horizontal_pod_autoscaler(
                self.namespace, body, _request_timeout=TIMEOUT
            )
        except (ApiException, HTTPError) as exc:
            raise _api_error(exc, self.name, f"HorizontalPodAutoscaler {name}") from exc
        return f"create HorizontalPodAutoscaler {name}"

    def delete_hpa(self, name: str) -> None:
        from kubernetes.client.exceptions import ApiException

        try:
            self._autoscaling().delete_namespaced_horizontal_pod_autoscaler(
                name, self.namespace, _request_timeout=TIMEOUT
            )
        except ApiException as exc:
            if exc.status != 404:  # already gone is what we wanted
                raise _api_error(exc, self.name, f"HorizontalPodAutoscaler {name}") from exc
        except HTTPError as exc:
            raise _api_error(exc, self.name, f"HorizontalPodAutoscaler {name}") from exc

    def plan(self, change: Change, observed: Observed) -> tuple[Step, ...]:
        return plan(change, observed, handoff=isinstance(change.handoff, HPAHandoff))

    def apply(self, change: Change, observed: Observed) -> Applied:
        handoff = change.handoff if isinstance(change.handoff, HPAHandoff) else None

        def scale(was: int, to: int) -> str:
            self.scale(to)
            return f"scale {was} -> {to}"

        def delete(name: str) -> str:
            self.delete_hpa(name)
            return f"delete HorizontalPodAutoscaler {name}"

        return converge(
            self.name,
            change,
            observed,
            handoff=handoff is not None,
            resize=scale,
            create_autoscaler=lambda: self.create_hpa(handoff) if handoff else "",
            delete_autoscaler=delete,
            foreign=lambda name: (
                f"HorizontalPodAutoscaler {name} targets it and autozero did not create it"
            ),
        )
