from __future__ import annotations

import re
from datetime import timedelta

import pytest
from autozero.engine.durations import (
    DURATION_PATTERN,
    DurationError,
    format_duration,
    parse_duration,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("30s", timedelta(seconds=30), id="seconds"),
        pytest.param("5m", timedelta(minutes=5), id="minutes"),
        pytest.param("1h30m", timedelta(hours=1, minutes=30), id="hours-and-minutes"),
        pytest.param("250ms", timedelta(milliseconds=250), id="milliseconds"),
        pytest.param("1.5h", timedelta(minutes=90), id="fraction"),
        pytest.param("2h0m5s", timedelta(hours=2, seconds=5), id="zero-part"),
        pytest.param("0s", timedelta(0), id="zero"),
        pytest.param("90s", timedelta(seconds=90), id="overflowing-unit"),
    ],
)
def test_parse(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected
    assert re.fullmatch(DURATION_PATTERN, text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("", "empty", id="empty"),
        pytest.param("30", "a unit is required", id="bare-number"),
        pytest.param("-5m", "unexpected", id="negative"),
        pytest.param("5 m", "unexpected", id="space"),
        pytest.param("5min", "unexpected", id="long-unit"),
        pytest.param("1d", "unexpected", id="days-not-go-style"),
        pytest.param("m5", "unexpected", id="unit-first"),
    ],
)
def test_parse_rejects_with_a_clear_message(text: str, message: str) -> None:
    with pytest.raises(DurationError, match=message) as raised:
        parse_duration(text)
    assert raised.value.text == text
    assert "e.g. 30s, 5m, 1h30m" in str(raised.value)
    assert not re.fullmatch(DURATION_PATTERN, text)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        pytest.param(timedelta(0), "0s", id="zero"),
        pytest.param(timedelta(seconds=90), "1m30s", id="carry"),
        pytest.param(timedelta(hours=25), "25h", id="no-days"),
        pytest.param(timedelta(milliseconds=1500), "1s500ms", id="ms"),
    ],
)
def test_format_round_trips(value: timedelta, text: str) -> None:
    assert format_duration(value) == text
    assert parse_duration(text) == value
