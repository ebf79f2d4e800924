"""`autozero completion bash|zsh|fish`: shell code that completes autozero's commands and options.

The code comes from argcomplete, the maintained argparse completion library that covers fish as
well as bash and zsh (shtab writes static bash, zsh and tcsh scripts, but no fish). The shell code
asks `autozero` itself for the candidates (argcomplete's `_ARGCOMPLETE` protocol), so completion
always matches the installed version's parser; `complete` is the hook `main` calls for that.
"""

from __future__ import annotations

import argparse
import os

SHELLS = ("bash", "zsh", "fish")

COMPLETION_HELP = """\
Print the shell code that completes autozero's commands and options, then load it:

  bash  eval "$(autozero completion bash)"          in ~/.bashrc, or save it as
        ~/.local/share/bash-completion/completions/autozero
  zsh   eval "$(autozero completion zsh)"           in ~/.zshrc, after compinit
  fish  autozero completion fish > ~/.config/fish/completions/autozero.fish

The code calls autozero itself to find the candidates, so it stays right after an upgrade."""

# argcomplete's protocol: the shell code sets this when it asks the program for completions.
_REQUEST = "_ARGCOMPLETE"


def shell_code(shell: str, executable: str = "autozero") -> str:
    """The code that registers completion of `executable` in `shell` (one of SHELLS)."""
    if shell not in SHELLS:
        raise ValueError(f"no completion for {shell!r} (supported: {', '.join(SHELLS)})")
    from argcomplete.shell_integration import shellcode

    return shellcode([executable], shell=shell)


def complete(parser: argparse.ArgumentParser) -> None:
    """When the shell asks for completions, print them and exit; otherwise return at once."""
    if _REQUEST not in os.environ:
        return
    from argcomplete import autocomplete

    autocomplete(parser)
