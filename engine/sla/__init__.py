"""SLA clocks and business calendars: pure arithmetic on instants passed in (no I/O, no wall clock).

Modules: ``duration`` (text -> seconds), ``zone`` (wall time <-> UTC), ``days`` (per-day
open intervals, cached), ``ical`` (closed time from .ics), ``calendar`` (business time),
``policy`` (which SLA policy and target apply, what counts as a response), ``clock`` (the
SLA clock value and its transitions), ``timers`` (planning and firing its timers),
``codec`` (clock <-> JSON), ``org`` (loading the organisation's calendars and policies).
"""

from __future__ import annotations

from engine.sla.calendar import BusinessCalendar
from engine.sla.clock import (
    Rung,
    SlaClock,
    cancel,
    elapsed,
    pause,
    rearm,
    recalculate,
    remaining,
    reopen,
    reprioritize,
    resume,
    start_clock,
    status,
    stop,
)
from engine.sla.codec import from_json, to_json
from engine.sla.duration import MAX_DURATION_SECONDS, format_duration, format_iso, parse_duration
from engine.sla.policy import qualifies_as_response, select_policy, target_seconds
from engine.sla.timers import PlannedTimer, SlaEffect, due_timers, on_timer

__all__ = [
    "MAX_DURATION_SECONDS",
    "BusinessCalendar",
    "PlannedTimer",
    "Rung",
    "SlaClock",
    "SlaEffect",
    "cancel",
    "due_timers",
    "elapsed",
    "format_duration",
    "format_iso",
    "from_json",
    "on_timer",
    "parse_duration",
    "pause",
    "qualifies_as_response",
    "rearm",
    "recalculate",
    "remaining",
    "reopen",
    "reprioritize",
    "resume",
    "select_policy",
    "start_clock",
    "status",
    "stop",
    "target_seconds",
    "to_json",
]
