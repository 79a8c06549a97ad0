"""Durations as authors write them: ISO 8601 (``PT4H``) or short forms (``3h30m``) -> seconds.

Business-calendar interpretation is not done here: a duration is a plain number of
seconds; whether they are business or wall seconds is the SLA policy's ``unit``.

Accepted forms:

- ISO 8601: ``PT5H``, ``PT1H30M``, ``P2D``, ``P1DT2H``, ``P1W``, ``PT90S``, ``PT1.5H``.
  Years and months are refused (their length depends on the calendar).
- Short: ``5h``, ``45m``, ``3h30m``, ``90s``, ``2d``, ``1w``, ``1d 4h`` (units w, d, h,
  m, s, largest first, each at most once).

A ``d`` (or ``P1D``) is 24 hours here; "N business days" is the SLA unit ``business_days``.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from engine.errors import CalendarError

__all__ = ["MAX_DURATION_SECONDS", "format_duration", "format_iso", "parse_duration"]

#: the longest duration accepted: 10 years of 366 days (anything longer is a typo)
MAX_DURATION_SECONDS = 10 * 366 * 86_400
_MAX_TEXT = 64
_EXAMPLES = "examples: PT4H, PT1H30M, P2D, P1DT2H, P1W, 4h, 45m, 3h30m, 90s, 2d"

_UNIT_SECONDS = {"w": 604_800, "d": 86_400, "h": 3_600, "m": 60, "s": 1}
_NUMBER = r"(\d+(?:\.\d+)?)"
_ISO = re.compile(
    rf"^P(?:{_NUMBER}Y)?(?:{_NUMBER}M)?(?:{_NUMBER}W)?(?:{_NUMBER}D)?"
    rf"(?:T(?:{_NUMBER}H)?(?:{_NUMBER}M)?(?:{_NUMBER}S)?)?$"
)
_SHORT_PART = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([wdhms])\s*")


def _fail(text: str, why: str) -> CalendarError:
    return CalendarError(f"invalid duration {text!r}: {why} ({_EXAMPLES})")


def _iso_seconds(text: str, upper: str) -> Decimal:
    m = _ISO.match(upper)
    if m is None or upper in ("P", "PT") or upper.endswith("T"):
        raise _fail(text, "not an ISO 8601 duration")
    years, months, weeks, days, hours, minutes, secs = m.groups()
    if years or months:
        raise _fail(text, "years and months have no fixed length; use days or weeks")
    total = Decimal(0)
    for value, unit in ((weeks, "w"), (days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")):
        if value is not None:
            total += Decimal(value) * _UNIT_SECONDS[unit]
    return total


def _short_seconds(text: str, lower: str) -> Decimal:
    pos, total, seen = 0, Decimal(0), ""
    order = "wdhms"
    while pos < len(lower):
        m = _SHORT_PART.match(lower, pos)
        if m is None or m.end() == pos:
            raise _fail(text, f"cannot read {lower[pos:]!r}")
        value, unit = m.groups()
        if seen and order.index(unit) <= order.index(seen[-1]):
            raise _fail(text, f"unit {unit!r} repeated or out of order (largest first)")
        seen += unit
        total += Decimal(value) * _UNIT_SECONDS[unit]
        pos = m.end()
    if not seen:
        raise _fail(text, "no number with a unit found")
    return total


def parse_duration(text: str, *, allow_zero: bool = False) -> int:
    """Length of ``text`` in whole seconds.

    Args:
        text: an ISO 8601 duration or a short form (see the module docstring).
        allow_zero: accept a zero duration (e.g. an escalation rung ``+0h`` after breach).

    Returns:
        The number of seconds (> 0, or >= 0 with ``allow_zero``).

    Raises:
        CalendarError: not a string, empty, negative, zero (unless allowed), a fraction of
            a second, longer than ten years, or unreadable; the message gives examples.

    >>> parse_duration("PT1H30M"), parse_duration("3h30m"), parse_duration("P1W")
    (5400, 12600, 604800)
    """
    if isinstance(text, bool) or not isinstance(text, str):
        raise CalendarError(
            f"invalid duration {text!r}: expected a string such as '4h' or 'PT4H' ({_EXAMPLES})"
        )
    stripped = text.strip()
    if not stripped:
        raise _fail(text, "empty")
    if len(stripped) > _MAX_TEXT:
        raise _fail(text[:_MAX_TEXT] + "...", f"longer than {_MAX_TEXT} characters")
    if stripped.startswith(("-", "+")):
        if stripped.startswith("-"):
            raise _fail(text, "negative durations are not allowed")
        stripped = stripped[1:].lstrip()
    upper = stripped.upper()
    try:
        if upper.startswith("P"):
            total = _iso_seconds(text, upper)
        else:
            total = _short_seconds(text, stripped.lower())
    except InvalidOperation as exc:  # pragma: no cover - the regexes admit only decimals
        raise _fail(text, "not a number") from exc
    if total != total.to_integral_value():
        raise _fail(text, "durations are whole seconds; a fraction of a second is left over")
    seconds = int(total)
    if seconds > MAX_DURATION_SECONDS:
        raise _fail(text, "longer than 10 years")
    if seconds == 0 and not allow_zero:
        raise _fail(text, "a zero duration is meaningless here")
    return seconds


def format_duration(seconds: int) -> str:
    """Short form of ``seconds`` that ``parse_duration`` reads back (``1d2h30m``, ``0s``).

    >>> format_duration(95400), format_duration(90), format_duration(0)
    ('1d2h30m', '1m30s', '0s')
    """
    if seconds < 0:
        return "-" + format_duration(-seconds)
    if seconds == 0:
        return "0s"
    parts = []
    rest = int(seconds)
    for unit in "dhms":
        size = _UNIT_SECONDS[unit]
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def format_iso(seconds: int) -> str:
    """ISO 8601 form of ``seconds`` (``P1DT2H30M``, ``PT0S``).

    >>> format_iso(95400), format_iso(0)
    ('P1DT2H30M', 'PT0S')
    """
    if seconds < 0:
        return "-" + format_iso(-seconds)
    days, rest = divmod(int(seconds), 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    time = "".join(f"{v}{u}" for v, u in ((hours, "H"), (minutes, "M"), (secs, "S")) if v)
    out = "P" + (f"{days}D" if days else "")
    if time:
        out += "T" + time
    return out if out != "P" else "PT0S"
