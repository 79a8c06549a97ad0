"""SlaClock <-> JSON-able dict, exact round trip (stored in ClockRef.state by the interpreter).

Instants are ISO 8601 strings in UTC, tuples become lists, the escalation ladder a list of
objects. ``schema_version`` lets a later version upgrade stored clocks.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime
from typing import Any

from engine.errors import CalendarError
from engine.sla.clock import Rung, SlaClock

__all__ = ["CLOCK_SCHEMA_VERSION", "from_json", "to_json"]

CLOCK_SCHEMA_VERSION = 1
_INSTANTS = frozenset(
    {"started_at", "due_at", "original_due_at", "first_started_at", "breached_at",
     "pause_started_at", "completed_at"}
)
_TUPLES = frozenset({"warnings_fired", "escalations_fired", "warn_at", "warn_rules"})


def to_json(clock: SlaClock) -> dict[str, Any]:
    """A JSON-able dict of every field of ``clock``."""
    out: dict[str, Any] = {"schema_version": CLOCK_SCHEMA_VERSION}
    for f in fields(SlaClock):
        value = getattr(clock, f.name)
        if f.name in _INSTANTS:
            value = None if value is None else value.isoformat()
        elif f.name in _TUPLES:
            value = list(value)
        elif f.name == "ladder":
            value = [{"after": r.after, "to_level": r.to_level, "notify": r.notify} for r in value]
        elif f.name == "pauses":
            value = [[a.isoformat(), b.isoformat()] for a, b in value]
        out[f.name] = value
    return out


def from_json(data: dict[str, Any]) -> SlaClock:
    """The clock ``to_json`` wrote.

    Raises:
        CalendarError: an unknown schema version or a missing / malformed field.
    """
    version = data.get("schema_version")
    if version != CLOCK_SCHEMA_VERSION:
        raise CalendarError(f"SLA clock state: unknown schema_version {version!r}")
    values: dict[str, Any] = {}
    try:
        for f in fields(SlaClock):
            if f.name not in data:
                continue
            value = data[f.name]
            if f.name in _INSTANTS:
                value = None if value is None else datetime.fromisoformat(value)
            elif f.name in _TUPLES:
                value = tuple(value)
            elif f.name == "ladder":
                value = tuple(Rung(r["after"], r.get("to_level"), r.get("notify")) for r in value)
            elif f.name == "pauses":
                value = tuple(
                    (datetime.fromisoformat(a), datetime.fromisoformat(b)) for a, b in value
                )
            values[f.name] = value
        return SlaClock(**values)
    except (TypeError, ValueError, KeyError) as exc:
        raise CalendarError(f"SLA clock state is malformed: {exc}") from exc
