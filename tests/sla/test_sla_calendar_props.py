"""Properties of business-time arithmetic, for random starts and durations in several zones."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from sla_helpers import WEEKDAYS

from engine.sla.calendar import BusinessCalendar

CALENDARS = [
    BusinessCalendar.create(
        "office",
        "Europe/Amsterdam",
        week={d: ["08:00-12:00", "13:00-17:30"] for d in WEEKDAYS},
        country="NL",
        recurring_holidays=["12-24"],
        closures=["2026-05-15"],
    ),
    BusinessCalendar.create("night", "Europe/Berlin", week={d: ["22:00-06:00"] for d in WEEKDAYS}),
    BusinessCalendar.create(
        "dst_edges",
        "Australia/Sydney",
        week={"sun": ["01:30-03:30"], "mon": ["00:00-24:00"], "sat": ["23:00-02:30"]},
    ),
    BusinessCalendar.create("sp", "America/Sao_Paulo", week={d: ["00:00-09:00"] for d in WEEKDAYS}),
    BusinessCalendar.always("Asia/Tehran"),
]


def _with_ical_closures() -> BusinessCalendar:
    """Office hours in Berlin minus a closed 10:00-11:30 UTC slot every third day, a closed
    overnight stretch every 50 days and every 40th date (as an iCalendar import would)."""
    base = BusinessCalendar.create(
        "ical", "Europe/Berlin", week={d: ["08:00-12:00", "13:00-18:00"] for d in WEEKDAYS}
    )
    first = int(datetime(2016, 12, 1, tzinfo=UTC).timestamp())
    slots = [(first + d * 86_400 + 36_000, first + d * 86_400 + 41_400) for d in range(0, 4100, 3)]
    nights = [
        (first + d * 86_400 + 60_000, first + d * 86_400 + 120_000) for d in range(1, 4100, 50)
    ]
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(slots + nights):
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
        else:
            merged.append((lo, hi))
    days = frozenset((datetime(2017, 1, 1) + timedelta(days=d)).date() for d in range(0, 4000, 40))
    return replace(base, ical_intervals=tuple(merged), ical_days=days)


CALENDARS.append(_with_ical_closures())
calendars = st.sampled_from(CALENDARS)
starts = st.integers(
    min_value=int(datetime(2017, 1, 1, tzinfo=UTC).timestamp()),
    max_value=int(datetime(2027, 12, 31, tzinfo=UTC).timestamp()),
).map(lambda s: datetime.fromtimestamp(s, UTC))
durations = st.integers(min_value=0, max_value=90 * 86_400)


@settings(max_examples=150, deadline=None)
@given(calendars, starts, durations)
def test_between_inverts_add(cal: BusinessCalendar, start: datetime, seconds: int) -> None:
    assert cal.between(start, cal.add(start, seconds)) == seconds


@settings(max_examples=150, deadline=None)
@given(calendars, starts, durations.filter(lambda d: d > 0))
def test_add_never_lands_in_closed_time(
    cal: BusinessCalendar, start: datetime, seconds: int
) -> None:
    end = cal.add(start, seconds)
    # open there, or exactly the end of an interval (open just before)
    assert cal.is_open(end) or cal.is_open(end - timedelta(seconds=1))


@settings(max_examples=100, deadline=None)
@given(calendars, starts, durations, durations)
def test_add_is_monotonic(cal: BusinessCalendar, start: datetime, a: int, b: int) -> None:
    lo, hi = sorted((a, b))
    assert cal.add(start, lo) <= cal.add(start, hi)


@settings(max_examples=100, deadline=None)
@given(calendars, starts, durations, durations)
def test_add_composes(cal: BusinessCalendar, start: datetime, a: int, b: int) -> None:
    assert cal.add(cal.add(start, a), b) == cal.add(start, a + b) or a == 0 or b == 0


@settings(max_examples=100, deadline=None)
@given(calendars, starts, starts)
def test_between_is_additive_and_bounded(cal: BusinessCalendar, x: datetime, y: datetime) -> None:
    a, b = sorted((x, y))
    mid = a + (b - a) / 2
    mid = mid.replace(microsecond=0)
    assert cal.between(a, b) == cal.between(a, mid) + cal.between(mid, b)
    assert 0 <= cal.between(a, b) <= int((b - a).total_seconds())


@settings(max_examples=100, deadline=None)
@given(calendars, starts)
def test_next_open_is_open_and_nothing_open_before_it(cal: BusinessCalendar, t: datetime) -> None:
    nxt = cal.next_open(t)
    assert cal.is_open(nxt)
    assert cal.between(t, nxt) == 0


@settings(max_examples=80, deadline=None)
@given(calendars, starts, st.integers(min_value=0, max_value=120 * 86_400))
def test_between_equals_the_open_intervals(cal: BusinessCalendar, a: datetime, span: int) -> None:
    b = a + timedelta(seconds=span)
    intervals = cal.open_intervals(a, b)
    assert cal.between(a, b) == sum(int((hi - lo).total_seconds()) for lo, hi in intervals)
    assert all(cal.is_open(lo) for lo, _ in intervals)


@settings(max_examples=80, deadline=None)
@given(calendars, starts, st.integers(0, 30), st.integers(0, 30), st.booleans())
def test_add_days_is_monotonic_and_lands_in_business_time(
    cal: BusinessCalendar, start: datetime, m: int, n: int, end_of_day: bool
) -> None:
    lo, hi = sorted((m, n))
    first = cal.add_days(start, lo, end_of_day=end_of_day)
    assert first <= cal.add_days(start, hi, end_of_day=end_of_day)
    assert cal.is_open(first) or cal.is_open(first - timedelta(seconds=1))
