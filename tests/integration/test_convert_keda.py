"""`autozero convert keda`'s output on a real apiserver: every converted ScaledObject of the table
(tests/support/keda_cases.py) is accepted by a server-side apply, as autozero validate accepts it
(tests/unit/test_convert_keda.py checks validate and simulate)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from autozero.cli import main
from support.keda_cases import CASES, Case
from testground.kube import KubeCluster

ROOT = Path(__file__).resolve().parents[2]
CRD = ROOT / "crds" / "scalingpolicies.autozero.dev.yaml"


@pytest.fixture(scope="module")
def crd(kube: KubeCluster) -> KubeCluster:
    kube.kubectl_run("apply", "-f", str(CRD))
    kube.wait_established("scalingpolicies.autozero.dev")
    return kube


@pytest.mark.parametrize("case", CASES)
def test_the_conversion_is_accepted_by_a_server_side_apply(
    crd: KubeCluster, case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "keda.yaml"
    source.write_text(case.manifests.lstrip())
    extra = ["--prometheus", case.prometheus] if case.prometheus else []
    assert main(["convert", "keda", "-f", str(source), *extra]) == 0
    out = capsys.readouterr().out
    (policy,) = list(yaml.safe_load_all(out))
    namespace = policy["metadata"].get("namespace", "default")
    crd.kubectl_run("create", "namespace", namespace, check=False)
    applied = crd.kubectl_run(
        "apply",
        "--server-side",
        "--field-manager=convert-test",
        "-n",
        namespace,
        "-f",
        "-",
        input_text=out,
        check=False,
    )
    assert applied.returncode == 0, applied.stderr
    assert "serverside-applied" in applied.stdout
