"""`target.kubernetes`: workloads with a `/scale` subresource: Deployments, StatefulSets, any CRD.

The resource is found through API discovery from `apiVersion` and `kind`; only its `scale`
subresource is read and written, so autozero needs `get`/`patch` on `<resource>/scale` and
nothing on the workload itself. The runtime observes these groups from its watches (informers)
when it can (`watched`), with a `/scale` GET each when it cannot.

HPA handoff mirrors the GCE one: on Wake, scale to the wake count and then create the HPA (an HPA
does not act on a workload at 0 replicas); before Sleep, delete the HPA and only then scale to 0.
The HPA is named `autozero-<workload>` and owned by the ScalingPolicy (deleting the policy deletes
it); an awake group without its HPA gets one back, a sleeping group loses it, and an awake group
found at 0 under its HPA (scaled down by hand: an HPA does nothing at 0) is scaled up again.

Tenancy: a policy scales only workloads of its own namespace; with a ServiceAccount, only what
that account may do itself (the operator's SubjectAccessReview asks `access_checks`).
"""

from __future__ import annotations

import threading
import weakref
from collections import defaultdict
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from autozero.policy.fields import Schema, integer, obj, string
from autozero.policy.model import Policy
from autozero.targets.base import (
    Applied,
    Change,
    Observed,
    Recheck,
    ScaleTarget,
    Step,
    TargetConflict,
    TargetError,
    TargetForbidden,
    TargetNotFound,
    converge,
    plan,
)
from autozero.targets.kind import (
    AccessCheck,
    Assembled,
    Environment,
    HandoffKind,
    Refusal,
    TargetKind,
    WatchedWorkload,
)

HPA_PREFIX = "autozero-"
TIMEOUT = 10  # seconds, every call
# The client's transport (urllib3) raises HTTPError when the apiserver does not answer at all
# (refused, reset, timed out); it is imported where it is caught, as the client is.


@dataclass(frozen=True, slots=True)
class KubernetesTarget:
    api_version: str
    kind: str
    name: str
    namespace: str | None = None  # None: the policy's own (any other is refused)


@dataclass(frozen=True, slots=True)
class HPAHandoff:
    min_replicas: int
    max_replicas: int
    metrics: tuple[Mapping[str, Any], ...] = ()
    behavior: Mapping[str, Any] | None = None


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
    from urllib3.exceptions import HTTPError

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
            from urllib3.exceptions import HTTPError

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
        from urllib3.exceptions import HTTPError

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
        refs = hpa["metadata"].get("ownerReferences") or []
        return self.owns(str(hpa["metadata"]["name"]), [str(ref.get("uid")) for ref in refs])

    def owns(self, hpa: str, owners: Sequence[str]) -> bool:
        """Whether autozero made the HPA named `hpa` (owned by `owners`' uids): the policy owns
        it, or, with no policy object to own it (`autozero run`), it has autozero's name."""
        if self.owner is None:
            return hpa.startswith(HPA_PREFIX)
        return self.owner.uid in owners

    def watched(self) -> WatchedWorkload:
        """What the runtime's watches follow to observe this workload without a call."""
        return WatchedWorkload(
            self.name,
            self.namespace,
            self.target.api_version,
            self.target.kind,
            self.target.name,
            self.owns,
        )

    def _autoscaling(self) -> Any:
        from kubernetes import client

        return client.AutoscalingV2Api(self.api_client)

    def scale(self, replicas: int) -> None:
        from kubernetes.client.exceptions import ApiException
        from kubernetes.dynamic.exceptions import DynamicApiError
        from urllib3.exceptions import HTTPError

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
        from urllib3.exceptions import HTTPError

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
        from urllib3.exceptions import HTTPError

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
        # An HPA does not act on a workload at 0 replicas: one scaled to 0 by hand under its
        # HPA would stay there with work waiting.
        handoff = isinstance(change.handoff, HPAHandoff)
        return plan(change, observed, handoff=handoff, wakes_from_zero=False)

    def apply(self, change: Change, observed: Observed, recheck: Recheck | None = None) -> Applied:
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
            recheck=recheck,
            wakes_from_zero=False,
        )


def checks_for(workload: KubernetesWorkload, handoff: bool) -> Iterator[AccessCheck]:
    """What autozero will do to this workload, as authorization attributes."""
    scale = workload.scale_resource()
    resource = str(scale.parent.name)
    for verb in ("get", "patch"):
        yield AccessCheck(verb, str(scale.group or ""), resource, "scale", workload.target.name)
    if handoff:
        for verb in ("list", "create", "delete"):
            yield AccessCheck(verb, "autoscaling", "horizontalpodautoscalers")


# The kind: its schema fragments, parser and renderer, and hooks.


class KubeConfig(Protocol):
    """What this kind reads of the shell's `RuntimeConfig`."""

    kube_api: Any  # kubernetes.client.ApiClient


def _schema() -> Schema:
    return obj(
        "A workload with a /scale subresource in the policy's namespace.",
        {
            "apiVersion": string("e.g. apps/v1.", minLength=1),
            "kind": string("e.g. Deployment.", minLength=1),
            "name": string("The workload's name.", minLength=1),
            "namespace": string(
                "The workload's namespace. Only the policy's own is allowed "
                "(the default): any other is refused with the condition "
                "reason TargetForbidden, and nothing is scaled.",
                maxLength=63,
            ),
        },
        required=["apiVersion", "kind", "name"],
    )


def _parse(kube: Mapping[str, Any]) -> KubernetesTarget:
    return KubernetesTarget(kube["apiVersion"], kube["kind"], kube["name"], kube.get("namespace"))


def _render(target: KubernetesTarget) -> dict[str, Any]:
    workload = {"apiVersion": target.api_version, "kind": target.kind, "name": target.name}
    workload.update({"namespace": target.namespace} if target.namespace else {})
    return workload


def _handoff_schema() -> Schema:
    return obj(
        "A HorizontalPodAutoscaler created on wake and deleted before sleep.",
        {
            "minReplicas": integer("HPA minimum.", minimum=1, default=1),
            "maxReplicas": integer("HPA maximum.", minimum=1),
            "metrics": {
                "type": "array",
                "description": "autoscaling/v2 metrics.",
                "items": {
                    "type": "object",
                    "description": "An autoscaling/v2 MetricSpec.",
                    "x-kubernetes-preserve-unknown-fields": True,
                },
            },
            "behavior": {
                "type": "object",
                "description": "autoscaling/v2 behavior.",
                "x-kubernetes-preserve-unknown-fields": True,
            },
        },
        required=["maxReplicas"],
        rules=[
            (
                "self.minReplicas <= self.maxReplicas",
                "minReplicas must not exceed maxReplicas",
            )
        ],
    )


def _parse_handoff(hpa: Mapping[str, Any]) -> HPAHandoff:
    return HPAHandoff(
        hpa["minReplicas"],
        hpa["maxReplicas"],
        tuple(hpa.get("metrics", ())),
        hpa.get("behavior"),
    )


def _render_handoff(handoff: HPAHandoff) -> dict[str, Any]:
    hpa: dict[str, Any] = {
        "minReplicas": handoff.min_replicas,
        "maxReplicas": handoff.max_replicas,
    }
    if handoff.metrics:
        hpa["metrics"] = [dict(m) for m in handoff.metrics]
    if handoff.behavior is not None:
        hpa["behavior"] = dict(handoff.behavior)
    return hpa


def _model(handoff: HPAHandoff, group: str) -> Any:
    from autozero.handoff_model import HPAModel  # the simulator's, not the runtime's

    return HPAModel(handoff, group)


def _refusals(
    policy: Policy,
    group: str,
    target: KubernetesTarget,
    config: Any,  # noqa: ARG001
) -> list[Refusal]:
    """A workload outside the policy's namespace (the operator's RBAC may reach it)."""
    if target.namespace in (None, policy.namespace):
        return []
    return [
        Refusal(
            group,
            "TargetForbidden",
            f"{target.kind} {target.namespace}/{target.name} is outside the "
            f"policy's namespace {policy.namespace}; a ScalingPolicy may only scale "
            "workloads of its own namespace",
        )
    ]


def _access_checks(workload: KubernetesWorkload, handoff: HPAHandoff | None) -> list[AccessCheck]:
    return list(checks_for(workload, handoff is not None))


def _assemble(
    policy: Policy, groups: Mapping[str, KubernetesTarget], env: Environment
) -> Assembled:
    """A workload per group; observed together (one HPA list per namespace, a `/scale` GET
    each) when the runtime's watches cannot say."""
    config: KubeConfig = env.config
    api = config.kube_api
    workloads = {
        name: KubernetesWorkload(name, target, policy.namespace, api, env.owner)
        for name, target in groups.items()
    }

    def observe(wanted: Collection[str]) -> dict[str, Observed | TargetError]:
        mine = {name: w for name, w in workloads.items() if name in wanted}
        return observe_workloads(api, mine) if mine else {}

    targets: dict[str, ScaleTarget] = dict(workloads)
    return Assembled(targets, observe, {name: w.watched() for name, w in workloads.items()})


KIND = TargetKind(
    key="kubernetes",
    spec=KubernetesTarget,
    schema=_schema,
    parse=_parse,
    render=_render,
    assemble=_assemble,
    refusals=_refusals,
    access_checks=_access_checks,
    handoff=HandoffKind(
        key="hpa",
        autoscaler="HPA",
        schema=_handoff_schema,
        parse=_parse_handoff,
        render=_render_handoff,
        model=_model,
        named=lambda target: hpa_name(target.name),
        examples=({"maxReplicas": 5, "metrics": [{"type": "Resource"}]},),
    ),
    uses_cluster=True,
    examples=(
        {"apiVersion": "apps/v1", "kind": "Deployment", "name": "w"},
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "w", "namespace": "other"},
    ),
)
