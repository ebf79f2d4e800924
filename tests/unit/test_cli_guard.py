"""The last resort in `autozero`'s main(): an exception nobody expected is one line and exit 70,
its traceback only on request; Ctrl-C is 130, quietly. Known failures never get here (see
tests/e2e/test_cli_bad_inputs.py, which checks the line is absent)."""

from __future__ import annotations

import argparse
from typing import TextIO

import pytest
from autozero import cli, exits


def crash(exception: BaseException) -> object:
    def run(args: argparse.Namespace, out: TextIO) -> int:
        raise exception

    return run


ARGS = ["simulate", "-f", "policy.yaml", "--trace", "trace.csv"]


def test_an_unexpected_error_is_one_line_and_exit_70(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(cli.DEBUG_ENV, raising=False)
    monkeypatch.setattr(cli, "run_simulate", crash(RuntimeError("the flux\ncapacitor is off")))
    assert cli.main(ARGS) == exits.INTERNAL_ERROR == 70
    captured = capsys.readouterr()
    assert captured.err == (
        "autozero: internal error: RuntimeError: the flux capacitor is off (please report; "
        "rerun with AUTOZERO_DEBUG=1 for the traceback)\n"
    )
    assert captured.out == ""


def test_autozero_debug_shows_the_traceback_too(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(cli.DEBUG_ENV, "1")
    monkeypatch.setattr(cli, "run_simulate", crash(RuntimeError("the flux capacitor is off")))
    assert cli.main(ARGS) == exits.INTERNAL_ERROR
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):")
    assert "in run\n    raise exception\nRuntimeError: the flux capacitor is off\n" in err
    assert err.endswith(
        "autozero: internal error: RuntimeError: the flux capacitor is off "
        "(please report; rerun with AUTOZERO_DEBUG=1 for the traceback)\n"
    )


def test_ctrl_c_is_130_and_quiet(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "run_simulate", crash(KeyboardInterrupt()))
    assert cli.main(ARGS) == exits.INTERRUPTED == 130
    assert capsys.readouterr() == ("", "")


def test_usage_errors_stay_argparse_s_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        cli.main(["simulate", "--frobnicate"])
    assert raised.value.code == exits.USAGE
    assert "autozero: internal error" not in capsys.readouterr().err


def test_run_help_documents_every_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["run", "--help"])
    text = capsys.readouterr().out
    for code, meaning in exits.TABLE:
        assert f"  {code:<4} {meaning}\n" in text
