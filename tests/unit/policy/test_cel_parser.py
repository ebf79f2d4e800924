"""cel-python builds its Lark parser once per process, however many threads compile their first
rules at once: a restarted operator parses its policies on several threads, and each used to
build the parser's LALR tables (0.1 s of CPU each, far more on a loaded node)."""

from __future__ import annotations

import threading
from typing import Any

import celpy.celparser
import lark
import pytest
from autozero.policy import validate


def test_threads_compiling_their_first_rules_at_once_build_one_parser(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built: list[int] = []

    class CountedLark(lark.Lark):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            built.append(threading.get_ident())
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(celpy.celparser, "Lark", CountedLark)
    monkeypatch.setattr(celpy.celparser.CELParser, "CEL_PARSER", None)  # a fresh process
    monkeypatch.setattr(validate, "_HELD", {})  # every thread evaluates: nothing remembered
    validate._program.cache_clear()
    threads = 8
    start = threading.Barrier(threads)
    held: list[bool | None] = []

    def compile_one(n: int) -> None:
        start.wait()
        held.append(validate._holds(f"self.n == {n}", {"n": n}))

    workers = [threading.Thread(target=compile_one, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    validate._program.cache_clear()  # programs of the counted parser: not for later tests
    assert held == [True] * threads
    assert len(built) == 1, f"the parser was built {len(built)} times"
