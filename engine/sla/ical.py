"""Closed time from an iCalendar (.ics) file: all-day events close days, timed ones intervals.

An event marked ``TRANSP:TRANSPARENT`` ("show as free") is ignored: that is the per-entry
opt-out. ``RRULE`` recurrences are expanded (at most ``MAX_OCCURRENCES`` per event, and
no further than ``HORIZON_YEARS`` after the event's start); ``EXDATE`` removes occurrences.
Floating (zone-less) times are read in the business calendar's own zone.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from engine.errors import CalendarError
from engine.sla.zone import Zone, epoch_seconds

__all__ = ["HORIZON_YEARS", "MAX_OCCURRENCES", "IcalClosures", "read_ical"]

MAX_OCCURRENCES = 2_000
HORIZON_YEARS = 20
_MAX_BYTES = 5_000_000


@dataclass(frozen=True, slots=True)
class IcalClosures:
    """What an iCalendar file closes: whole local days and UTC epoch intervals."""

    days: frozenset[date]
    intervals: tuple[tuple[int, int], ...]  # sorted, merged, [start, end) epoch seconds


def read_ical(path: Path, zone: Zone) -> IcalClosures:
    """Read the closed days and intervals of the iCalendar file at ``path``.

    Raises:
        CalendarError: the file is missing, too large, or not iCalendar.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CalendarError(f"iCalendar file {path}: cannot read it ({exc.strerror})") from exc
    if len(raw) > _MAX_BYTES:
        raise CalendarError(f"iCalendar file {path}: larger than {_MAX_BYTES} bytes")
    import icalendar  # only calendars that import a feed pay for this import

    try:
        cal = icalendar.Calendar.from_ical(raw)
    except (ValueError, KeyError, IndexError) as exc:
        raise CalendarError(f"iCalendar file {path}: not a valid iCalendar file ({exc})") from exc
    days: set[date] = set()
    intervals: list[tuple[int, int]] = []
    for event in cal.walk("VEVENT"):
        if str(event.get("TRANSP", "OPAQUE")).upper() == "TRANSPARENT":
            continue
        try:
            start = event.decoded("DTSTART")
        except KeyError as exc:
            raise CalendarError(f"iCalendar file {path}: an event has no DTSTART") from exc
        length = _length(event, start)
        for occurrence in _occurrences(event, start):
            if isinstance(occurrence, datetime):
                begin = _epoch(occurrence, zone)
                intervals.append((begin, begin + max(0, int(length.total_seconds()))))
            else:
                count = max(1, length.days)
                days.update(occurrence + timedelta(days=i) for i in range(count))
    return IcalClosures(frozenset(days), _merge(intervals))


def _length(event: Any, start: date) -> timedelta:
    if "DTEND" in event:
        end = event.decoded("DTEND")
        if isinstance(start, datetime) and isinstance(end, datetime):
            if (start.tzinfo is None) != (end.tzinfo is None):
                end = end.replace(tzinfo=start.tzinfo)
        return end - start  # type: ignore[no-any-return]
    if "DURATION" in event:
        return event.decoded("DURATION")  # type: ignore[no-any-return]
    return timedelta(days=1) if not isinstance(start, datetime) else timedelta(0)


def _occurrences(event: Any, start: date) -> Iterator[date]:
    if "RRULE" not in event:
        yield start
        return
    from dateutil.rrule import rrulestr  # type: ignore[import-untyped]  # icalendar's dependency

    rule_text = event["RRULE"].to_ical().decode()
    anchor = start if isinstance(start, datetime) else datetime.combine(start, datetime.min.time())
    rule = rrulestr(rule_text, dtstart=anchor)
    excluded = _exdates(event)
    horizon = anchor + timedelta(days=366 * HORIZON_YEARS)
    for count, when in enumerate(rule):
        if count >= MAX_OCCURRENCES or when > horizon:
            break
        value: date = when if isinstance(start, datetime) else when.date()
        if value not in excluded:
            yield value


def _exdates(event: Any) -> set[date]:
    found: set[date] = set()
    entries = event.get("EXDATE")
    if entries is None:
        return found
    for entry in entries if isinstance(entries, list) else [entries]:
        for item in entry.dts:
            found.add(item.dt)
    return found


def _epoch(value: datetime, zone: Zone) -> int:
    if value.tzinfo is None:
        local = value.replace(tzinfo=zone.tz)
        return epoch_seconds(local)
    return epoch_seconds(value.astimezone(UTC))


def _merge(intervals: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(i for i in intervals if i[1] > i[0]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return tuple(merged)
