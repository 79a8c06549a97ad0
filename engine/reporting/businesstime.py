"""Business seconds between many instant pairs, fast: prefix sums over the calendar's open intervals.

``BusinessCalendar.between`` walks the days between two instants (tens of microseconds); a
report asks it once per resolved case. ``BusinessTimeIndex`` asks the calendar once for the
open intervals of the whole report span, then answers each pair with two binary searches.
Outside the indexed span (or for spans the calendar refuses) it defers to the calendar.
"""

from __future__ import annotations

from bisect import bisect_right
from datetime import datetime
from typing import Any

from engine.errors import CalendarError

__all__ = ["BusinessTimeIndex"]


class BusinessTimeIndex:
    """``between(a, b)`` equal to ``calendar.between(a, b)`` for instants inside [lo, hi]."""

    def __init__(self, calendar: Any, lo: datetime, hi: datetime) -> None:
        self.calendar = calendar
        self.lo, self.hi = lo.timestamp(), hi.timestamp()
        self.starts: list[float] = []
        self.ends: list[float] = []
        self.prefix: list[float] = [0.0]
        try:
            intervals = calendar.open_intervals(lo, hi)
        except CalendarError:
            self.lo, self.hi = 1.0, 0.0  # empty index: every call goes to the calendar
            return
        for s, e in intervals:
            self.starts.append(s.timestamp())
            self.ends.append(e.timestamp())
            self.prefix.append(self.prefix[-1] + (self.ends[-1] - self.starts[-1]))

    def _cum(self, t: float) -> float:
        i = bisect_right(self.starts, t) - 1
        if i < 0:
            return 0.0
        return self.prefix[i] + min(t, self.ends[i]) - self.starts[i]

    def between(self, a: datetime, b: datetime) -> float:
        """Business seconds in [a, b) (0 when b is not after a)."""
        ta, tb = a.timestamp(), b.timestamp()
        if tb <= ta:
            return 0.0
        if ta < self.lo or tb > self.hi:
            return float(self.calendar.between(a, b))
        return self._cum(tb) - self._cum(ta)
