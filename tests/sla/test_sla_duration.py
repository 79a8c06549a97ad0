"""Durations: ISO 8601 and short forms to seconds; bad input refused with examples."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.errors import CalendarError
from engine.sla.duration import (
    MAX_DURATION_SECONDS,
    format_duration,
    format_iso,
    parse_duration,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("PT5H", 18_000),
        ("P2D", 172_800),
        ("PT1H30M", 5_400),
        ("P1DT2H", 93_600),
        ("P1W", 604_800),
        ("PT90S", 90),
        ("PT1.5H", 5_400),
        ("pt15m", 900),
        ("5h", 18_000),
        ("45m", 2_700),
        ("3h30m", 12_600),
        ("90s", 90),
        ("2d", 172_800),
        ("1w", 604_800),
        ("1d 4h", 100_800),
        (" 15 m ", 900),
    ],
)
def test_accepts_iso_and_short_forms(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty"),
        ("-5h", "negative"),
        ("-PT5H", "negative"),
        ("0s", "zero"),
        ("PT0S", "zero"),
        ("P1Y", "years and months"),
        ("P1M", "years and months"),
        ("abc", "cannot read"),
        ("5x", "cannot read"),
        ("h5", "cannot read"),
        ("1h1h", "out of order"),
        ("30m2h", "out of order"),
        ("PT0.5S", "fraction of a second"),
        ("P", "not an ISO 8601"),
        ("P1DT", "not an ISO 8601"),
        ("20000d", "longer than 10 years"),
        ("9" * 80 + "h", "longer than 64"),
    ],
)
def test_rejects_bad_durations_saying_why_with_examples(text: str, why: str) -> None:
    with pytest.raises(CalendarError) as info:
        parse_duration(text)
    assert why in str(info.value)
    assert "examples: PT4H" in str(info.value)


@pytest.mark.parametrize("value", [5, 1.5, None, True, ["5h"]])
def test_rejects_non_strings(value: object) -> None:
    with pytest.raises(CalendarError, match="expected a string"):
        parse_duration(value)  # type: ignore[arg-type]


def test_zero_allowed_when_asked() -> None:
    assert parse_duration("0h", allow_zero=True) == 0
    assert parse_duration("PT0S", allow_zero=True) == 0


def test_format_forms() -> None:
    assert format_duration(95_400) == "1d2h30m"
    assert format_duration(0) == "0s"
    assert format_iso(95_400) == "P1DT2H30M"
    assert format_iso(0) == "PT0S"
    assert format_iso(59) == "PT59S"


@given(st.integers(min_value=1, max_value=MAX_DURATION_SECONDS))
def test_format_round_trips(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds
    assert parse_duration(format_iso(seconds)) == seconds
