"""`autozero validate` end to end: a verdict per file and per document, every mistake located
at its line and column, near-miss kinds checked, other kinds counted, nothing stops the run."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from autozero.cli import build_parser, main
from autozero.manifests import ManifestError, load_policy
from autozero.policy.errors import PolicyInvalid
from support.manifests import BASE_YAML

GOOD = BASE_YAML.lstrip()
CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {a: b}\n"
DEPLOYMENT = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {}\n"
HELM_TEMPLATE = """apiVersion: autozero.dev/v1alpha1
kind: ScalingPolicy
metadata:
  name: {{ .Release.Name }}
spec:
  {{- toYaml .Values.spec | nindent 2 }}
"""


def validate(
    capsys: pytest.CaptureFixture[str], *files: Path | str, json_output: bool = False
) -> tuple[int, str]:
    args = ["validate"]
    for file in files:
        args += ["-f", str(file)]
    if json_output:
        args += ["--output", "json"]
    code = main(args)
    return code, capsys.readouterr().out


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def line_of(text: str, needle: str, occurrence: int = 1) -> tuple[int, int]:
    """1-based line and column of the `occurrence`-th line containing `needle`."""
    seen = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            seen += 1
            if seen == occurrence:
                return number, line.index(needle) + 1
    raise AssertionError(f"{needle!r} not in the text")


def entries(out: str) -> list[dict[str, Any]]:
    report = json.loads(out)
    assert isinstance(report, list)
    return report


# --- one bad file does not stop the run -------------------------------------------------------


def test_a_garbage_file_and_a_good_file_in_one_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    garbage = write(tmp_path, "garbage.yaml", "this: is: not: yaml\n")
    good = write(tmp_path, "good.yaml", GOOD)
    code, out = validate(capsys, garbage, good)
    assert code == 1
    assert f"{garbage}:1:9: [doc 1] not valid YAML: mapping values are not allowed here\n" in out
    assert "1/1 ScalingPolicy documents valid" in out
    assert f"1 file not readable as manifests: {garbage}" in out
    assert "<unicode string>" not in out

    code, out = validate(capsys, garbage, good, json_output=True)
    assert code == 1
    report = entries(out)
    assert [(e["file"], e["result"]) for e in report] == [
        (str(garbage), "unreadable"),
        (str(good), "valid"),
    ]
    assert report[0]["errors"] == [
        {
            "path": None,
            "message": "not valid YAML: mapping values are not allowed here",
            "line": 1,
            "column": 9,
        }
    ]


def test_a_binary_file_is_an_error_for_that_file_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    binary = tmp_path / "logo.yaml"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff")
    control = tmp_path / "control.yaml"
    control.write_bytes(b"kind: \x00ScalingPolicy\n")  # UTF-8, but not text
    good = write(tmp_path, "good.yaml", GOOD)
    code, out = validate(capsys, binary, control, good, json_output=True)
    assert code == 1
    report = entries(out)
    assert [e["result"] for e in report] == ["unreadable", "unreadable", "valid"]
    assert report[0]["errors"][0]["message"] == (
        "not UTF-8 text (byte 0x89 at offset 0): not a manifest"
    )
    assert "control character 0x00" in report[1]["errors"][0]["message"]


def test_a_helm_template_is_an_error_that_says_to_render_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    template = write(tmp_path, "policy.yaml", HELM_TEMPLATE)
    code, out = validate(capsys, template)
    assert code == 1
    (first, *_) = out.splitlines()
    assert first.startswith(f"{template}:6:5: [doc 1] not valid YAML: ")
    assert "render it first, e.g. with `helm template`" in first


def test_a_yaml_error_late_in_a_file_keeps_the_documents_before_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = GOOD + "---\n" + CONFIGMAP + "---\nkey: [unclosed\n"
    file = write(tmp_path, "three.yaml", text)
    code, out = validate(capsys, file, json_output=True)
    assert code == 1
    report = entries(out)
    assert [(e["document"], e["result"]) for e in report] == [
        (1, "valid"),
        (2, "skipped"),
        (3, "unreadable"),
    ]
    assert report[2]["errors"][0]["line"] == text.count("\n") + 1  # the end, never closed


def test_a_missing_file_and_stdin(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    stdin = io.TextIOWrapper(io.BytesIO(GOOD.encode()), encoding="utf-8")
    monkeypatch.setattr(sys, "stdin", stdin)
    code, out = validate(capsys, tmp_path / "absent.yaml", "-")
    assert code == 1
    assert f"{tmp_path / 'absent.yaml'}: no such file or directory" in out
    assert "1/1 ScalingPolicy documents valid" in out


def test_an_empty_file_and_a_text_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = write(tmp_path, "empty.yaml", "# nothing yet\n")
    prose = write(tmp_path, "notes.yaml", "remember to scale the bids group\n")
    good = write(tmp_path, "good.yaml", GOOD)
    code, out = validate(capsys, empty, prose, good)
    assert code == 1
    assert (
        f"{prose}:1:1: [doc 1] not a Kubernetes manifest: expected a mapping with apiVersion "
        "and kind, found text" in out
    )
    assert f"skipped 1 empty file: {empty}" in out


# --- near misses of ScalingPolicy are checked; other kinds are counted -------------------------


@pytest.mark.parametrize(
    ("old", "new", "path", "message"),
    [
        pytest.param(
            "kind: ScalingPolicy",
            "kind: Scalingpolicy",
            "kind",
            "unknown kind 'Scalingpolicy' (did you mean ScalingPolicy?)",
            id="kind-case",
        ),
        pytest.param(
            "kind: ScalingPolicy",
            "kind: ScalingPolicies",
            "kind",
            "unknown kind 'ScalingPolicies' (did you mean ScalingPolicy?)",
            id="kind-plural",
        ),
        pytest.param(
            "kind: ScalingPolicy",
            "kind: ScalngPolicy",
            "kind",
            "unknown kind 'ScalngPolicy' (did you mean ScalingPolicy?)",
            id="kind-typo",
        ),
        pytest.param(
            "autozero.dev/v1alpha1",
            "autozero.dev/v1alpah1",
            "apiVersion",
            "unknown apiVersion 'autozero.dev/v1alpah1' (did you mean autozero.dev/v1alpha1?)",
            id="version-typo",
        ),
        pytest.param(
            "autozero.dev/v1alpha1",
            "autozero.dev/v1",
            "apiVersion",
            "unknown apiVersion 'autozero.dev/v1' (must be autozero.dev/v1alpha1)",
            id="version-unknown",
        ),
        pytest.param(
            "kind: ScalingPolicy",
            "kind: Policy",
            "kind",
            "unknown kind 'Policy' (must be ScalingPolicy, the only kind of autozero.dev)",
            id="our-group-other-kind",
        ),
    ],
)
def test_a_mistyped_kind_or_api_version_is_an_error(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    old: str,
    new: str,
    path: str,
    message: str,
) -> None:
    text = GOOD.replace(old, new)
    file = write(tmp_path, "typo.yaml", text)
    code, out = validate(capsys, file)
    assert code == 1
    line, column = line_of(text, new.split(": ")[-1])
    assert f"{file}:{line}:{column - len(path) - 2}: [doc 1] {path}: {message}\n" in out
    assert "0/1 ScalingPolicy documents valid" in out


def test_other_kinds_are_skipped_and_counted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = write(tmp_path, "app.yaml", "---\n".join([CONFIGMAP, GOOD, DEPLOYMENT, CONFIGMAP]))
    code, out = validate(capsys, file)
    assert code == 0
    assert out.splitlines() == [
        "1/1 ScalingPolicy documents valid",
        "skipped 3 documents of other kinds: ConfigMap (2), Deployment (1)",
    ]
    code, out = validate(capsys, file, json_output=True)
    assert [(e["document"], e["kind"], e["name"], e["result"]) for e in entries(out)] == [
        (1, "ConfigMap", "settings", "skipped"),
        (2, "ScalingPolicy", "base", "valid"),
        (3, "Deployment", "web", "skipped"),
        (4, "ConfigMap", "settings", "skipped"),
    ]


def test_nothing_but_other_kinds_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = write(tmp_path, "app.yaml", DEPLOYMENT)
    code, out = validate(capsys, file)
    assert code == 1
    assert f"no ScalingPolicy found in {file}" in out


# --- where: file:line:column and the document ---------------------------------------------------

MULTI = (
    CONFIGMAP
    + "---\n"
    + GOOD.replace("idleFor: 30m", "idelFor: 30m")
    .replace("threshold: 10", "threshold: ten")
    .replace("- metric: jobs", "- metric: backlg")
)


def test_line_and_column_in_a_multi_document_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = write(tmp_path, "multi.yaml", MULTI)
    code, out = validate(capsys, file)
    assert code == 1
    idle = line_of(MULTI, "idelFor")
    metric = line_of(MULTI, "metric: backlg")
    threshold = line_of(MULTI, "threshold: ten")
    assert (idle, metric, threshold) == ((26, 37), (37, 15), (39, 15))  # doc 2 starts on line 6
    assert out.splitlines()[:3] == [
        f"{file}:26:37: [doc 2] spec.groups[0].activation.idelFor: unknown field "
        "(did you mean idleFor?)",
        f"{file}:37:15: [doc 2] spec.groups[1].profiles[0].rules[0].metric: 'backlg' is not a "
        "declared metric (declared: backlog, jobs, invoices, cpu; did you mean backlog?)",
        f"{file}:39:15: [doc 2] spec.groups[1].profiles[0].rules[0].threshold: must be a "
        "number, not the string 'ten'",
    ]
    code, out = validate(capsys, file, json_output=True)
    policy = entries(out)[1]
    assert (policy["document"], policy["line"]) == (2, 6)
    assert [(e["line"], e["column"]) for e in policy["errors"]] == [(26, 37), (37, 15), (39, 15)]


def test_a_missing_field_points_at_the_mapping_that_lacks_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = GOOD.replace("      capacity: {minimum: 1, maximum: 5}\n", "")
    file = write(tmp_path, "p.yaml", text)
    code, out = validate(capsys, file)
    assert code == 1
    line, column = line_of(text, "- name: web")
    assert f"{file}:{line}:{column + 2}: [doc 1] spec.groups[1].capacity: is required\n" in out


# --- messages -----------------------------------------------------------------------------------


def test_cross_field_errors_name_the_element_and_the_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = GOOD.replace("activation: {metric: backlog", "activation: {metric: bcklog").replace(
        "- metric: jobs", "- metric: queue"
    )
    file = write(tmp_path, "p.yaml", text)
    code, out = validate(capsys, file)
    assert code == 1
    declared = "declared: backlog, jobs, invoices, cpu"
    assert out.splitlines()[:2] == [
        f"{file}:{line_of(text, 'metric: bcklog')[0]}:20: [doc 1] "
        f"spec.groups[0].activation.metric: 'bcklog' is not a declared metric "
        f"({declared}; did you mean backlog?)",
        f"{file}:{line_of(text, 'metric: queue')[0]}:15: [doc 1] "
        f"spec.groups[1].profiles[0].rules[0].metric: 'queue' is not a declared metric "
        f"({declared})",
    ]


def test_cross_field_errors_are_reported_beside_other_mistakes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = GOOD.replace("- metric: jobs", "- metric: ghost").replace("maximum: 10,", "maximum: x,")
    code, out = validate(capsys, write(tmp_path, "p.yaml", text))
    assert code == 1
    assert "spec.groups[0].capacity.maximum: must be an integer" in out
    assert "spec.groups[1].profiles[0].rules[0].metric: 'ghost' is not a declared metric" in out


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        pytest.param(
            "idleFor: 30m",
            "idelFor: 30m",
            "spec.groups[0].activation.idelFor: unknown field (did you mean idleFor?)",
            id="field",
        ),
        pytest.param(
            "pollingInterval: 15s",
            "pollInterval: 15s",
            "spec.pollInterval: unknown field (did you mean pollingInterval?)",
            id="optional-field",
        ),
        pytest.param(
            "operator: GreaterThan",
            "operator: Greaterthan",
            "spec.groups[1].profiles[0].rules[0].operator: must be one of Equals, NotEquals, "
            "GreaterThan, GreaterThanOrEqual, LessThan, LessThanOrEqual, not the string "
            "'Greaterthan' (did you mean GreaterThan?)",
            id="enum",
        ),
    ],
)
def test_did_you_mean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], old: str, new: str, expected: str
) -> None:
    code, out = validate(capsys, write(tmp_path, "p.yaml", GOOD.replace(old, new)))
    assert code == 1
    errors = [line.split(": [doc 1] ", 1)[1] for line in out.splitlines() if "[doc 1]" in line]
    # The typo is said once: not also as its missing required field.
    assert errors == [expected]


def test_messages_show_no_internals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = (
        "kind: ScalingPolicy\nmetadata: {name: x}\nspec:\n"
        "  metrics: [{name: m, redis: {url: 'redis://:hunter2@r:6379', key: k}}]\n"
        "  groups: [{name: g, target: {gce: {project: p, zone: z, instanceGroupManager: m}},"
        " capacity: {maximum: 1, minimum: 1}}]\n"
    )
    code, out = validate(capsys, write(tmp_path, "p.yaml", text))
    assert code == 1
    assert "apiVersion: is missing (must be autozero.dev/v1alpha1)" in out
    assert "no user or password in it" in out
    for internal in ("None", "<unicode string>", "hunter2", "{'", "object at 0x"):
        assert internal not in out


WHY_REPEATED = (
    "kubectl would keep only the last value without a word, the apiserver's strict decoding "
    "refuses it"
)


def test_a_repeated_key_is_an_error_at_its_second_writing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = GOOD.replace("  pollingInterval: 15s\n", "  pollingInterval: 15s\n  paused: false\n")
    text = text.replace("      capacity: {minimum: 1, maximum: 5}\n", "").replace(
        "      target: {kubernetes:",
        "      capacity: {minimum: 1, maximum: 5}\n      capacity: {minimum: 1, maximum: 5}\n"
        "      target: {kubernetes:",
    )
    text = text.replace("paused: false\n", "paused: false\n  pollingInterval: 30s\n")
    file = write(tmp_path, "dup.yaml", text)
    code, out = validate(capsys, file)
    assert code == 1
    first_polling, again_polling = (
        line_of(text, "pollingInterval"),
        line_of(text, "pollingInterval", 2),
    )
    first_capacity, again_capacity = (
        line_of(text, "capacity: {minimum: 1, maximum: 5}"),
        line_of(text, "capacity: {minimum: 1, maximum: 5}", 2),
    )
    assert out.splitlines()[:2] == [
        f"{file}:{again_polling[0]}:3: [doc 1] spec.pollingInterval: repeated key (first on "
        f"line {first_polling[0]}): {WHY_REPEATED}",
        f"{file}:{again_capacity[0]}:7: [doc 1] spec.groups[1].capacity: repeated key (first "
        f"on line {first_capacity[0]}): {WHY_REPEATED}",
    ]


def test_a_merge_key_is_not_a_repeated_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = GOOD.replace(
        "      capacity: {minimum: 1, maximum: 5}\n",
        "      capacity: &cap {minimum: 1, maximum: 5}\n",
    ).replace(
        "          capacity: {minimum: 2, maximum: 5, default: 2}\n",
        "          capacity:\n"
        "            <<: *cap\n"
        "            minimum: 2\n"
        "            default: 2\n",
    )
    code, out = validate(capsys, write(tmp_path, "merge.yaml", text))
    assert (code, out) == (0, "1/1 ScalingPolicy documents valid\n")


def test_zero_polling_interval_is_refused_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = GOOD.replace("pollingInterval: 15s", "pollingInterval: 0s")
    code, out = validate(capsys, write(tmp_path, "p.yaml", text))
    assert code == 1
    assert (
        "spec.pollingInterval: must be longer than 0s: it is the time between two evaluations"
        in out
    )


def test_an_unquoted_date_time_is_the_string_kubernetes_reads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = GOOD.replace(
        "recurrence: {timeZone: Europe/Paris, days: [Mon, Fri], hours: [8], duration: 10h}",
        "fixedDate: {start: 2026-11-27T08:00:00, end: 2026-11-28}",
    )
    assert "start: 2026-11-27T08:00:00," in text
    code, out = validate(capsys, write(tmp_path, "p.yaml", text))
    assert (code, out) == (0, "1/1 ScalingPolicy documents valid\n")


def test_a_directory_of_mixed_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, "a-good.yaml", GOOD)
    write(tmp_path, "b-template.yaml", HELM_TEMPLATE)
    (tmp_path / "sub").mkdir()
    write(tmp_path, "sub/c-app.yml", DEPLOYMENT)
    write(tmp_path, "readme.txt", "not read")
    code, out = validate(capsys, tmp_path, json_output=True)
    assert code == 1
    assert [(Path(e["file"]).name, e["result"]) for e in entries(out)] == [
        ("a-good.yaml", "valid"),
        ("b-template.yaml", "unreadable"),
        ("c-app.yml", "skipped"),
    ]


def test_help_documents_the_exit_statuses(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["validate", "--help"])
    assert exited.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "exit status: 0 every ScalingPolicy is valid; 1 a ScalingPolicy is invalid" in text
    assert "2 usage error" in text
    with pytest.raises(SystemExit) as exited:
        main(["validate"])
    assert exited.value.code == 2


# --- simulate and run read policies the same way ------------------------------------------------


def test_load_policy_says_what_is_wrong_with_a_near_miss(tmp_path: Path) -> None:
    file = write(tmp_path, "p.yaml", GOOD.replace("kind: ScalingPolicy", "kind: Scalingpolicy"))
    with pytest.raises(PolicyInvalid) as raised:
        load_policy(str(file))
    assert [str(e) for e in raised.value.errors] == [
        "kind: unknown kind 'Scalingpolicy' (did you mean ScalingPolicy?)"
    ]


def test_load_policy_refuses_a_binary_file_with_a_message(tmp_path: Path) -> None:
    binary = tmp_path / "p.yaml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ManifestError, match=r"p\.yaml: not UTF-8 text"):
        load_policy(str(binary))


def test_load_policy_refuses_a_repeated_key(tmp_path: Path) -> None:
    text = GOOD.replace("  pollingInterval: 15s\n", "  pollingInterval: 15s\n  dryRun: true\n")
    text = text.replace("dryRun: true\n", "dryRun: true\n  pollingInterval: 1m\n")
    with pytest.raises(PolicyInvalid, match=r"spec\.pollingInterval: repeated key"):
        load_policy(str(write(tmp_path, "p.yaml", text)))


def test_a_billion_laughs_is_refused_not_expanded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 10)}]" for n in range(1, 9)]
    bomb = write(tmp_path, "bomb.yaml", "\n".join(lines) + "\n")  # 10**9 strings once expanded
    good = write(tmp_path, "good.yaml", GOOD)
    code, out = validate(capsys, bomb, good)
    assert code == 1
    refused = "not a manifest: its aliases expand to more than 100000 nodes"
    assert f"{bomb}:1:1: [doc 1] {refused}" in out
    assert "1/1 ScalingPolicy documents valid" in out
