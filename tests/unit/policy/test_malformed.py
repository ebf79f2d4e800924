"""The malformed-policy table, checked offline; tests/integration/test_crd.py feeds the very same
table to the real apiserver, so both must reject each case and name its field."""

from __future__ import annotations

from typing import Any

import pytest
from autozero.policy.errors import PolicyInvalid
from autozero.policy.parse import parse_policy
from support.malformed import CASES, PARSER_ONLY, RULE
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


def test_a_whole_float_is_the_integer_kubectl_sends() -> None:
    """`maximum: 12.0` goes to the apiserver as 12 (kubectl writes Go's JSON); validate judged
    the float and could not check the capacity rules (fuzzing, seed 3 index 374)."""
    from autozero.policy.validate import schema_errors
    from support.manifests import mutate

    manifest = mutate({"spec.groups[1].capacity.maximum": 5.0})
    parse_policy(manifest)
    errors, valid = schema_errors(manifest)
    assert errors == []
    assert repr(valid["spec"]["groups"][1]["capacity"]["maximum"]) == "5"


@pytest.mark.parametrize(
    ("text", "nanoseconds"),
    [
        pytest.param("0.0001ms", 100, id="below-a-microsecond"),
        pytest.param("1h0.000001ms", 3_600_000_000_001, id="an-hour-and-a-nanosecond"),
        pytest.param("1.5m", 90_000_000_000, id="fraction-of-a-minute"),
        pytest.param("9999999999h", None, id="overflows-int64"),
    ],
)
def test_durations_are_compared_in_go_nanoseconds(text: str, nanoseconds: int | None) -> None:
    from autozero.policy.validate import go_duration_ns

    assert go_duration_ns(text) == nanoseconds


def test_a_sub_microsecond_duration_is_longer_than_0s_as_the_apiserver_says() -> None:
    """cel-python's durations are timedeltas: `0.0001ms` was 0 to validate and 100 ns to the
    apiserver (fuzzing, seed 3 index 490). The schema now agrees; the builder still refuses a
    polling interval that short for what it is."""
    from autozero.policy.validate import schema_errors
    from support.manifests import mutate

    errors, _ = schema_errors(mutate({"spec.pollingInterval": "0.0001ms"}))
    assert [e for e in errors if e.path == "spec.pollingInterval"] == []


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        pytest.param({"spec.pollingInterval": "0.0001ms"}, "spec.pollingInterval", id="polling"),
        pytest.param(
            {f"{RULE}.timeGrain": "0.0001ms", f"{RULE}.timeWindow": "1m"},
            f"{RULE}.timeGrain",
            id="grain",
        ),
    ],
)
def test_a_duration_under_a_millisecond_is_refused_not_a_crash(
    changes: dict[str, Any], path: str
) -> None:
    """The apiserver takes `0.0001ms` (100 ns > 0s); the engine would read 0: a window modulo a
    0 grain crashed validate (ZeroDivisionError, fuzzing seed 3 index 490)."""
    from support.manifests import mutate

    with pytest.raises(PolicyInvalid) as raised:
        parse_policy(mutate(changes))
    assert [e.path for e in raised.value.errors] == [path]
