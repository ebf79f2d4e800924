"""Replica paths and slim records: what the informer keeps of each object."""

from __future__ import annotations

from typing import Any

import pytest
from autozero.runtime.records import (
    HPARecord,
    WorkloadProjector,
    format_label_selector,
    object_key,
    project_hpa,
)
from autozero.runtime.resources import (
    BUILTIN_PATHS,
    PathError,
    ReplicaPaths,
    evaluate_path,
    parse_path,
)

DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {
        "name": "worker",
        "namespace": "team-a",
        "uid": "0b5c",
        "resourceVersion": "4711",
        "generation": 7,
        "labels": {"app": "worker"},
        "annotations": {"deployment.kubernetes.io/revision": "3"},
        "managedFields": [{"manager": "kubectl", "operation": "Apply"}],
    },
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "worker", "tier": "jobs"}},
        "template": {"spec": {"containers": [{"name": "w", "image": "w:1"}]}},
    },
    "status": {"replicas": 3, "readyReplicas": 1, "conditions": [{"type": "Available"}]},
}

CRD_PATHS = ReplicaPaths(
    spec=".spec.workers.count", status=".status.workers.count", selector=".status.selector"
)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        pytest.param(".spec.replicas", 2, id="spec-replicas"),
        pytest.param(".status.readyReplicas", 1, id="status-ready"),
        pytest.param(".metadata.labels.app", "worker", id="label"),
        pytest.param(".spec.missing", None, id="missing-leaf"),
        pytest.param(".nothing.at.all", None, id="missing-branch"),
        pytest.param(".spec.replicas.deeper", None, id="through-a-number"),
        pytest.param(".spec.template.spec.containers.name", None, id="through-a-list"),
    ],
)
def test_evaluate_path(path: str, expected: Any) -> None:
    assert evaluate_path(DEPLOYMENT, path) == expected


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("spec.replicas", id="no-leading-dot"),
        pytest.param(".", id="root-only"),
        pytest.param(".spec..replicas", id="empty-step"),
        pytest.param(".spec.containers[0].replicas", id="array-index"),
        pytest.param(".spec['replicas']", id="bracket-quote"),
        pytest.param(".spec.*", id="wildcard"),
    ],
)
def test_paths_that_are_not_simple_are_refused(path: str) -> None:
    with pytest.raises(PathError):
        parse_path(path)


def test_a_deployment_projects_to_its_replica_counts_and_selector() -> None:
    record = WorkloadProjector(BUILTIN_PATHS[("apps", "Deployment")])(DEPLOYMENT)
    assert (record.namespace, record.name, record.uid) == ("team-a", "worker", "0b5c")
    assert (record.generation, record.resource_version) == (7, "4711")
    assert (record.replicas, record.status_replicas, record.ready_replicas) == (2, 3, 1)
    assert record.selector == "app=worker,tier=jobs"


def test_a_crd_projects_through_its_scale_subresource_paths() -> None:
    obj = {
        "metadata": {"name": "w", "namespace": "n", "uid": "u", "resourceVersion": "9"},
        "spec": {"replicas": 99, "workers": {"count": 4}},
        "status": {"workers": {"count": 2}, "selector": "app=w"},
    }
    record = WorkloadProjector(CRD_PATHS)(obj)
    assert (record.replicas, record.status_replicas, record.ready_replicas) == (4, 2, None)
    assert record.selector == "app=w"
    assert record.generation == 0  # not set: a CRD without generation tracking


def test_a_replication_controller_selector_is_a_plain_label_map() -> None:
    rc = {
        "metadata": {"name": "rc", "namespace": "n"},
        "spec": {"replicas": 1, "selector": {"tier": "jobs", "app": "rc"}},
    }
    record = WorkloadProjector(BUILTIN_PATHS[("", "ReplicationController")])(rc)
    assert record.selector == "app=rc,tier=jobs"


def test_a_selector_not_in_the_expected_form_is_none() -> None:
    """A CRD's labelSelectorPath must point at a string; an object there is not guessed at."""
    obj = {"metadata": {"name": "w"}, "status": {"selector": {"matchLabels": {"a": "b"}}}}
    assert WorkloadProjector(CRD_PATHS)(obj).selector is None


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param({}, None, id="unset"),
        pytest.param({"workers": {"count": True}}, None, id="a-bool-is-not-a-count"),
        pytest.param({"workers": {"count": "3"}}, None, id="a-string-is-not-a-count"),
        pytest.param({"workers": {"count": 0}}, 0, id="zero"),
    ],
)
def test_replicas_that_are_not_an_integer_are_none(spec: dict[str, Any], expected: Any) -> None:
    record = WorkloadProjector(CRD_PATHS)({"metadata": {"name": "w"}, "spec": spec})
    assert record.replicas == expected


def test_records_equal_when_only_the_resource_version_differs() -> None:
    project = WorkloadProjector(BUILTIN_PATHS[("apps", "Deployment")])
    bumped = dict(DEPLOYMENT, metadata=dict(DEPLOYMENT["metadata"], resourceVersion="4712"))
    scaled = dict(DEPLOYMENT, spec=dict(DEPLOYMENT["spec"], replicas=0))
    assert project(bumped) == project(DEPLOYMENT)
    assert project(bumped).resource_version == "4712"
    assert project(scaled) != project(DEPLOYMENT)


def test_records_share_one_namespace_string() -> None:
    project = WorkloadProjector(BUILTIN_PATHS[("apps", "Deployment")])
    a = project({"metadata": {"name": "a", "namespace": "".join(["team", "-b"])}})
    b = project({"metadata": {"name": "b", "namespace": "".join(["team", "-b"])}})
    assert a.namespace is b.namespace


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        pytest.param({}, "", id="empty"),
        pytest.param({"matchLabels": {"b": "2", "a": "1"}}, "a=1,b=2", id="labels-sorted"),
        pytest.param(
            {
                "matchLabels": {"m": "x"},
                "matchExpressions": [
                    {"key": "z", "operator": "In", "values": ["b", "a"]},
                    {"key": "c", "operator": "NotIn", "values": ["q"]},
                    {"key": "e", "operator": "Exists"},
                    {"key": "d", "operator": "DoesNotExist"},
                ],
            },
            "c notin (q),!d,e,m=x,z in (a,b)",
            id="expressions",
        ),
    ],
)
def test_label_selector_string_form(selector: dict[str, Any], expected: str) -> None:
    assert format_label_selector(selector) == expected


def test_an_hpa_projects_to_its_target_and_owners() -> None:
    hpa = {
        "metadata": {
            "name": "autozero-worker",
            "namespace": "team-a",
            "uid": "h1",
            "resourceVersion": "12",
            "labels": {"app.kubernetes.io/managed-by": "autozero"},
            "ownerReferences": [{"kind": "ScalingPolicy", "name": "p", "uid": "p-uid"}],
        },
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "worker"},
            "minReplicas": 1,
            "maxReplicas": 5,
        },
    }
    record = project_hpa(hpa)
    assert record == HPARecord(
        namespace="team-a",
        name="autozero-worker",
        uid="h1",
        target_api_version="apps/v1",
        target_kind="Deployment",
        target_name="worker",
        owner_uids=("p-uid",),
        managed_by="autozero",
        resource_version="12",
    )
    assert record.targets("apps/v1beta2", "Deployment", "worker")  # any version of the group
    assert not record.targets("v1", "Deployment", "worker")
    assert not record.targets("apps/v1", "StatefulSet", "worker")
    assert not record.targets("apps/v1", "Deployment", "other")


def test_a_user_hpa_without_labels_or_owners() -> None:
    record = project_hpa({"metadata": {"name": "mine"}, "spec": {}})
    assert (record.managed_by, record.owner_uids, record.target_kind) == (None, (), "")
    assert object_key({"metadata": {"name": "mine"}}) == ("", "mine")
