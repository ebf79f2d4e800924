"""Did-you-mean: near misses are suggested, unrelated words are not."""

from __future__ import annotations

import pytest
from autozero.policy.suggest import closest, distance


@pytest.mark.parametrize(
    ("a", "b", "edits"),
    [
        pytest.param("idelFor", "idleFor", 1, id="swap"),
        pytest.param("backlg", "backlog", 1, id="missing-letter"),
        pytest.param("cpu", "cpu", 0, id="same"),
        pytest.param("", "abc", 3, id="empty"),
        pytest.param("kitten", "sitting", 3, id="classic"),
    ],
)
def test_distance(a: str, b: str, edits: int) -> None:
    assert distance(a, b) == edits
    assert distance(b, a) == edits


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        pytest.param("pollInterval", "pollingInterval", id="dropped-syllable"),
        pytest.param("IdleFor", "idleFor", id="case"),
        pytest.param("schedule", None, id="unrelated"),
        pytest.param("idleFor", None, id="exact-is-no-suggestion"),
    ],
)
def test_closest(word: str, expected: str | None) -> None:
    assert closest(word, ["pollingInterval", "idleFor", "metric"]) == expected
