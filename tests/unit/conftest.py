"""`registered`: the throwaway source and target kinds (tests/support/throwaway_kinds.py), each
with the one line per registry a new kind needs, for the plugin and runtime tests; reset around."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from autozero.sources.registry import SOURCES
from autozero.targets.registry import TARGETS
from support import throwaway_kinds as throwaway


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setitem(SOURCES, throwaway.SOURCE.key, throwaway.SOURCE)
    monkeypatch.setitem(TARGETS, throwaway.TARGET.key, throwaway.TARGET)
    throwaway.reset()
    yield
    throwaway.reset()
