"""SlaClock <-> JSON-able dict, exact round trip (stored in ClockRef.state by the interpreter).

Instants are ISO 8601 strings in UTC, tuples become lists, the escalation ladder a list of
objects. ``schema_version`` lets a later version upgrade stored clocks.

Both directions are on the interpreter's and the store's hot path: the field-by-field
converters are generated once from SlaClock's fields (``_compile``), not worked out by
reflection per call. A document missing fields (an older writer) takes the general path.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime
from typing import TYPE_CHECKING, Any

from engine.errors import CalendarError

if TYPE_CHECKING:
    from collections.abc import Callable

    from engine.sla.clock import SlaClock

__all__ = ["CLOCK_SCHEMA_VERSION", "from_json", "to_json"]

CLOCK_SCHEMA_VERSION = 1
_INSTANTS = frozenset(
    {"started_at", "due_at", "original_due_at", "first_started_at", "breached_at",
     "pause_started_at", "completed_at"}
)
_TUPLES = frozenset({"warnings_fired", "escalations_fired", "warn_at", "warn_rules"})
_fromiso = datetime.fromisoformat


def to_json(clock: SlaClock) -> dict[str, Any]:
    """A JSON-able dict of every field of ``clock`` (in field order, after the version)."""
    return _encode(clock)


def from_json(data: dict[str, Any]) -> SlaClock:
    """The clock ``to_json`` wrote.

    Raises:
        CalendarError: an unknown schema version or a missing / malformed field.
    """
    version = data.get("schema_version")
    if version != CLOCK_SCHEMA_VERSION:
        raise CalendarError(f"SLA clock state: unknown schema_version {version!r}")
    try:
        try:
            return _decode(data)
        except KeyError:  # fields left out: defaults apply, required ones are refused
            return _decode_partial(data)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise CalendarError(f"SLA clock state is malformed: {exc}") from exc


def _value_in(name: str, value: Any) -> Any:
    if name in _INSTANTS:
        return None if value is None else _fromiso(value)
    if name in _TUPLES:
        return tuple(value)
    if name == "ladder":
        return tuple(_rung(r["after"], r.get("to_level"), r.get("notify")) for r in value)
    if name == "pauses":
        return tuple((_fromiso(a), _fromiso(b)) for a, b in value)
    return value


def _decode_partial(data: dict[str, Any]) -> SlaClock:
    return _clock(**{n: _value_in(n, data[n]) for n in _FIELDS if n in data})


def _compile() -> tuple[Callable[[SlaClock], dict[str, Any]], Callable[[dict[str, Any]], SlaClock]]:
    """Straight-line encoder and decoder of every SlaClock field (generated source)."""
    out, args = [], []
    for name in _FIELDS:
        if name in _INSTANTS:
            out.append(f"'{name}': None if c.{name} is None else c.{name}.isoformat()")
            args.append(f"None if (v := d['{name}']) is None else fromiso(v)")
        elif name in _TUPLES:
            out.append(f"'{name}': list(c.{name})")
            args.append(f"tuple(d['{name}'])")
        elif name == "ladder":
            out.append(f"'{name}': [{{'after': r.after, 'to_level': r.to_level, "
                       f"'notify': r.notify}} for r in c.{name}]")
            args.append(f"tuple(rung(r['after'], r.get('to_level'), r.get('notify')) "
                        f"for r in d['{name}'])")
        elif name == "pauses":
            out.append(f"'{name}': [[a.isoformat(), b.isoformat()] for a, b in c.{name}]")
            args.append(f"tuple((fromiso(a), fromiso(b)) for a, b in d['{name}'])")
        else:
            out.append(f"'{name}': c.{name}")
            args.append(f"d['{name}']")
    source = (
        "def encode(c):\n"
        f"    return {{'schema_version': {CLOCK_SCHEMA_VERSION}, {', '.join(out)}}}\n"
        "def decode(d):\n"
        f"    return clock({', '.join(args)})\n"
    )
    namespace: dict[str, Any] = {"fromiso": _fromiso, "rung": _rung, "clock": _clock}
    exec(compile(source, "<engine.sla.codec>", "exec"), namespace)  # noqa: S102 - our own text
    return namespace["encode"], namespace["decode"]


# engine.sla.clock re-exports this module's functions at its end, so they are defined
# before the clock module is imported (either module may be imported first).
from engine.sla.clock import Rung as _rung  # noqa: E402
from engine.sla.clock import SlaClock  # noqa: E402
from engine.sla.clock import make_clock as _clock  # noqa: E402

_FIELDS = tuple(f.name for f in fields(SlaClock))
_encode, _decode = _compile()
