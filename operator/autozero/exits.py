"""The exit codes of the `autozero` command, one meaning each, so scripts and cron can tell a
policy to fix from a group that failed this cycle from a bug in autozero.

The table is printed by `autozero run --help` and kept in docs/troubleshooting.md.
"""

from __future__ import annotations

OK = 0
#: A file, flag value, Secret, kubeconfig or credential that must be fixed before running again.
BAD_INPUT = 1
#: The command line itself: an unknown flag, a missing argument, a value of the wrong form.
USAGE = 2
#: `run --once`: the cycle ran, but a group's target could not be read or changed, or a metric
#: one of its groups uses could not be read. Running again may succeed.
CYCLE_FAILED = 3
#: A bug in autozero: an exception nothing expected (sysexits' EX_SOFTWARE).
INTERNAL_ERROR = 70
#: Ctrl-C (SIGINT) outside `run` and `operator`, which stop cleanly with 0 instead.
INTERRUPTED = 130
#: Standard output was closed early (`autozero simulate ... | head`); nothing more is printed.
BROKEN_PIPE = 141

TABLE = (
    (OK, "success; run without --once: stopped cleanly by SIGTERM or Ctrl-C"),
    (BAD_INPUT, "bad input: a policy, trace, state file, Secret, kubeconfig or credential"),
    (USAGE, "usage: an unknown flag, a missing or malformed argument"),
    (CYCLE_FAILED, "run --once: a group's target or one of its metrics failed in the cycle"),
    (INTERNAL_ERROR, "internal error in autozero (please report it)"),
    (INTERRUPTED, "interrupted by Ctrl-C (validate, simulate, run before its loop starts)"),
    (BROKEN_PIPE, "standard output closed early (e.g. piped into head)"),
)


def epilog() -> str:
    """The exit-code table for a command's --help."""
    rows = "\n".join(f"  {code:<4} {meaning}" for code, meaning in TABLE)
    return f"exit codes:\n{rows}"
