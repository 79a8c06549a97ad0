"""The report's fast business-time index agrees with the calendar, across DST and holidays."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from engine.reporting.businesstime import BusinessTimeIndex
from tests.reporting.conftest import utc


def test_index_between_equals_calendar_between_for_random_pairs(office_nl: Any) -> None:
    lo, hi = utc(2026, 1, 1), utc(2027, 1, 10)
    index = BusinessTimeIndex(office_nl, lo, hi)
    rnd = random.Random(11)
    for _ in range(2000):
        a = lo + timedelta(seconds=rnd.randrange(int((hi - lo).total_seconds())))
        b = a + timedelta(seconds=rnd.choice((rnd.randrange(3600), rnd.randrange(86400 * 3),
                                              rnd.randrange(86400 * 40))))
        assert index.between(a, b) == office_nl.between(a, b), (a, b)


def test_index_outside_its_span_defers_to_the_calendar(office_nl: Any) -> None:
    index = BusinessTimeIndex(office_nl, utc(2026, 3, 1), utc(2026, 4, 1))
    a, b = utc(2026, 2, 2, 8), utc(2026, 3, 3, 12)  # starts before the span
    assert index.between(a, b) == office_nl.between(a, b)
    assert index.between(b, a) == 0
