"""What the test ground's commands (`make demo`, `make chaos`, `make bench-keda`) share: number
types that argparse refuses with a usage error, and a top level that prints a failure as one
line: no traceback reaches the user, and the servers stop on the way out either way."""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Callable


def at_least(kind: type[float], low: float, *, above: bool = False) -> Callable[[str], float]:
    """An argparse type: a number of `kind` at least `low` (above it with `above`)."""

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a{'n integer' if kind is int else ' number'}"
            ) from None
        if value < low or (above and value == low):
            raise argparse.ArgumentTypeError(
                f"{text} is not {'above' if above else 'at least'} {low:g}"
            )
        return value

    return parse


def positive(kind: type[float]) -> Callable[[str], float]:
    """An argparse type: a number of `kind` above 0."""
    return at_least(kind, 0, above=True)


def run(main: Callable[[], int], name: str) -> int:
    """Run a command's `main`; a failure is one line on stderr and exit status 1 (130 on ^C).
    The test ground's own errors (a server that did not start, kubectl, helm, an image build)
    are RuntimeErrors whose message says what the user needs; any other is named by its type.
    AUTOZERO_TRACEBACK=1 prints the traceback too (for a bug in the command itself)."""
    try:
        return main()
    except KeyboardInterrupt:
        print(f"[{name}] interrupted: every server stopped", file=sys.stderr)
        return 130
    except Exception as exc:  # the top level: said, never swallowed
        if os.environ.get("AUTOZERO_TRACEBACK"):
            traceback.print_exc()
        said = str(exc) if isinstance(exc, RuntimeError) else f"{type(exc).__name__}: {exc}"
        print(f"[{name}] FAILED: {said}", file=sys.stderr)
        return 1
