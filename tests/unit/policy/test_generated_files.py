"""The CRD and the policy reference are generated from schema.py; the committed files must match."""

from __future__ import annotations

from pathlib import Path

from autozero.policy.reference import reference
from autozero.policy.schema import crd_yaml

ROOT = Path(__file__).resolve().parents[3]


def test_the_committed_crd_is_generated_from_the_schema() -> None:
    committed = (ROOT / "crds" / "scalingpolicies.autozero.dev.yaml").read_text()
    assert committed == crd_yaml(), "run: python -m autozero.policy.schema crd > crds/..."


def test_the_committed_reference_is_generated_from_the_schema() -> None:
    committed = (ROOT / "docs" / "policy-reference.md").read_text()
    example = (ROOT / "examples" / "nightly-batch.yaml").read_text()
    assert committed == reference(example), (
        "run: python -m autozero.policy.reference > docs/policy-reference.md"
    )


def test_the_reference_documents_every_field() -> None:
    text = (ROOT / "docs" / "policy-reference.md").read_text()
    for field in (
        "`idleFor`",
        "`timeAggregation`",
        "`perInstance`",
        "`cooldown`",
        "`skip`",
        "`stabilizationPeriod`",
        "`consumerGroup`",
        "`emptyAs`",
        "`failureThreshold`",
    ):
        assert field in text, field


def test_every_field_of_the_crd_has_a_description() -> None:
    from autozero.policy.schema import crd

    missing: list[str] = []

    def walk(schema: dict[str, object], path: str) -> None:
        if not schema.get("description"):
            missing.append(path)
        for name, sub in (schema.get("properties") or {}).items():  # type: ignore[attr-defined]
            walk(sub, f"{path}.{name}")
        items = schema.get("items")
        if isinstance(items, dict):
            walk(items, f"{path}[]")

    walk(crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"], "")
    # The apiserver forbids anything but `type` on metadata.
    assert missing == [".metadata"]


def test_the_chart_ships_the_same_crd() -> None:
    chart = ROOT / "charts" / "autozero" / "files" / "scalingpolicies.autozero.dev.yaml"
    assert chart.read_text() == crd_yaml(), "copy crds/ into charts/autozero/files/"
