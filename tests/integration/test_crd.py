"""The CRD on a real apiserver: examples accepted, every malformed case rejected with its path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from autozero.cli import main as autozero
from autozero.policy.errors import PolicyInvalid
from autozero.policy.parse import parse_policy
from kubernetes import config
from support.malformed import CASES, PARSER_ONLY
from support.manifests import BASE_YAML
from testground.kube import KubeCluster

ROOT = Path(__file__).resolve().parents[2]
CRD = ROOT / "crds" / "scalingpolicies.autozero.dev.yaml"
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))


@pytest.fixture(scope="module")
def crd(kube: KubeCluster) -> KubeCluster:
    kube.kubectl_run("apply", "-f", str(CRD))
    kube.wait_established("scalingpolicies.autozero.dev")
    namespaces = {
        doc["metadata"].get("namespace", "default")
        for path in EXAMPLES
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    }
    for namespace in namespaces - {"default"}:
        kube.kubectl_run("create", "namespace", namespace, check=False)
    return kube


def apply(kube: KubeCluster, manifest: dict[str, Any], *extra: str) -> tuple[int, str]:
    result = kube.kubectl_run(
        "apply", "-f", "-", *extra, input_text=yaml.safe_dump(manifest), check=False
    )
    return result.returncode, result.stdout + result.stderr


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_example_is_accepted(crd: KubeCluster, example: Path) -> None:
    dry = crd.kubectl_run("apply", "--dry-run=server", "-f", str(example), check=False)
    assert dry.returncode == 0, dry.stderr
    real = crd.kubectl_run("apply", "-f", str(example), check=False)
    assert real.returncode == 0, real.stderr
    assert autozero(["validate", "-f", str(example)]) == 0


def test_printer_columns(crd: KubeCluster) -> None:
    crd.kubectl_run("apply", "-f", str(ROOT / "examples" / "nightly-batch.yaml"))
    out = crd.kubectl_run("get", "sp", "-n", "batch").stdout
    assert out.split("\n")[0].split() == ["NAME", "GROUPS", "AWAKE", "LAST", "DECISION", "AGE"]
    assert "nightly-batch" in out


def test_kubectl_explain_describes_fields(crd: KubeCluster) -> None:
    out = crd.kubectl_run("explain", "scalingpolicy.spec.groups.profiles.rules").stdout
    assert "A rule: aggregate a metric over a window" in out
    assert "perInstance" in out
    assert "target" in out
    action = crd.kubectl_run("explain", "sp.spec.groups.profiles.rules.action.cooldown").stdout
    assert "After any scale action of the group" in action


def _normal(path: str) -> str:
    return path.lstrip(".")


@pytest.mark.parametrize(("manifest", "path", "api_path"), CASES)
def test_malformed_rejected_by_the_apiserver_and_by_validate(
    crd: KubeCluster,
    manifest: dict[str, Any],
    path: str,
    api_path: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out = apply(crd, manifest, "--dry-run=server")
    assert code != 0, f"the apiserver accepted it:\n{out}"
    assert _normal(api_path) in out.replace('"', "").replace(" .", " "), out

    file = tmp_path / "bad.yaml"
    file.write_text(yaml.safe_dump(manifest))
    capsys.readouterr()
    assert autozero(["validate", "-f", str(file), "--output", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert path in [error["path"] for error in report[0]["errors"]]


GOOD = BASE_YAML.lstrip()
REPEATED_KEY = GOOD.replace("  pollingInterval: 15s\n", "  pollingInterval: 15s\n  dryRun: true\n")
REPEATED_KEY = REPEATED_KEY.replace("dryRun: true\n", "dryRun: true\n  pollingInterval: 30s\n")
UNQUOTED_DATE = GOOD.replace(
    "recurrence: {timeZone: Europe/Paris, days: [Mon, Fri], hours: [8], duration: 10h}",
    "fixedDate: {start: 2026-11-27T08:00:00, end: 2026-11-28}",
)


@pytest.mark.parametrize(
    ("text", "accepted"),
    [
        pytest.param(GOOD, True, id="base"),
        pytest.param(GOOD.replace("kind: ScalingPolicy", "kind: Scalingpolicy"), False, id="kind"),
        pytest.param(GOOD.replace("v1alpha1", "v1alpah1"), False, id="api-version"),
        pytest.param(UNQUOTED_DATE, True, id="unquoted-date-time"),
    ],
)
def test_the_apiserver_and_validate_agree_on_the_text(
    crd: KubeCluster, text: str, accepted: bool, tmp_path: Path
) -> None:
    """What only the YAML text shows (a kind's spelling, an unquoted date-time) is judged from
    the text by kubectl and the apiserver, and by validate alike."""
    assert "start: 2026" in UNQUOTED_DATE
    result = crd.kubectl_run("apply", "--dry-run=server", "-f", "-", input_text=text, check=False)
    assert (result.returncode == 0) == accepted, result.stdout + result.stderr
    file = tmp_path / "policy.yaml"
    file.write_text(text)
    assert autozero(["validate", "-f", str(file)]) == (0 if accepted else 1)


@pytest.mark.parametrize(("manifest", "path", "message"), PARSER_ONLY)
def test_checks_beyond_the_schema_pass_the_apiserver(
    crd: KubeCluster, manifest: dict[str, Any], path: str, message: str
) -> None:
    """The apiserver takes these; autozero validate (and the operator, as a condition) does not."""
    code, out = apply(crd, manifest, "--dry-run=server")
    assert code == 0, out
    with pytest.raises(PolicyInvalid) as raised:
        parse_policy(manifest)
    assert any(e.path == path and message in e.message for e in raised.value.errors)


def _doc_blocks() -> list[Any]:
    blocks = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = doc.read_text()
        for n, block in enumerate(text.split("```yaml\n")[1:], start=1):
            blocks.append(pytest.param(block.split("```", 1)[0], id=f"{doc.name}-{n}"))
    return blocks


@pytest.mark.parametrize("block", _doc_blocks())
def test_every_yaml_block_in_the_docs(crd: KubeCluster, block: str, tmp_path: Path) -> None:
    """Manifests in the docs are applied (server dry run); other YAML must at least parse."""
    documents = [d for d in yaml.safe_load_all(block) if d]
    assert documents
    manifests = [d for d in documents if isinstance(d, dict) and "apiVersion" in d and "kind" in d]
    for manifest in manifests:
        namespace = manifest.get("metadata", {}).get("namespace")
        if namespace:
            crd.kubectl_run("create", "namespace", namespace, check=False)
        code, out = apply(crd, manifest, "--dry-run=server")
        assert code == 0, out
        if manifest["kind"] == "ScalingPolicy":
            file = tmp_path / "doc.yaml"
            file.write_text(yaml.safe_dump(manifest))
            assert autozero(["validate", "-f", str(file)]) == 0


def test_a_repeated_key_is_refused_by_strict_decoding_and_by_validate(
    crd: KubeCluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """kubectl turns YAML into JSON itself and keeps the last of two equal keys without a word;
    the apiserver, given the YAML with strict field validation, refuses it: so does validate."""
    assert REPEATED_KEY.count("pollingInterval") == 2
    api = config.new_client_from_config(str(crd.kubeconfig))
    try:
        url = (
            f"{api.configuration.host}/apis/autozero.dev/v1alpha1/namespaces/default/"
            "scalingpolicies?fieldValidation=Strict&dryRun=All"
        )
        headers = {"Content-Type": "application/yaml", "Accept": "application/json"}
        response = api.call_api(
            "POST", url, header_params=headers, body=REPEATED_KEY, _request_timeout=30
        )
        response.read()
    finally:
        api.close()
    assert response.status == 400, response.data
    assert 'key \\"pollingInterval\\" already set in map' in response.data.decode(), response.data

    file = tmp_path / "policy.yaml"
    file.write_text(REPEATED_KEY)
    capsys.readouterr()
    assert autozero(["validate", "-f", str(file)]) == 1
    assert "spec.pollingInterval: repeated key" in capsys.readouterr().out
