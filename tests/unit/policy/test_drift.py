"""An outdated CRD: which fields autozero knows that the served CRD would drop, and what a policy
lost on the way in (pure functions; the controller puts the sentence in a condition)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from autozero.policy.drift import (
    LAST_APPLIED,
    applied_manifest,
    dropped_fields,
    missing_fields,
    outdated_crd_message,
)
from autozero.policy.schema import crd


def _without(path: list[str]) -> dict[str, Any]:
    """autozero's CRD with one property removed, e.g. ["spec", "groups", "[]", "fallback"]."""
    older = copy.deepcopy(crd())
    node = older["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for step in path[:-1]:
        node = node["items"] if step == "[]" else node["properties"][step]
    del node["properties"][path[-1]]
    return older


def test_the_current_crd_lacks_nothing() -> None:
    assert missing_fields(crd(), crd()) == []
    assert outdated_crd_message([]) is None


@pytest.mark.parametrize(
    ("removed", "reported"),
    [
        pytest.param(["spec", "dryRun"], "spec.dryRun", id="top-level"),
        pytest.param(["spec", "groups", "[]", "fallback"], "spec.groups[].fallback", id="nested"),
        pytest.param(
            ["spec", "groups", "[]", "fallback", "replicas"],
            "spec.groups[].fallback.replicas",
            id="leaf",
        ),
    ],
)
def test_a_field_the_served_crd_lacks_is_reported_once_at_its_outermost_path(
    removed: list[str], reported: str
) -> None:
    assert missing_fields(crd(), _without(removed)) == [reported]


def test_nothing_is_missing_below_a_node_that_keeps_unknown_fields() -> None:
    served = copy.deepcopy(crd())
    spec = served["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    spec["properties"] = {}
    spec["x-kubernetes-preserve-unknown-fields"] = True
    assert missing_fields(crd(), served) == []


def test_an_unserved_version_lacks_the_whole_resource() -> None:
    served = copy.deepcopy(crd())
    served["spec"]["versions"][0]["name"] = "v1beta1"
    assert "spec" in missing_fields(crd(), served)


def test_what_the_apiserver_dropped_from_a_policy_applied_with_kubectl() -> None:
    applied = {
        "spec": {
            "dryRun": True,
            "groups": [{"name": "a", "fallback": {"replicas": 2}}, {"name": "b"}],
        }
    }
    stored = {"spec": {"groups": [{"name": "a"}, {"name": "b"}]}}
    policy = {"metadata": {"annotations": {LAST_APPLIED: json.dumps(applied)}}, **stored}
    manifest = applied_manifest(policy)
    assert manifest == applied
    assert dropped_fields(manifest["spec"], policy["spec"]) == [
        "dryRun",
        "groups[0].fallback",
    ]


@pytest.mark.parametrize(
    "annotations",
    [
        pytest.param({}, id="not-applied-with-kubectl"),
        pytest.param({LAST_APPLIED: "{not json"}, id="not-json"),
        pytest.param({LAST_APPLIED: "[1]"}, id="not-an-object"),
    ],
)
def test_no_applied_manifest_without_a_readable_annotation(annotations: dict[str, str]) -> None:
    assert applied_manifest({"metadata": {"annotations": annotations}}) is None


def test_the_message_names_the_fields_and_the_way_out() -> None:
    message = outdated_crd_message(["spec.dryRun"], ["dryRun"])
    assert message is not None
    assert "lacks spec.dryRun" in message
    assert "crds.install=true" in message
    assert "dropped from this policy: dryRun" in message
    many = outdated_crd_message([f"spec.f{n}" for n in range(8)])
    assert many is not None
    assert "and 3 more" in many
