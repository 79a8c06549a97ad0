"""Per-day open intervals of a business calendar, computed lazily and kept in an LRU cache.

A *day* is one local calendar date of the calendar's zone, as the half-open UTC range
[local midnight, next local midnight). Its open intervals are the week template's intervals
of that date and of the previous date (an overnight shift spills over midnight), clipped to
the day, minus holidays / closures (whole dates) and minus closed iCalendar intervals.
Days therefore never overlap, so sums over days never double-count.

Everything is integer epoch seconds. The caches make a calendar's second pass over the
same dates cost a dictionary look-up per day, and ``week_total`` lets ``add``/``between``
jump whole weeks.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from engine.sla.zone import Zone

__all__ = ["Day", "DayTable", "Interval"]

Interval = tuple[int, int]
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
DAY_CACHE_SIZE = 16_384  # ~45 years of dates
WEEK_CACHE_SIZE = 4_096


@dataclass(frozen=True, slots=True)
class Day:
    """One local date: its UTC bounds, open intervals (sorted, disjoint) and their total."""

    ordinal: int
    start: int
    end: int
    intervals: tuple[Interval, ...]
    total: int


class DayTable:
    """Computes and caches ``Day`` values for one calendar."""

    def __init__(
        self,
        zone: Zone,
        week: tuple[tuple[Interval, ...], ...],
        all_hours: bool,
        is_closed: Callable[[date], bool],
        closed_intervals: tuple[Interval, ...],
    ) -> None:
        self.zone = zone
        self._week = week
        self._all_hours = all_hours
        self._is_closed = is_closed
        self._closed = closed_intervals
        self._closed_starts = [c[0] for c in closed_intervals]
        self._closed_ends = [c[1] for c in closed_intervals]
        self._plain_total: int | None = None
        self.day: Callable[[int], Day] = lru_cache(maxsize=DAY_CACHE_SIZE)(self._day)
        self.midnight: Callable[[int], int] = lru_cache(maxsize=DAY_CACHE_SIZE)(self._midnight)
        self.week_total: Callable[[int], int] = lru_cache(maxsize=WEEK_CACHE_SIZE)(
            self._week_total
        )
        self._raw: Callable[[int], tuple[Interval, ...]] = lru_cache(maxsize=64)(self._raw_day)
        self.shifts: Callable[[int], tuple[Interval, ...]] = lru_cache(maxsize=DAY_CACHE_SIZE)(
            self._shifts
        )

    def _midnight(self, ordinal: int) -> int:
        return self.zone.wall_to_epoch(ordinal, 0)

    def _raw_day(self, ordinal: int) -> tuple[Interval, ...]:
        """The template intervals that START on local date ``ordinal`` (may run past midnight)."""
        if self._is_closed(date.fromordinal(ordinal)):
            return ()
        if self._all_hours:
            return ((self.midnight(ordinal), self.midnight(ordinal + 1)),)
        wall = self.zone.wall_to_epoch
        out = []
        for start, end in self._week[(ordinal - 1) % 7]:  # ordinal 1 is a Monday
            begin, finish = wall(ordinal, start), wall(ordinal, end, latest=True)
            if finish > begin:
                out.append((begin, finish))
        return tuple(out)

    def _shifts(self, ordinal: int) -> tuple[Interval, ...]:
        """Open intervals that START on local date ``ordinal`` (a business day's shifts),
        after closed iCalendar intervals; an overnight shift is not cut at midnight."""
        raw = list(self._raw(ordinal))
        if self._closed and raw:
            raw = self._subtract(raw, raw[0][0], max(e for _, e in raw))
        return tuple(raw)

    def _day(self, ordinal: int) -> Day:
        lo, hi = self.midnight(ordinal), self.midnight(ordinal + 1)
        pieces = sorted(
            (max(s, lo), min(e, hi))
            for s, e in self._raw(ordinal - 1) + self._raw(ordinal)
            if min(e, hi) > max(s, lo)
        )
        merged: list[Interval] = []
        for s, e in pieces:
            if merged and s <= merged[-1][1]:
                if e > merged[-1][1]:
                    merged[-1] = (merged[-1][0], e)
            else:
                merged.append((s, e))
        if self._closed and merged:
            merged = self._subtract(merged, lo, hi)
        return Day(ordinal, lo, hi, tuple(merged), sum(e - s for s, e in merged))

    def _subtract(self, intervals: list[Interval], lo: int, hi: int) -> list[Interval]:
        first = max(0, bisect_right(self._closed_starts, lo) - 1)
        closed = [c for c in self._closed[first:] if c[0] < hi and c[1] > lo]
        if not closed:
            return intervals
        out: list[Interval] = []
        for s, e in intervals:
            cursor = s
            for cs, ce in closed:
                if ce <= cursor or cs >= e:
                    continue
                if cs > cursor:
                    out.append((cursor, cs))
                cursor = max(cursor, ce)
            if cursor < e:
                out.append((cursor, e))
        return out

    def _week_total(self, ordinal: int) -> int:
        """Open seconds of the 7 days from ``ordinal``; a *plain* week (no closed date, no
        closed iCalendar interval, no UTC-offset change near it) has the same total as every
        other plain week, so it is computed once and reused without building its days."""
        plain = self._plain(ordinal)
        if plain and self._plain_total is not None:
            return self._plain_total
        total = sum(self.day(ordinal + i).total for i in range(7))
        if plain:
            self._plain_total = total
        return total

    def _plain(self, ordinal: int) -> bool:
        base = (ordinal - _EPOCH_ORDINAL) * 86_400
        lo, hi = base - 2 * 86_400, base + 9 * 86_400  # generous: local midnights are within 1 day
        if self.zone.offset(lo) != self.zone.offset(hi):
            return False
        if any(self._is_closed(date.fromordinal(ordinal + i)) for i in range(-1, 7)):
            return False
        if self._closed:  # disjoint and sorted: the ends are sorted too
            i = bisect_right(self._closed_ends, lo)
            if i < len(self._closed) and self._closed[i][0] < hi:
                return False
        return True
