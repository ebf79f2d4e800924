"""The malformed-policy table, checked offline; tests/integration/test_crd.py feeds the very same
table to the real apiserver, so both must reject each case and name its field."""

from __future__ import annotations

from typing import Any

import pytest
from autozero.policy.errors import PolicyInvalid
from autozero.policy.parse import parse_policy
from support.malformed import CASES, PARSER_ONLY
from support.manifests import BASE


def test_the_base_manifest_is_valid() -> None:
    policy = parse_policy(BASE)
    assert [g.name for g in policy.groups] == ["bids", "web"]


@pytest.mark.parametrize(("manifest", "path", "_api_path"), CASES)
def test_rejected_with_its_path(manifest: dict[str, Any], path: str, _api_path: str) -> None:
    with pytest.raises(PolicyInvalid) as raised:
        parse_policy(manifest)
    paths = [error.path for error in raised.value.errors]
    assert path in paths, raised.value


@pytest.mark.parametrize(("manifest", "path", "message"), PARSER_ONLY)
def test_checks_only_code_can_make(manifest: dict[str, Any], path: str, message: str) -> None:
    with pytest.raises(PolicyInvalid) as raised:
        parse_policy(manifest)
    assert any(e.path == path and message in e.message for e in raised.value.errors), raised.value


def test_every_error_is_reported_not_just_the_first() -> None:
    from support.manifests import mutate

    manifest = mutate(
        {
            "spec.pollingInterval": "soon",
            "spec.groups[0].capacity.maximum": "ten",
            "spec.groups[1].profiles[0].rules[0].operator": "Above",
        }
    )
    with pytest.raises(PolicyInvalid) as raised:
        parse_policy(manifest)
    assert {e.path for e in raised.value.errors} >= {
        "spec.pollingInterval",
        "spec.groups[0].capacity.maximum",
        "spec.groups[1].profiles[0].rules[0].operator",
    }


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"spec.pollingInterval": None}, id="defaulted-field"),
        pytest.param({"spec.groups[0].fallback": None}, id="optional-object"),
        pytest.param({"spec.groups[1].capacity.default": None}, id="optional-number"),
        pytest.param({"metadata.name": "a" * 253}, id="longest-name"),
        pytest.param({"metadata.name": "batch.jobs-2"}, id="dotted-name"),
    ],
)
def test_what_the_apiserver_accepts_validate_accepts(changes: dict[str, Any]) -> None:
    """A field set to null is dropped by the apiserver (it is not `nullable`), so it is a missing
    field: defaulted or optional (fuzzing found validate calling it a wrong type, seed 22)."""
    from support.manifests import mutate

    parse_policy(mutate(changes))


def test_a_null_required_field_is_a_missing_one() -> None:
    from support.manifests import mutate

    with pytest.raises(PolicyInvalid) as raised:
        parse_policy(mutate({"spec.groups[0].name": None}))
    assert [(e.path, e.message) for e in raised.value.errors] == [
        ("spec.groups[0].name", "is required")
    ]


def test_a_name_that_is_not_a_string_is_refused() -> None:
    from support.manifests import mutate

    with pytest.raises(PolicyInvalid) as raised:
        parse_policy(mutate({"metadata.name": 123}))
    assert [e.path for e in raised.value.errors] == ["metadata.name"]
