"""Every command and every option of `autozero` says what it does, and what it does by default."""

from __future__ import annotations

import argparse

import pytest
from autozero.cli import build_parser


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (subparsers,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {"autozero": parser, **{f"autozero {n}": p for n, p in subparsers.choices.items()}}


COMMANDS = _commands()


def _options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [
        a
        for a in parser._actions
        if not isinstance(a, argparse._HelpAction | argparse._SubParsersAction)
    ]


def test_every_command_is_listed_with_a_summary() -> None:
    parser = build_parser()
    (subparsers,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    summaries = {a.dest: a.help for a in subparsers._choices_actions}
    assert set(summaries) == set(subparsers.choices)
    assert all(summaries.values()), summaries


@pytest.mark.parametrize("command", sorted(COMMANDS), ids=sorted(COMMANDS))
def test_the_command_has_a_description(command: str) -> None:
    assert (COMMANDS[command].description or "").strip()


@pytest.mark.parametrize("command", sorted(COMMANDS), ids=sorted(COMMANDS))
def test_every_option_has_help(command: str) -> None:
    silent = [a.option_strings or [a.dest] for a in _options(COMMANDS[command]) if not a.help]
    assert silent == []


@pytest.mark.parametrize("command", sorted(COMMANDS), ids=sorted(COMMANDS))
def test_every_option_says_its_default(command: str) -> None:
    """An option with a value by default shows it (%(default)s); one without says what then
    happens ("default: ..."). Required options, positionals and flags that print and exit
    have no default to tell."""
    unsaid = []
    for action in _options(COMMANDS[command]):
        if action.required or not action.option_strings:
            continue
        if isinstance(action, argparse._VersionAction):
            continue
        text = action.help or ""
        if "default" not in text.lower():
            unsaid.append(action.option_strings[0])
        elif action.default not in (None, False, [], argparse.SUPPRESS):
            assert "%(default" in text, f"{action.option_strings[0]}: use %(default)s"
    assert unsaid == []


def test_the_help_renders(capsys: pytest.CaptureFixture[str]) -> None:
    for parser in COMMANDS.values():
        parser.print_help()  # a stray % in a help string raises here
    assert "(default: 8080)" in capsys.readouterr().out
