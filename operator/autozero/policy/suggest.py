"""'Did you mean ...?': the closest known word to a mistyped one, by edit distance.

A typo in a field name, a metric name, an enum value or a kind is the commonest mistake in a
policy; naming the word that was meant saves the user a trip to the reference.
"""

from __future__ import annotations

from collections.abc import Iterable


def distance(a: str, b: str) -> int:
    """Edit distance counting an adjacent swap as one edit (`idelFor` is one from `idleFor`)."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, start=1):
        current = [i] + [0] * len(b)
        for j, char_b in enumerate(b, start=1):
            cost = 0 if char_a == char_b else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and char_a == b[j - 2] and a[i - 2] == char_b:
                current[j] = min(current[j], previous2[j - 2] + 1)
        previous2, previous = previous, current
    return previous[len(b)]


def tolerance(word: str) -> int:
    """How many edits still make a plausible typo: 1 below 5 letters, 2 below 12, else 3."""
    return 1 if len(word) < 5 else (2 if len(word) < 12 else 3)


def closest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate nearest to `word` (case-insensitive), if near enough to be a typo of it."""
    best: tuple[int, str] | None = None
    for candidate in candidates:
        if candidate == word:
            continue
        edits = distance(word.lower(), candidate.lower())
        if edits <= tolerance(candidate) and (best is None or edits < best[0]):
            best = (edits, candidate)
    return best[1] if best else None


def did_you_mean(word: object, candidates: Iterable[str]) -> str:
    """' (did you mean X?)' or '', to append to a message."""
    if not isinstance(word, str):
        return ""
    match = closest(word, candidates)
    return f" (did you mean {match}?)" if match else ""
