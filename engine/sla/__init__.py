"""SLA clocks and business calendars: pure arithmetic on instants passed in (no I/O, no wall clock).

Modules: ``duration`` (text -> seconds), ``zone`` (wall time <-> UTC), ``days`` (per-day
open intervals, cached), ``ical`` (closed time from .ics), ``calendar`` (business time),
``policy`` (which SLA policy and target apply, what counts as a response), ``clock`` (the
SLA clock value and its transitions), ``timers`` (planning and firing its timers),
``codec`` (clock <-> JSON), ``org`` (loading the organisation's calendars and policies).
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> defining module; imported on first use so that ``engine.sla.duration``
#: (needed by every SOP load) does not pull in calendars, holidays and clocks
_HOMES = {
    "BusinessCalendar": "calendar",
    **dict.fromkeys(("Rung", "SlaClock", "cancel", "elapsed", "pause", "rearm", "recalculate",
                     "remaining", "reopen", "reprioritize", "resume", "start_clock", "status",
                     "stop"), "clock"),
    "from_json": "codec", "to_json": "codec",
    **dict.fromkeys(("MAX_DURATION_SECONDS", "format_duration", "format_iso", "parse_duration"),
                    "duration"),
    **dict.fromkeys(("qualifies_as_response", "select_policy", "target_seconds"), "policy"),
    **dict.fromkeys(("PlannedTimer", "SlaEffect", "due_timers", "next_timers", "on_timer"),
                   "timers"),
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'engine.sla' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"engine.sla.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "MAX_DURATION_SECONDS",
    "BusinessCalendar",
    "PlannedTimer",
    "Rung",
    "SlaClock",
    "SlaEffect",
    "cancel",
    "due_timers",
    "next_timers",
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
