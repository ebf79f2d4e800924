"""`autozero completion`: the shell code argcomplete writes, loaded in a real bash and asked to
complete, as the shell does on TAB (the code runs the installed `autozero` to find candidates)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from autozero.cli import main
from autozero.completion import SHELLS

BIN = Path(sys.executable).parent  # where the `autozero` console script is installed


def script(capsys: pytest.CaptureFixture[str], shell: str) -> str:
    assert main(["completion", shell]) == 0
    out = capsys.readouterr().out
    assert out.strip()
    return out


def bash(code: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def complete(loaded: Path, line: str) -> list[str]:
    """What bash offers for `line` (the cursor at its end), through the registered function."""
    result = bash(
        f"""
        source {loaded}
        function=$(complete -p autozero | sed -E 's/.* -F ([^ ]+) .*/\\1/')
        COMP_LINE={line!r}
        COMP_POINT=${{#COMP_LINE}}
        read -ra COMP_WORDS <<< "$COMP_LINE"
        [[ "$COMP_LINE" == *" " ]] && COMP_WORDS+=("")
        COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))
        "$function" autozero "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
        printf '%s\\n' "${{COMPREPLY[@]}}"
        """
    )
    assert result.returncode == 0, result.stderr
    return sorted(word.strip() for word in result.stdout.splitlines() if word.strip())


@pytest.fixture
def loaded(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> Path:
    path = tmp_path / "autozero.bash"
    path.write_text(script(capsys, "bash"))
    return path


def test_the_bash_code_is_valid_bash(loaded: Path) -> None:
    checked = bash(f"bash -n {loaded}")
    assert checked.returncode == 0, checked.stderr


def test_bash_completes_the_commands(loaded: Path) -> None:
    assert complete(loaded, "autozero ") == sorted(
        [
            "completion",
            "convert",
            "explain",
            "operator",
            "run",
            "simulate",
            "validate",
            "--help",
            "--version",
            "-h",
        ]
    )
    assert complete(loaded, "autozero convert ") == sorted(["keda", "--help", "-h"])
    assert complete(loaded, "autozero si") == ["simulate"]


def test_bash_completes_a_commands_options_and_choices(loaded: Path) -> None:
    assert {"--trace", "--plot", "--initial-replicas"} <= set(
        complete(loaded, "autozero simulate --")
    )
    assert set(SHELLS) <= set(complete(loaded, "autozero completion "))
    assert complete(loaded, "autozero validate --output ") == ["json", "text"]


@pytest.mark.parametrize("shell", ["zsh", "fish"], ids=["zsh", "fish"])
def test_zsh_and_fish_get_their_own_code(capsys: pytest.CaptureFixture[str], shell: str) -> None:
    """Neither shell is installed here, so only the registration is checked (zsh: compdef,
    fish: complete --command), not a run."""
    code = script(capsys, shell)
    wanted = "compdef _python_argcomplete autozero" if shell == "zsh" else "--command autozero"
    assert wanted in code
    if shutil.which(shell):
        checked = subprocess.run([shell, "-n"], input=code, text=True, check=False, timeout=60)
        assert checked.returncode == 0


def test_an_unknown_shell_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["completion", "tcsh"])
    assert exited.value.code == 2
    assert "invalid choice: 'tcsh'" in capsys.readouterr().err
