"""The test ground's commands (`make demo`, `make chaos`, `make bench-keda`): bad numbers get
argparse's usage error before anything starts; a failure is one line, never a traceback."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest
from testground.cli import at_least, positive, run

ROOT = Path(__file__).resolve().parents[2]


def test_positive_numbers_pass_and_others_are_refused_saying_why() -> None:
    assert positive(int)("3") == 3
    assert positive(float)("0.5") == 0.5
    assert at_least(int, 0)("0") == 0
    for parse, text, said in [
        (positive(int), "0", "0 is not above 0"),
        (positive(int), "-2", "-2 is not above 0"),
        (positive(int), "1.5", "'1.5' is not an integer"),
        (positive(float), "x", "'x' is not a number"),
        (at_least(int, 1), "0", "0 is not at least 1"),
    ]:
        with pytest.raises(argparse.ArgumentTypeError, match=f"^{said}$"):
            parse(text)


def fails(exc: BaseException) -> int:
    raise exc


def test_a_failure_is_one_line_and_exit_status_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(lambda: fails(RuntimeError("redis-server did not start: ...")), "demo") == 1
    assert capsys.readouterr().err == "[demo] FAILED: redis-server did not start: ...\n"
    assert run(lambda: fails(FileNotFoundError(2, "No such file")), "chaos") == 1
    assert capsys.readouterr().err == "[chaos] FAILED: FileNotFoundError: [Errno 2] No such file\n"
    assert run(lambda: fails(KeyboardInterrupt()), "demo") == 130
    assert "interrupted" in capsys.readouterr().err
    assert run(lambda: 0, "demo") == 0


def test_an_exit_passes_through_and_a_traceback_is_shown_when_asked(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(SystemExit):
        run(lambda: fails(SystemExit(143)), "bench-keda")
    monkeypatch.setenv("AUTOZERO_TRACEBACK", "1")
    assert run(lambda: fails(KeyError("x")), "chaos") == 1
    err = capsys.readouterr().err
    assert err.startswith("Traceback")
    assert err.endswith("[chaos] FAILED: KeyError: 'x'\n")


@pytest.mark.parametrize(
    ("script", "args", "said"),
    [
        ("benchmarks/chaos.py", ["--faults", "0"], "make chaos: error: argument --faults: 0 is"),
        ("benchmarks/chaos.py", ["--replicas", "-1"], "argument --replicas: -1 is not above 0"),
        ("benchmarks/keda_compare.py", ["--size", "0"], "make bench-keda: error: argument --size"),
    ],
)
def test_the_benchmark_commands_refuse_bad_numbers_before_anything_starts(
    script: str, args: list[str], said: str
) -> None:
    result = subprocess.run(
        [sys.executable, script, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert said in result.stderr, result.stderr
