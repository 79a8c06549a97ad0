"""Injected time: every component takes a Clock; nothing else reads the wall clock.

``SystemClock`` is the real one; ``SimulatedClock`` is advanced by hand (tests, the demo,
what-if simulations), so a day of SLA timers runs in seconds. All instants are aware UTC
datetimes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = ["Clock", "SimulatedClock", "SystemClock", "utc"]


def utc(value: datetime) -> datetime:
    """Return ``value`` as an aware UTC datetime; naive values are taken as UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class Clock(Protocol):
    """Source of the current instant."""

    def now(self) -> datetime:
        """The current instant, aware, in UTC."""
        ...


class SystemClock:
    """The wall clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class SimulatedClock:
    """A clock that moves only when told to.

    >>> c = SimulatedClock(datetime(2026, 1, 5, 9, tzinfo=UTC))
    >>> c.advance(timedelta(hours=2)).isoformat()
    '2026-01-05T11:00:00+00:00'
    """

    def __init__(self, start: datetime) -> None:
        self._now = utc(start)

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        if delta < timedelta(0):
            raise ValueError("a simulated clock never goes back")
        self._now += delta
        return self._now

    def set(self, instant: datetime) -> datetime:
        instant = utc(instant)
        if instant < self._now:
            raise ValueError("a simulated clock never goes back")
        self._now = instant
        return self._now
