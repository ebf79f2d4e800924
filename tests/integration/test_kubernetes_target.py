"""The Kubernetes target on a real apiserver: /scale of Deployments, StatefulSets and a CRD, and
the HPA handoff."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from autozero.targets.base import Change, TargetConflict, TargetNotFound
from autozero.targets.kubernetes import (
    HPAHandoff,
    KubernetesTarget,
    KubernetesWorkload,
    Owner,
    hpa_name,
)
from kubernetes import client as k8s
from testground.kube import KubeCluster, apply_worker_crd
from testground.process import wait_for

ROOT = Path(__file__).resolve().parents[2]
HANDOFF = HPAHandoff(
    min_replicas=1,
    max_replicas=5,
    metrics=(
        {
            "type": "Resource",
            "resource": {
                "name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 70},
            },
        },
    ),
)


@pytest.fixture(scope="module")
def cluster(kube: KubeCluster) -> KubeCluster:
    kube.kubectl_run("apply", "-f", str(ROOT / "crds" / "scalingpolicies.autozero.dev.yaml"))
    kube.wait_established("scalingpolicies.autozero.dev")
    apply_worker_crd(kube)
    return kube


@pytest.fixture
def namespace(cluster: KubeCluster, kube_api: Any) -> str:
    name = f"t-{uuid.uuid4().hex[:8]}"
    k8s.CoreV1Api(kube_api).create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name)))
    return name


def workload(cluster: KubeCluster, namespace: str, kind: str, name: str = "worker") -> None:
    manifests = {
        "Deployment": {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": "w", "image": "w:1"}]},
                },
            },
        },
        "Worker": {
            "apiVersion": "test.autozero.dev/v1",
            "kind": "Worker",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"replicas": 0},
        },
    }
    if kind == "StatefulSet":
        manifest = dict(manifests["Deployment"], kind="StatefulSet")
        manifest["spec"] = dict(manifest["spec"], serviceName=name)
    else:
        manifest = manifests[kind]
    cluster.kubectl_run("apply", "-f", "-", input_text=yaml.safe_dump(manifest))


def owner(cluster: KubeCluster, namespace: str) -> Owner:
    policy = yaml.safe_load((ROOT / "examples" / "azure-four-rules.yaml").read_text())
    policy["metadata"]["namespace"] = namespace
    cluster.kubectl_run("apply", "-f", "-", input_text=yaml.safe_dump(policy))
    uid = cluster.kubectl_run(
        "get", "sp", "web-frontend", "-n", namespace, "-o", "jsonpath={.metadata.uid}"
    ).stdout
    return Owner("autozero.dev/v1alpha1", "ScalingPolicy", "web-frontend", uid)


@pytest.mark.parametrize(
    ("api_version", "kind"),
    [
        pytest.param("apps/v1", "Deployment", id="deployment"),
        pytest.param("apps/v1", "StatefulSet", id="statefulset"),
        pytest.param("test.autozero.dev/v1", "Worker", id="crd-with-scale"),
    ],
)
def test_scale_through_the_scale_subresource(
    cluster: KubeCluster, kube_api: Any, namespace: str, api_version: str, kind: str
) -> None:
    workload(cluster, namespace, kind)
    target = KubernetesWorkload(
        "workers", KubernetesTarget(api_version, kind, "worker"), namespace, kube_api
    )
    assert target.observe().replicas == 0
    assert target.apply(Change(3), target.observe()).steps == ("scale 0 -> 3",)
    assert target.observe().replicas == 3
    assert target.apply(Change(3), target.observe()).steps == ()  # nothing differs: no write
    assert target.apply(Change(0), target.observe()).steps == ("scale 3 -> 0",)
    assert target.observe().replicas == 0


def test_hpa_handoff_wake_and_sleep(cluster: KubeCluster, kube_api: Any, namespace: str) -> None:
    workload(cluster, namespace, "Deployment")
    target = KubernetesWorkload(
        "workers",
        KubernetesTarget("apps/v1", "Deployment", "worker"),
        namespace,
        kube_api,
        owner(cluster, namespace),
    )
    woke = target.apply(Change(2, HANDOFF), target.observe())
    assert woke.steps == ("scale 0 -> 2", f"create HorizontalPodAutoscaler {hpa_name('worker')}")
    hpa = k8s.AutoscalingV2Api(kube_api).read_namespaced_horizontal_pod_autoscaler(
        hpa_name("worker"), namespace
    )
    assert (hpa.spec.min_replicas, hpa.spec.max_replicas) == (1, 5)
    assert hpa.spec.scale_target_ref.name == "worker"
    assert hpa.metadata.owner_references[0].kind == "ScalingPolicy"
    awake = target.observe()
    assert awake.owned_autoscaler
    assert target.apply(Change(awake.replicas, HANDOFF), awake).steps == ()
    slept = target.apply(Change(0, HANDOFF), target.observe())
    assert slept.steps == (f"delete HorizontalPodAutoscaler {hpa_name('worker')}", "scale 2 -> 0")
    final = target.observe()
    assert (final.replicas, final.autoscaler) == (0, None)


def test_hpa_handoff_converges_after_a_crash(
    cluster: KubeCluster, kube_api: Any, namespace: str
) -> None:
    workload(cluster, namespace, "Deployment")
    spec = KubernetesTarget("apps/v1", "Deployment", "worker")
    first = KubernetesWorkload("workers", spec, namespace, kube_api, owner(cluster, namespace))
    first.scale(2)  # dies before creating the HPA
    restarted = KubernetesWorkload("workers", spec, namespace, kube_api, first.owner)
    assert restarted.apply(Change(2, HANDOFF), restarted.observe()).steps == (
        f"create HorizontalPodAutoscaler {hpa_name('worker')}",
    )
    restarted.delete_hpa(hpa_name("worker"))  # dies before scaling to 0
    again = KubernetesWorkload("workers", spec, namespace, kube_api, first.owner)
    assert again.apply(Change(0, HANDOFF), again.observe()).steps == ("scale 2 -> 0",)


def test_a_workload_scaled_to_0_by_hand_under_its_hpa_is_woken_again(
    cluster: KubeCluster, kube_api: Any, namespace: str
) -> None:
    """An HPA is disabled at 0 replicas: autozero, which handed the workload to it, scales it
    back up itself (the chaos campaign found it left at 0 with work waiting)."""
    workload(cluster, namespace, "Deployment")
    spec = KubernetesTarget("apps/v1", "Deployment", "worker")
    target = KubernetesWorkload("workers", spec, namespace, kube_api, owner(cluster, namespace))
    target.apply(Change(2, HANDOFF), target.observe())
    target.scale(0)  # by hand: the HPA stays, and does nothing
    at_zero = target.observe()
    assert (at_zero.replicas, at_zero.autoscaler) == (0, hpa_name("worker"))
    assert target.apply(Change(2, HANDOFF), at_zero).steps == ("scale 0 -> 2",)
    awake = target.observe()
    assert (awake.replicas, awake.autoscaler) == (2, hpa_name("worker"))
    assert target.apply(Change(2, HANDOFF), awake).steps == ()  # the HPA's from here


def test_the_hpa_goes_with_its_policy(cluster: KubeCluster, kube_api: Any, namespace: str) -> None:
    workload(cluster, namespace, "Deployment")
    target = KubernetesWorkload(
        "workers",
        KubernetesTarget("apps/v1", "Deployment", "worker"),
        namespace,
        kube_api,
        owner(cluster, namespace),
    )
    target.apply(Change(1, HANDOFF), target.observe())
    cluster.kubectl_run("delete", "sp", "web-frontend", "-n", namespace)
    wait_for(lambda: target.observe().autoscaler is None, timeout=60)


def test_a_foreign_hpa_is_a_conflict(cluster: KubeCluster, kube_api: Any, namespace: str) -> None:
    workload(cluster, namespace, "Deployment")
    k8s.AutoscalingV2Api(kube_api).create_namespaced_horizontal_pod_autoscaler(
        namespace,
        {
            "metadata": {"name": hpa_name("worker")},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "worker"},
                "minReplicas": 1,
                "maxReplicas": 3,
            },
        },
    )
    target = KubernetesWorkload(
        "workers",
        KubernetesTarget("apps/v1", "Deployment", "worker"),
        namespace,
        kube_api,
        Owner("x/v1", "X", "x", "not-this-uid"),
    )
    with pytest.raises(TargetConflict, match="autozero did not create it"):
        target.apply(Change(0, HANDOFF), target.observe())


def test_a_users_own_hpa_of_any_name_is_a_conflict_and_others_are_ignored(
    cluster: KubeCluster, kube_api: Any, namespace: str
) -> None:
    """Scaling a workload an HPA drives would fight it: found by its scaleTargetRef."""
    workload(cluster, namespace, "Deployment")
    workload(cluster, namespace, "Deployment", name="other")
    autoscaling = k8s.AutoscalingV2Api(kube_api)
    for name, target in (("their-hpa", "worker"), ("unrelated", "other")):
        autoscaling.create_namespaced_horizontal_pod_autoscaler(
            namespace,
            {
                "metadata": {"name": name},
                "spec": {
                    "scaleTargetRef": {
                        "apiVersion": "apps/v1",
                        "kind": "Deployment",
                        "name": target,
                    },
                    "minReplicas": 1,
                    "maxReplicas": 3,
                },
            },
        )
    workload(cluster, namespace, "StatefulSet", name="other")  # same name, another kind
    spec = KubernetesTarget("apps/v1", "Deployment", "worker")
    target = KubernetesWorkload("workers", spec, namespace, kube_api, owner(cluster, namespace))
    seen = target.observe()
    assert (seen.autoscaler, seen.owned_autoscaler) == ("their-hpa", False)
    with pytest.raises(TargetConflict, match="their-hpa targets it and autozero did not create it"):
        target.apply(Change(2), seen)
    assert target.observe().replicas == 0  # not scaled under someone else's HPA
    free = KubernetesWorkload(
        "web", KubernetesTarget("apps/v1", "StatefulSet", "other"), namespace, kube_api
    )
    assert free.observe_with(autoscaling_items(kube_api, namespace)).autoscaler is None


def autoscaling_items(kube_api: Any, namespace: str) -> list[dict[str, Any]]:
    from autozero.targets.kubernetes import list_hpas

    return list_hpas(kube_api, namespace, "test")


def test_many_workloads_cost_one_hpa_list_per_namespace(
    cluster: KubeCluster, kube_api: Any, namespace: str
) -> None:
    from autozero.targets.kubernetes import observe_workloads

    names = [f"w{n}" for n in range(5)]
    for name in names:
        workload(cluster, namespace, "Deployment", name=name)
    workloads = {
        name: KubernetesWorkload(
            name, KubernetesTarget("apps/v1", "Deployment", name), namespace, kube_api
        )
        for name in names
    }
    workloads["ghost"] = KubernetesWorkload(
        "ghost", KubernetesTarget("apps/v1", "Deployment", "ghost"), namespace, kube_api
    )
    for workload_ in workloads.values():
        workload_.scale_resource()  # discovery, once per workload, before counting
    urls: list[str] = []
    rest = kube_api.rest_client  # the one HTTP layer under typed and dynamic clients alike
    original = rest.request

    def counting(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        urls.append(f"{method} {url.split('?')[0].split('://', 1)[1].split('/', 1)[1]}")
        return original(method, url, *args, **kwargs)

    rest.request = counting
    try:
        seen = observe_workloads(kube_api, workloads)
    finally:
        rest.request = original
    assert [u for u in urls if "horizontalpodautoscalers" in u] == [
        f"GET apis/autoscaling/v2/namespaces/{namespace}/horizontalpodautoscalers"
    ]
    assert len(urls) == 1 + len(workloads)  # and one /scale read per workload
    assert all(seen[name].replicas == 0 for name in names)  # type: ignore[union-attr]
    assert isinstance(seen["ghost"], TargetNotFound)


@pytest.mark.parametrize(
    ("api_version", "kind", "error", "message"),
    [
        pytest.param(
            "apps/v1",
            "Deployment",
            TargetNotFound,
            "Deployment .*/ghost not found",
            id="missing-workload",
        ),
        pytest.param(
            "v1",
            "ConfigMap",
            TargetConflict,
            "has no /scale subresource",
            id="no-scale-subresource",
        ),
        pytest.param("example.com/v1", "Nope", TargetNotFound, "serves no Nope", id="unknown-kind"),
    ],
)
def test_typed_errors(
    cluster: KubeCluster,
    kube_api: Any,
    namespace: str,
    api_version: str,
    kind: str,
    error: type[Exception],
    message: str,
) -> None:
    target = KubernetesWorkload(
        "workers", KubernetesTarget(api_version, kind, "ghost"), namespace, kube_api
    )
    with pytest.raises(error, match=message):
        target.observe()
