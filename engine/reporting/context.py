"""What a report is computed against: business calendar and time zone, level ranks, as-of time, period.

Periods are computed in the organisation's *business time zone* (default: the zone of the
default calendar, office_nl = Europe/Amsterdam), never in UTC: a case created at 23:30 UTC on
31 October belongs to November in Amsterdam (Zammad #5865 is the bug this avoids).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from engine.errors import CareflowError

__all__ = ["PERIODS", "ReportContext", "ReportError", "context_from_org", "period_for_span"]

PERIODS = ("hour", "day", "week", "month")
#: the default competence levels, when no levels document is given
DEFAULT_RANKS: Mapping[str, int] = {"e": 0, "L1": 1, "L2": 2, "specialist": 3}


class ReportError(CareflowError):
    """A report, export or conformance check could not be produced (says what and why)."""


@dataclass(frozen=True, slots=True)
class ReportContext:
    """The fixed inputs of a report.

    Attributes:
        calendar: business calendar for business-time figures (engine.sla.calendar).
        tz: the business time zone name periods are computed in.
        now: the as-of instant (backlog ages); injected, never read from the wall clock.
        period: ``hour`` | ``day`` | ``week`` (ISO week) | ``month``.
        level_rank: competence level id -> rank (0 = e-level).
        reopen_window_days: how long after resolution a repeat contact counts as a reopen.
    """

    calendar: Any
    tz: str
    now: datetime
    period: str = "week"
    level_rank: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_RANKS))
    reopen_window_days: float = 7.0
    _zone: Any = field(init=False, repr=False, compare=False, hash=False, default=None)
    _periods: dict[int, str] = field(init=False, repr=False, compare=False, hash=False,
                                     default_factory=dict)

    def __post_init__(self) -> None:
        if self.period not in PERIODS:
            raise ReportError(f"period {self.period!r}: use one of {', '.join(PERIODS)}")
        try:
            object.__setattr__(self, "_zone", ZoneInfo(self.tz))
        except Exception as exc:  # ZoneInfoNotFoundError, ValueError for odd names
            raise ReportError(f"business time zone {self.tz!r} is unknown (e.g. Europe/Amsterdam)") from exc

    def zone(self) -> ZoneInfo:
        return self._zone  # type: ignore[no-any-return]

    def period_of(self, instant: datetime) -> str:
        """The period label of ``instant`` in the business time zone.

        >>> from datetime import UTC
        >>> ctx = ReportContext(calendar=None, tz="Europe/Amsterdam", now=datetime(2026, 1, 1, tzinfo=UTC), period="month")
        >>> ctx.period_of(datetime(2026, 10, 31, 23, 30, tzinfo=UTC))
        '2026-11'
        """
        # every zone offset is a multiple of 15 minutes: periods are constant within a quarter hour
        quarter = int(instant.timestamp()) // 900
        label = self._periods.get(quarter)
        if label is None:
            label = self._periods[quarter] = self._label(instant)
        return label

    def _label(self, instant: datetime) -> str:
        local = instant.astimezone(self._zone)
        if self.period == "hour":
            return local.strftime("%Y-%m-%d %Hh")
        if self.period == "day":
            return local.strftime("%Y-%m-%d")
        if self.period == "month":
            return local.strftime("%Y-%m")
        year, week, _ = local.isocalendar()
        return f"{year}-W{week:02d}"

    def rank(self, level: str | None) -> int:
        return self.level_rank.get(level or "", -1)


def period_for_span(seconds: float) -> str:
    """A period that gives a trend several points: hour up to 3 days, day up to 60, week up to 366.

    >>> period_for_span(86400), period_for_span(30 * 86400), period_for_span(400 * 86400)
    ('hour', 'day', 'month')
    """
    if seconds <= 3 * 86400:
        return "hour"
    if seconds <= 60 * 86400:
        return "day"
    return "week" if seconds <= 366 * 86400 else "month"


def context_from_org(sop_dir: Path, *, now: datetime, tz: str | None = None,
                     calendar: str = "office_nl", period: str = "week",
                     reopen_window_days: float = 7.0) -> ReportContext:
    """A context from the organisation folder ``sop_dir/org``: its calendar and levels.

    ``tz`` overrides the business time zone (default: the calendar's own zone).
    """
    from engine.errors import CalendarError, SopErrors
    from engine.sla.org import load_calendar

    org = sop_dir / "org"
    try:
        cal = load_calendar(calendar, org if org.is_dir() else None)
    except (SopErrors, CalendarError) as exc:
        raise ReportError(f"calendar {calendar!r} in {org}: {exc}") from exc
    ranks = dict(DEFAULT_RANKS)
    try:
        from engine.sop import load_library

        levels = load_library(sop_dir).levels
        if levels is not None:
            ranks = {lv.id: lv.rank for lv in levels.levels}
    except Exception:  # noqa: BLE001 - a broken library must not stop the report; defaults apply
        pass
    return ReportContext(calendar=cal, tz=tz or cal.timezone, now=now, period=period, level_rank=ranks,
                         reopen_window_days=reopen_window_days)
