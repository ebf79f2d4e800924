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
