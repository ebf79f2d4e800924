"""Who may scale what, decided before any call: the GCE allowlist and the same-namespace rule."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from autozero.cli import main
from autozero.policy.parse import parse_policy
from autozero.runtime.assemble import RuntimeConfig
from autozero.targets.gce import AllowlistError, GCEAllowlist
from autozero.tenancy import refusals
from support.manifests import mutate


def test_the_allowlist_denies_by_default() -> None:
    assert not GCEAllowlist().allows("team-a", "acme")
    assert GCEAllowlist().projects("team-a") == frozenset()


@pytest.mark.parametrize(
    ("entries", "namespace", "project", "allowed"),
    [
        pytest.param(["team-a=acme"], "team-a", "acme", True, id="listed"),
        pytest.param(["team-a=acme"], "team-b", "acme", False, id="other-namespace"),
        pytest.param(["team-a=acme"], "team-a", "acme-prod", False, id="other-project"),
        pytest.param(["team-*=shared"], "team-b", "shared", True, id="glob"),
        pytest.param(["team-*=shared"], "ops", "shared", False, id="glob-miss"),
        pytest.param(["*=shared", "team-a=acme"], "team-a", "shared", True, id="union"),
        pytest.param(["team-a=acme, acme-2"], "team-a", "acme-2", True, id="list-with-spaces"),
        pytest.param(["team-a=acme;team-b=bravo"], "team-b", "bravo", True, id="env-style"),
        pytest.param(["team-a=acme"], "Team-A", "acme", False, id="case-sensitive"),
    ],
)
def test_the_allowlist(entries: list[str], namespace: str, project: str, allowed: bool) -> None:
    assert GCEAllowlist.parse(entries).allows(namespace, project) is allowed


@pytest.mark.parametrize("entry", ["team-a", "=acme", "team-a=", "team-a= , "])
def test_a_malformed_allowlist_entry_is_an_error(entry: str) -> None:
    with pytest.raises(AllowlistError, match="NAMESPACE=PROJECT"):
        GCEAllowlist.parse([entry])


def test_the_allowlist_from_the_environment() -> None:
    assert GCEAllowlist.from_env({}) is None
    allow = GCEAllowlist.from_env({"AUTOZERO_GCE_ALLOW": "a=p1;b=p2,p3"})
    assert allow is not None
    assert allow.allows("b", "p3")
    assert not allow.allows("a", "p3")


def test_everything_allows_any_project() -> None:
    assert GCEAllowlist.everything().allows("anything", "any-project")


def allow(entries: list[str]) -> RuntimeConfig:
    return RuntimeConfig(gce_allow=GCEAllowlist.parse(entries))


def policy(changes: dict[str, object]) -> object:
    return parse_policy(mutate({"metadata.namespace": "team-a", **changes}))


def test_a_policy_inside_its_namespace_and_allowlist_is_not_refused() -> None:
    manifest = policy({"spec.groups[1].target.kubernetes.namespace": "team-a"})
    assert refusals(manifest, allow(["team-a=p"])) == []  # type: ignore[arg-type]


def test_a_workload_in_another_namespace_is_refused() -> None:
    manifest = policy({"spec.groups[1].target.kubernetes.namespace": "team-b"})
    (refusal,) = refusals(manifest, allow(["team-a=p"]))  # type: ignore[arg-type]
    assert refusal.group == "web"
    assert refusal.reason == "TargetForbidden"
    assert "team-b/web is outside the policy's namespace team-a" in refusal.message


def test_a_project_outside_the_allowlist_is_refused_with_the_fix() -> None:
    manifest = policy({})
    (refusal,) = refusals(manifest, allow(["team-*=other"]))  # type: ignore[arg-type]
    assert refusal.group == "bids"
    assert refusal.reason == "GCEProjectNotAllowed"
    assert "namespace team-a may not target GCE project p (allowed: other)" in refusal.message
    assert "--gce-allow team-a=p" in refusal.message


def test_run_refuses_a_project_outside_its_allowlist_before_any_call(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nothing listens on the endpoint: a call would fail differently (unreachable)."""
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(mutate({"metadata.namespace": "team-a"})))
    code = main(
        [
            "run",
            "-f",
            str(path),
            "--once",
            "--gce-allow",
            "team-a=other",
            "--gce-endpoint",
            "http://127.0.0.1:9/",
        ]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert "GCEProjectNotAllowed: bids: namespace team-a may not target GCE project p" in err
