"""`kubectl-autozero`: the kubectl plugin, so `kubectl autozero explain POLICY -n NS` works.

kubectl finds any executable named `kubectl-autozero` on PATH (the package installs one) and runs
it with the words after `kubectl autozero`, in kubectl's environment ($KUBECONFIG included).
Only `explain` is offered: the other commands are `autozero`'s, not kubectl's business.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from autozero import __version__, exits
from autozero.explain import command


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubectl autozero",
        description="autozero's kubectl plugin: explain ScalingPolicies.",
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"kubectl-autozero {__version__}",
        help="print the plugin's version and exit",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    command.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code = command.run(args, sys.stdout)
        sys.stdout.flush()
        return code
    except KeyboardInterrupt:
        return exits.INTERRUPTED
    except BrokenPipeError:
        return exits.BROKEN_PIPE


if __name__ == "__main__":
    sys.exit(main())
