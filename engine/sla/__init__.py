"""SLA clocks and business calendars: pure arithmetic on instants passed in (no I/O, no wall clock).

Modules: ``duration`` (text -> seconds), ``zone`` (wall time <-> UTC), ``days`` (per-day
open intervals, cached), ``ical`` (closed time from .ics), ``calendar`` (business time),
``policy`` (which SLA policy and target apply), ``clock`` (the SLA clock value and its
transitions).
"""

from __future__ import annotations

from engine.sla.calendar import BusinessCalendar
from engine.sla.duration import MAX_DURATION_SECONDS, format_duration, format_iso, parse_duration

__all__ = [
    "MAX_DURATION_SECONDS",
    "BusinessCalendar",
    "format_duration",
    "format_iso",
    "parse_duration",
]
