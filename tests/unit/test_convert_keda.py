"""`autozero convert keda`: each ScaledObject of the table converted, validated and simulated to
the count KEDA's documented behaviour gives; every field not carried reported on stderr.
(tests/integration/test_convert_keda.py applies the same conversions to a real apiserver.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from autozero.cli import main
from support.keda_cases import CASES, REFUSED, Case


def convert(case_manifests: str, tmp_path: Path, *extra: str) -> tuple[int, str, str]:
    source = tmp_path / "keda.yaml"
    source.write_text(case_manifests.lstrip())
    code = main(["convert", "keda", "-f", str(source), *extra])
    return code, source.name, str(source)


def extended(trace: str, at: str) -> str:
    """The trace with each metric's last row repeated at `at`, so the simulation reaches it."""
    lines = trace.strip().splitlines()
    last: dict[str, str] = {}
    for line in lines[1:]:
        _, metric, value = line.split(",", 2)  # value: the rest (in_flight included)
        last[metric] = value
    return "\n".join([*lines, *(f"{at},{m},{v}" for m, v in last.items())]) + "\n"


def replicas_at(out: str, at: str) -> int:
    decisions = [json.loads(line) for line in out.splitlines()[:-1]]
    before = [d for d in decisions if d["time"] <= at]
    return int(before[-1]["replicas"]["after"])


@pytest.mark.parametrize("case", CASES)
def test_converted_validated_and_simulated_as_keda_scales(
    case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    extra = ("--prometheus", case.prometheus) if case.prometheus else ()
    code, _, source = convert(case.manifests, tmp_path, *extra)
    out, err = capsys.readouterr()
    assert code == 0, err
    for field in case.notes:
        assert f": {field}: " in err, err
    assert all(line.startswith(f"{source}:") for line in err.splitlines()), err
    (policy,) = list(yaml.safe_load_all(out))
    assert policy["kind"] == "ScalingPolicy"
    file = tmp_path / "policy.yaml"
    file.write_text(out)
    assert main(["validate", "-f", str(file)]) == 0
    capsys.readouterr()
    if case.replicas is None:
        assert policy["spec"]["paused"] is True
        return
    trace = tmp_path / "trace.csv"
    trace.write_text(extended(case.trace, case.at))
    args = ["simulate", "-f", str(file), "--trace", str(trace), "--output", "jsonl"]
    assert main([*args, "--initial-replicas", str(case.initial)]) == 0
    simulated, errors = capsys.readouterr()
    assert errors == ""
    assert replicas_at(simulated, case.at) == case.replicas


@pytest.mark.parametrize(("manifests", "reason", "converts"), REFUSED)
def test_what_cannot_be_carried_is_said_with_its_field(
    manifests: str,
    reason: str,
    converts: str | None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, source = convert(manifests, tmp_path)
    out, err = capsys.readouterr()
    assert reason in err, err
    assert err.startswith(f"{source}:")
    if converts:
        assert code == 0
        assert main(["validate", "-f", _write(tmp_path, out)]) == 0
    else:
        assert code == 1
        assert out == ""
        assert "not converted (see above)" in err


def _write(tmp_path: Path, text: str) -> str:
    file = tmp_path / "out.yaml"
    file.write_text(text)
    return str(file)


def test_the_hpa_default_behavior_is_written_out_to_keep_kedas_pace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, _ = convert(str(CASES[0].values[0].manifests), tmp_path)  # type: ignore[attr-defined]
    out, _ = capsys.readouterr()
    assert code == 0
    (group,) = yaml.safe_load(out)["spec"]["groups"]
    assert group["behavior"] == {
        "scaleUp": {
            "stabilizationWindow": "0s",
            "selectPolicy": "Max",
            "policies": [
                {"type": "Percent", "value": 100, "period": "15s"},
                {"type": "Pods", "value": 4, "period": "15s"},
            ],
        },
        "scaleDown": {
            "stabilizationWindow": "5m",
            "selectPolicy": "Max",
            "policies": [{"type": "Percent", "value": 100, "period": "15s"}],
        },
    }
    assert group["capacity"] == {"minimum": 0, "maximum": 20, "default": 1}
    assert group["activation"] == {"metric": "redis-0", "idleFor": "5m"}


def test_no_scaled_object_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = convert("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n", tmp_path)
    assert code == 1
    assert "no KEDA ScaledObject" in capsys.readouterr().err


def test_the_converted_example_is_what_convert_prints(capsys: pytest.CaptureFixture[str]) -> None:
    examples = Path(__file__).resolve().parents[2] / "examples"
    assert main(["convert", "keda", "-f", str(examples / "keda" / "orders-scaledobject.yaml")]) == 0
    out, err = capsys.readouterr()
    assert out == (examples / "converted-from-keda.yaml").read_text(), (
        "run: autozero convert keda -f examples/keda/orders-scaledobject.yaml "
        "> examples/converted-from-keda.yaml"
    )
    assert "spec.triggers[0].metadata.excludeUnacknowledged" in err
