"""Business calendars: when a service is open, and business-time arithmetic over it.

A ``BusinessCalendar`` is a time zone plus weekly open intervals (several per weekday for
lunch breaks; an interval whose end is not after its start runs overnight into the next
day), or 24x7, minus recurring holidays (``MM-DD``), one-off closures (``YYYY-MM-DD``),
a country's public holidays (the ``holidays`` package) and closed days / intervals from an
iCalendar file. Intervals are half-open: open at ``08:00``, closed again at ``17:00``.

Arithmetic is exact to the second and in the calendar's local wall time, converted to UTC
carefully (see engine.sla.zone): a 24x7 day across the spring DST change has 23 hours.
Instants go in as aware datetimes and come out as aware UTC datetimes; sub-second parts
are dropped. Holidays close a whole local date; an overnight shift belongs to the date it
starts on (a holiday on Monday closes the shift Monday 22:00 - Tuesday 06:00).

Example (a 9-17 weekday calendar; Friday 16:00 plus 2 business hours is Monday 10:00):

>>> from datetime import datetime, UTC
>>> cal = BusinessCalendar.create("ops", "UTC", week={d: [("09:00", "17:00")]
...                                for d in ("mon", "tue", "wed", "thu", "fri")})
>>> cal.add(datetime(2026, 1, 9, 16, tzinfo=UTC), 7200).isoformat()
'2026-01-12T10:00:00+00:00'
>>> cal.between(datetime(2026, 1, 9, 16, tzinfo=UTC), datetime(2026, 1, 12, 10, tzinfo=UTC))
7200
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import CalendarError
from engine.sla.days import Day, DayTable, Interval
from engine.sla.ical import read_ical
from engine.sla.zone import Zone, epoch_seconds, from_epoch

if TYPE_CHECKING:
    from engine.sop.model import CalendarSpec

__all__ = ["MAX_CLOSED_DAYS", "WEEKDAYS", "BusinessCalendar"]

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: a stretch of closed days longer than this (about ten years) means "never open"
MAX_CLOSED_DAYS = 3_660
_TIME = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")
_MONTH_DAY = re.compile(r"^(\d{2})-(\d{2})$")


@dataclass(frozen=True, slots=True)
class BusinessCalendar:
    """A business calendar (frozen); build it with ``from_spec``, ``create`` or ``always``.

    Attributes:
        id: the calendar id (``office_nl``).
        timezone: IANA zone name; all wall times are read in it.
        week: seven tuples (Monday first) of ``(start, end)`` seconds after local midnight;
            ``end`` may exceed 86,400 for an overnight interval.
        all_hours: 24x7 (``always: true`` in YAML).
        recurring_holidays: ``(month, day)`` closed every year.
        closures: one-off closed dates.
        country / subdivision: public holidays from the ``holidays`` package.
        ical_days / ical_intervals: closed dates and UTC epoch intervals from an .ics file.
    """

    id: str
    timezone: str
    week: tuple[tuple[Interval, ...], ...] = ((),) * 7
    all_hours: bool = False
    recurring_holidays: frozenset[tuple[int, int]] = frozenset()
    closures: frozenset[date] = frozenset()
    country: str | None = None
    subdivision: str | None = None
    ical_days: frozenset[date] = frozenset()
    ical_intervals: tuple[Interval, ...] = ()
    _table: DayTable = field(init=False, repr=False, compare=False, hash=False)
    _public: dict[int, frozenset[date]] = field(
        init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        zone = Zone(self.timezone)
        if len(self.week) != 7:
            raise CalendarError(
                f"calendar {self.id!r}: week must have 7 days, not {len(self.week)}"
            )
        if not self.all_hours and not any(self.week):
            raise CalendarError(
                f"calendar {self.id!r}: no open hours (give intervals under 'week', "
                "e.g. mon: [['08:00', '17:00']], or 'always: true' for 24x7)"
            )
        if len(self.recurring_holidays) >= 366:
            raise CalendarError(
                f"calendar {self.id!r}: no open hours "
                "(every date of the year is a recurring holiday)"
            )
        object.__setattr__(self, "_public", {})
        if self.country:
            self._public_holidays(2000)  # fail now on an unknown country or subdivision
        table = DayTable(zone, self.week, self.all_hours, self.is_closed_date, self.ical_intervals)
        object.__setattr__(self, "_table", table)

    def __reduce__(self) -> tuple[type[BusinessCalendar], tuple[object, ...]]:
        """Pickle / copy by the defining values; caches are rebuilt, not copied."""
        return (type(self), tuple(getattr(self, f.name) for f in fields(self) if f.init))

    # ---- construction ------------------------------------------------------------------

    @classmethod
    def always(cls, tz: str = "UTC", id: str = "24x7") -> BusinessCalendar:  # noqa: A002
        """A 24x7 calendar in zone ``tz`` (business time = wall time)."""
        return cls(id=id, timezone=tz, all_hours=True)

    @classmethod
    def create(
        cls,
        id: str,  # noqa: A002 - the calendar's id, as in YAML
        timezone: str,
        *,
        week: Mapping[str, Iterable[Sequence[str] | str]] | None = None,
        always: bool = False,
        recurring_holidays: Iterable[str] = (),
        closures: Iterable[str] = (),
        country: str | None = None,
        subdivision: str | None = None,
        ical: str | Path | None = None,
        base_dir: Path | None = None,
    ) -> BusinessCalendar:
        """Build a calendar from YAML-shaped values (``"08:00"`` strings, ``MM-DD`` dates).

        Raises:
            CalendarError: saying which value is wrong and how to write it.
        """
        where = f"calendar {id!r}"
        zone = Zone(timezone)
        ical_days: frozenset[date] = frozenset()
        ical_intervals: tuple[Interval, ...] = ()
        if ical:
            path = Path(ical)
            if not path.is_absolute():
                path = (base_dir or Path.cwd()) / path
            closed = read_ical(path, zone)
            ical_days, ical_intervals = closed.days, closed.intervals
        return cls(
            id=id,
            timezone=timezone,
            week=_parse_week(week or {}, where),
            all_hours=always,
            recurring_holidays=frozenset(_parse_month_day(v, where) for v in recurring_holidays),
            closures=frozenset(_parse_date(v, where) for v in closures),
            country=country,
            subdivision=subdivision,
            ical_days=ical_days,
            ical_intervals=ical_intervals,
        )

    @classmethod
    def from_spec(cls, spec: CalendarSpec, base_dir: Path | None = None) -> BusinessCalendar:
        """Build the calendar a ``kind: calendar`` document describes.

        ``base_dir`` resolves a relative ``ical`` path; by default the directory of the
        document's source file.

        Raises:
            CalendarError: prefixed with the document's position when known.
        """
        if base_dir is None and spec.source:
            base_dir = Path(spec.source).parent
        try:
            return cls.create(
                spec.id,
                spec.timezone,
                week=spec.week,
                always=spec.always,
                recurring_holidays=spec.recurring_holidays,
                closures=spec.closures,
                country=spec.country,
                subdivision=spec.subdivision,
                ical=spec.ical,
                base_dir=base_dir,
            )
        except CalendarError as exc:
            if spec.span is None:
                raise
            raise CalendarError(f"{spec.span}: {exc}") from exc

    def in_zone(self, timezone: str) -> BusinessCalendar:
        """The same hours and holidays read in another zone (a customer's or a level's).

        sla-semantics.md 3.4.1: the zone may come from the calendar (default), the customer
        or the assigned level; the caller picks it and the clock records ``calendar_id``
        plus the zone in the id (``office_nl@America/New_York``).
        """
        if timezone == self.timezone:
            return self
        base = self.id.split("@", 1)[0]
        return replace(self, id=f"{base}@{timezone}", timezone=timezone)

    # ---- what is closed ----------------------------------------------------------------

    def is_closed_date(self, day: date) -> bool:
        """True when the whole local date ``day`` is a holiday or closure."""
        return (
            (day.month, day.day) in self.recurring_holidays
            or day in self.closures
            or day in self.ical_days
            or (self.country is not None and day in self._public_holidays(day.year))
        )

    def _public_holidays(self, year: int) -> frozenset[date]:
        found = self._public.get(year)
        if found is None:
            try:
                found = public_holidays(str(self.country), self.subdivision, year)
            except NotImplementedError as exc:
                raise CalendarError(
                    f"calendar {self.id!r}: unknown holiday set country={self.country!r} "
                    f"subdivision={self.subdivision!r} ({exc})"
                ) from exc
            self._public[year] = found
        return found

    # ---- arithmetic --------------------------------------------------------------------

    def zone_info(self) -> Any:
        """The ``zoneinfo.ZoneInfo`` of the calendar."""
        return self._table.zone.tz

    def local(self, instant: datetime) -> datetime:
        """``instant`` in the calendar's zone (for display)."""
        return self._table.zone.local_datetime(epoch_seconds(instant))

    def is_open(self, instant: datetime) -> bool:
        """True when ``instant`` lies inside an open interval."""
        t = epoch_seconds(instant)
        day = self._table.day(self._table.zone.local_ordinal(t))
        return any(s <= t < e for s, e in day.intervals)

    def next_open(self, instant: datetime) -> datetime:
        """``instant`` itself when open, else the next instant the calendar opens."""
        return from_epoch(self._next_open(epoch_seconds(instant)))

    def add(self, start: datetime, seconds: int) -> datetime:
        """The instant ``seconds`` of business time after ``start``.

        A start in closed time counts from the next open instant. The result is open time,
        or exactly the end of an interval when the time runs out there.

        Raises:
            CalendarError: negative ``seconds``, a naive ``start``, or no open time ahead.
        """
        if type(seconds) is not int or seconds < 0:
            _seconds(seconds)  # raises
        return from_epoch(self._add(epoch_seconds(start), seconds))

    def add_days(self, start: datetime, days: int, end_of_day: bool = False) -> datetime:
        """``days`` business days after ``start`` ("N business days", not N x 24 hours).

        A business day is a local date on which an open interval *starts* (an overnight
        shift belongs to the date it starts on). Counting starts from the business day of
        ``next_open(start)``; the result is the same local wall time on the N-th following
        business day (the next open instant when that time is closed there, or the day's
        close when it is after closing), or with ``end_of_day`` the end of that day's last
        interval (GLPI "end of working day").

        Raises:
            CalendarError: negative ``days`` or no open time ahead.
        """
        if isinstance(days, bool) or not isinstance(days, int) or days < 0:
            raise CalendarError(f"business days must be a whole number >= 0, not {days!r}")
        t = self._next_open(epoch_seconds(start))
        zone, table = self._table.zone, self._table
        today = zone.local_ordinal(t)
        home = today - 1 if any(s <= t < e for s, e in table.shifts(today - 1)) else today
        local = zone.local_datetime(t)
        wall = (today - home) * 86_400 + local.hour * 3600 + local.minute * 60 + local.second
        ordinal, streak = home, 0
        for _ in range(days):
            ordinal += 1
            while not table.shifts(ordinal):
                ordinal, streak = ordinal + 1, self._guard(streak + 1, t)
            streak = 0
        shifts = table.shifts(ordinal)
        if not shifts:  # days == 0 and t opened in a shift of another date
            shifts = table.shifts(zone.local_ordinal(t))
        close = max(e for _, e in shifts) if shifts else t
        if end_of_day:
            return from_epoch(close)
        if days == 0:
            return from_epoch(t)
        candidate = zone.wall_to_epoch(ordinal, wall)
        return from_epoch(close if candidate >= close else self._next_open(candidate))

    def between(self, start: datetime, end: datetime) -> int:
        """Business seconds in [start, end); 0 when ``end`` is not after ``start``."""
        a, b = epoch_seconds(start), epoch_seconds(end)
        if b <= a:
            return 0
        table, zone = self._table, self._table.zone
        ordinal, last = zone.local_ordinal(a), zone.local_ordinal(b)
        total, first = 0, ordinal
        while ordinal <= last:
            if ordinal != first and ordinal % 7 == 1 and ordinal + 7 <= last:
                total += table.week_total(ordinal)
                ordinal += 7
                continue
            for s, e in table.day(ordinal).intervals:
                overlap = min(e, b) - max(s, a)
                if overlap > 0:
                    total += overlap
            ordinal += 1
        return total

    def open_intervals(
        self, start: datetime, end: datetime
    ) -> tuple[tuple[datetime, datetime], ...]:
        """The open intervals within [start, end), clipped, as UTC datetimes (at most ~10 years)."""
        a, b = epoch_seconds(start), epoch_seconds(end)
        table, out = self._table, list[tuple[int, int]]()
        ordinal, last = table.zone.local_ordinal(a), table.zone.local_ordinal(b)
        if last - ordinal > MAX_CLOSED_DAYS:
            raise CalendarError(f"open_intervals: span longer than {MAX_CLOSED_DAYS} days")
        for day in range(ordinal, last + 1):
            for s, e in table.day(day).intervals:
                s, e = max(s, a), min(e, b)
                if e <= s:
                    continue
                if out and out[-1][1] == s:  # contiguous over midnight: one interval
                    out[-1] = (out[-1][0], e)
                else:
                    out.append((s, e))
        return tuple((from_epoch(s), from_epoch(e)) for s, e in out)

    # ---- epoch-second internals --------------------------------------------------------

    def _guard(self, streak: int, t: int) -> int:
        if streak > MAX_CLOSED_DAYS:
            raise CalendarError(
                f"calendar {self.id!r}: no open hours within {MAX_CLOSED_DAYS} days after "
                f"{from_epoch(t).isoformat()}"
            )
        return streak

    def _next_open(self, t: int) -> int:
        return self._add(t, 0)

    def _add(self, t: int, remaining: int) -> int:
        table = self._table
        ordinal = table.zone.local_ordinal(t)
        streak, at_day_start = 0, False
        while True:
            if at_day_start and ordinal % 7 == 1:
                week = table.week_total(ordinal)
                if week < remaining or week == 0:
                    remaining -= week
                    streak = self._guard(streak + 7 if week == 0 else 0, t)
                    ordinal += 7
                    t = table.midnight(ordinal)
                    continue
            day: Day = table.day(ordinal)
            for s, e in day.intervals:
                if e <= t:
                    continue
                if s < t:
                    s = t
                if remaining <= e - s:
                    return s + remaining
                remaining -= e - s
            if day.total == 0:
                streak = self._guard(streak + 1, t)
            else:
                streak = 0
            ordinal += 1
            t, at_day_start = day.end, True


@lru_cache(maxsize=1024)
def public_holidays(country: str, subdivision: str | None, year: int) -> frozenset[date]:
    """The public holidays of a country (and subdivision) in one year, shared by all calendars.

    Raises:
        NotImplementedError: the ``holidays`` package knows no such country / subdivision.
    """
    import holidays  # only calendars with public holidays pay for this import

    return frozenset(holidays.country_holidays(country, subdiv=subdivision, years=year).keys())


def _seconds(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise CalendarError(f"business time must be whole seconds (int), not {value!r}")
    if value < 0:
        raise CalendarError(f"business time must not be negative, got {value} seconds")
    return value


def _parse_time(text: object, where: str, *, end: bool) -> int:
    m = _TIME.match(str(text).strip()) if isinstance(text, str) else None
    if m is None:
        raise CalendarError(f"{where}: {text!r} is not a time; write HH:MM, e.g. '08:30'")
    hours, minutes, seconds = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
    value = hours * 3600 + minutes * 60 + seconds
    limit = 86_400 if end else 86_399
    if minutes > 59 or seconds > 59 or value > limit:
        top = "24:00" if end else "23:59"
        raise CalendarError(f"{where}: {text!r} is not a time of day (00:00 .. {top})")
    return value


def _parse_interval(raw: Sequence[str] | str, where: str) -> Interval:
    parts: Sequence[Any]
    if isinstance(raw, str):
        parts = raw.split("-")
    else:
        parts = list(raw)
    if len(parts) != 2:
        raise CalendarError(
            f"{where}: {raw!r} is not an interval; write ['08:00', '12:00'] or '08:00-12:00'"
        )
    start = _parse_time(parts[0], where, end=False)
    end = _parse_time(parts[1], where, end=True)
    if end <= start:  # overnight: runs into the next day (22:00-06:00), 08:00-08:00 = 24 h
        end += 86_400
    return start, end


def _parse_week(
    week: Mapping[str, Iterable[Sequence[str] | str]], where: str
) -> tuple[tuple[Interval, ...], ...]:
    unknown = sorted(set(week) - set(WEEKDAYS))
    if unknown:
        raise CalendarError(
            f"{where}: week: unknown day {unknown[0]!r}; use {', '.join(WEEKDAYS)}"
        )
    out = []
    for name in WEEKDAYS:
        intervals = sorted(
            _parse_interval(raw, f"{where}: week.{name}[{i}]")
            for i, raw in enumerate(week.get(name) or ())
        )
        merged: list[Interval] = []
        for s, e in intervals:
            if merged and s <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(e, merged[-1][1]))
            else:
                merged.append((s, e))
        out.append(tuple(merged))
    return tuple(out)


def _parse_month_day(text: str, where: str) -> tuple[int, int]:
    m = _MONTH_DAY.match(str(text).strip())
    try:
        if m is None:
            raise ValueError(text)
        date(2000, int(m.group(1)), int(m.group(2)))  # 2000 is a leap year: 02-29 is fine
    except ValueError as exc:
        raise CalendarError(
            f"{where}: recurring holiday {text!r} is not a date; write MM-DD, e.g. '12-25'"
        ) from exc
    return int(m.group(1)), int(m.group(2))


def _parse_date(text: str | date, where: str) -> date:
    if isinstance(text, date):
        return text
    try:
        return date.fromisoformat(str(text).strip())
    except ValueError as exc:
        raise CalendarError(
            f"{where}: closure {text!r} is not a date; write YYYY-MM-DD, e.g. '2026-12-31'"
        ) from exc
