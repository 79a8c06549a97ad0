"""Local wall time <-> UTC epoch seconds for one time zone, exact across DST changes.

Business hours are written in the calendar's local wall time ("08:00"). Turning a wall time
into an instant is ambiguous twice a year:

- a *skipped* wall time (spring forward, 02:30 in Europe/Berlin) maps to the transition
  instant itself (the first instant that exists after it), so an interval starting or
  ending inside the gap neither gains nor loses real time;
- a *repeated* wall time (fall back) maps to its first occurrence when it starts an
  interval and to its last occurrence when it ends one, so an interval covers every real
  second whose wall time lies inside it, once.

All arithmetic is in integer epoch seconds (UTC), so no floating point rounding enters.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from engine.errors import CalendarError

__all__ = ["Zone", "epoch_seconds", "from_epoch"]

_EPOCH = datetime(1970, 1, 1)
_EPOCH_UTC = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_SECOND = timedelta(seconds=1)


def epoch_seconds(instant: datetime) -> int:
    """Whole epoch seconds of an aware instant (the sub-second part is dropped).

    Raises:
        CalendarError: ``instant`` is naive (its zone would be a guess).
    """
    if type(instant) is datetime and instant.tzinfo is UTC:  # the usual case, checked cheaply
        return (instant - _EPOCH_UTC) // _SECOND
    if not isinstance(instant, datetime):
        raise CalendarError(f"expected a datetime, got {type(instant).__name__}: {instant!r}")
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise CalendarError(
            f"instant {instant.isoformat()} has no time zone; pass an aware datetime (UTC)"
        )
    return (instant - _EPOCH_UTC) // _SECOND


def from_epoch(seconds: int) -> datetime:
    """The aware UTC datetime of epoch ``seconds``."""
    return datetime.fromtimestamp(seconds, UTC)


class Zone:
    """One IANA time zone with exact wall-time <-> epoch conversion."""

    __slots__ = ("name", "tz")

    def __init__(self, name: str) -> None:
        try:
            self.tz = ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
            raise CalendarError(
                f"unknown time zone {name!r} (use an IANA name such as 'Europe/Amsterdam')"
            ) from exc
        self.name = name

    def offset(self, epoch: int) -> int:
        """UTC offset in seconds in force at ``epoch``."""
        return _seconds(datetime.fromtimestamp(epoch, self.tz).utcoffset())

    def local_ordinal(self, epoch: int) -> int:
        """Proleptic ordinal of the local date at ``epoch``."""
        return datetime.fromtimestamp(epoch, self.tz).toordinal()

    def local_datetime(self, epoch: int) -> datetime:
        """The aware local datetime at ``epoch``."""
        return datetime.fromtimestamp(epoch, self.tz)

    def wall_to_epoch(self, ordinal: int, second_of_day: int, *, latest: bool = False) -> int:
        """Instant of local wall time ``second_of_day`` after midnight of local date ``ordinal``.

        ``second_of_day`` may exceed 86,400 (an overnight interval end). A repeated wall time
        gives its first occurrence, or its last with ``latest``; a skipped one gives the
        transition instant.
        """
        naive_seconds = (ordinal - _EPOCH_ORDINAL) * 86_400 + second_of_day
        naive = _EPOCH + timedelta(seconds=naive_seconds)
        first = naive_seconds - _seconds(naive.replace(tzinfo=self.tz).utcoffset())
        second = naive_seconds - _seconds(naive.replace(tzinfo=self.tz, fold=1).utcoffset())
        if first == second:
            return first
        if first < second:  # repeated wall time (fall back)
            return second if latest else first
        return self._transition(second, first)  # skipped wall time (spring forward)

    def _transition(self, low: int, high: int) -> int:
        """The first instant in (low, high] whose offset differs from the one at ``low``."""
        before = self.offset(low)
        while high - low > 1:
            mid = (low + high) // 2
            if self.offset(mid) == before:
                low = mid
            else:
                high = mid
        return high


def _seconds(delta: timedelta | None) -> int:
    assert delta is not None
    return delta.days * 86_400 + delta.seconds
