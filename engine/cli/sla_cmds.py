"""CLI commands of business calendars: ``careflow calendar add|diff|hours``.

``add`` answers "when is this due?", ``diff`` "how much business time lies between these
instants?", ``hours`` "when is this calendar open?". A calendar is named by its id
(resolved in the organisation folder, see engine.sla.org) or by a YAML file. Instants
without an offset are read in the calendar's own zone; output is ISO 8601 with the
calendar zone's offset. Exit codes: 0 ok, 1 invalid input (the message says what).

``careflow sla list --breaching-within 1h`` calls the case store's
``engine.store.queries.clocks_breaching_within(session, seconds)``; the command is only
registered when that function exists (found by reading the module's source, so that
registering imports no SQLAlchemy). Nothing heavy is imported: no Prefect, no SQLAlchemy.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from engine.sla.calendar import BusinessCalendar

__all__ = ["register"]

_CALENDAR_HELP = "Calendar id (e.g. office_nl) or a calendar YAML file."
_ORG_HELP = "Organisation folder with the calendar documents (default: sop_definitions/org)."
_DURATION_HELP = "Business time to add: 4h, PT4H, 3h30m; with --days: 3, 3d."
_DAYS_HELP = "Count business days (same wall time on the N-th business day), not hours."
_EOD_HELP = "With --days: the close of the N-th business day."

CalendarOpt = Annotated[str, typer.Option("--calendar", "-c", help=_CALENDAR_HELP)]
OrgOpt = Annotated[Path | None, typer.Option("--org", help=_ORG_HELP)]
StartOpt = Annotated[str, typer.Option("--start", "-s", help="Start instant, ISO 8601.")]


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=1)


def _calendar(name: str, org: Path | None) -> BusinessCalendar:
    from engine.errors import CalendarError, SopErrors
    from engine.sla.org import load_calendar

    try:
        return load_calendar(name, org)
    except SopErrors as exc:
        raise _fail("\n".join(e.format() for e in exc)) from exc
    except CalendarError as exc:
        raise _fail(str(exc)) from exc


def _instant(text: str, cal: BusinessCalendar, option: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise _fail(
            f"{option} {text!r} is not an ISO 8601 instant (e.g. 2026-01-05T09:00 or "
            "2026-01-05T09:00:00+01:00)"
        ) from exc
    if value.tzinfo is None:  # a wall time in the calendar's zone; fold=0 for repeated times
        value = value.replace(tzinfo=cal.zone_info())
    return value


def _business_days(text: str) -> int:
    from engine.errors import CalendarError
    from engine.sla.duration import parse_duration

    stripped = text.strip()
    if stripped.isdigit():
        return int(stripped)
    try:
        seconds = parse_duration(stripped, allow_zero=True)
    except CalendarError as exc:
        raise _fail(str(exc)) from exc
    if seconds % 86_400:
        raise _fail(f"--days needs whole days (e.g. 3, 3d or P3D), not {text!r}")
    return seconds // 86_400


def calendar_add(
    calendar: CalendarOpt,
    start: StartOpt,
    duration: Annotated[str, typer.Option("--duration", "-d", help=_DURATION_HELP)],
    days: Annotated[bool, typer.Option("--days", help=_DAYS_HELP)] = False,
    end_of_day: Annotated[bool, typer.Option("--end-of-day", help=_EOD_HELP)] = False,
    org: OrgOpt = None,
) -> None:
    """Print the instant DURATION of business time after START (ISO 8601, calendar zone)."""
    from engine.errors import CalendarError
    from engine.sla.duration import parse_duration

    cal = _calendar(calendar, org)
    begin = _instant(start, cal, "--start")
    try:
        if days:
            result = cal.add_days(begin, _business_days(duration), end_of_day=end_of_day)
        else:
            if end_of_day:
                raise _fail("--end-of-day needs --days")
            result = cal.add(begin, parse_duration(duration, allow_zero=True))
    except CalendarError as exc:
        raise _fail(str(exc)) from exc
    typer.echo(cal.local(result).isoformat())


def calendar_diff(
    calendar: CalendarOpt,
    start: StartOpt,
    end: Annotated[str, typer.Option("--end", "-e", help="End instant, ISO 8601.")],
    org: OrgOpt = None,
) -> None:
    """Print the business seconds between START and END (0 when END is not after START)."""
    from engine.sla.duration import format_duration

    cal = _calendar(calendar, org)
    seconds = cal.between(_instant(start, cal, "--start"), _instant(end, cal, "--end"))
    typer.echo(f"{seconds} ({format_duration(seconds)})")


def calendar_hours(
    calendar: CalendarOpt,
    start: Annotated[str, typer.Option("--start", "-s", help="First date or instant, ISO 8601.")],
    days: Annotated[int, typer.Option("--for", help="Number of days to list.", min=1, max=366)] = 7,
    org: OrgOpt = None,
) -> None:
    """List the open intervals of the calendar from START for N days (calendar zone)."""
    cal = _calendar(calendar, org)
    begin = _instant(start, cal, "--start")
    for lo, hi in cal.open_intervals(begin, begin + timedelta(days=days)):
        local_lo, local_hi = cal.local(lo), cal.local(hi)
        typer.echo(f"{local_lo:%a} {local_lo.isoformat()}  ->  {local_hi.isoformat()}")


_BREACHING = "clocks_breaching_within"


def store_has_breaching_query() -> bool:
    """Whether ``engine.store.queries`` defines ``clocks_breaching_within`` (no import)."""
    try:
        spec = importlib.util.find_spec("engine.store.queries")
    except (ImportError, ValueError):
        return False
    if spec is None or spec.origin is None:
        return False
    try:
        return f"def {_BREACHING}(" in Path(spec.origin).read_text(errors="replace")
    except OSError:
        return False


def _field(row: object, *names: str) -> object:
    for name in names:
        value = row.get(name) if isinstance(row, Mapping) else getattr(row, name, None)
        if value is not None:
            return value
    return ""


def sla_list(
    breaching_within: Annotated[
        str, typer.Option("--breaching-within", help="Window: clocks due within it (1h, 30m).")
    ] = "1h",
    db: Annotated[
        str | None,
        typer.Option("--db", envvar="CAREFLOW_DATABASE_URL", help="Case database URL."),
    ] = None,
    at: Annotated[
        str | None,
        typer.Option("--at", help="Look from this ISO 8601 instant instead of now "
                                  "(e.g. the demo's simulated day)."),
    ] = None,
) -> None:
    """List open SLA clocks that breach within the window (or already have)."""
    from engine.errors import CalendarError
    from engine.sla.duration import parse_duration
    from engine.store import queries
    from engine.store.db import make_engine, read_session

    try:
        seconds = parse_duration(breaching_within)
    except CalendarError as exc:
        raise _fail(str(exc)) from exc
    try:
        when = datetime.fromisoformat(at) if at else None
    except ValueError as exc:
        raise _fail(f"--at {at!r} is not an ISO 8601 instant") from exc
    if when is not None and when.tzinfo is None:
        raise _fail(f"--at {at!r} needs a UTC offset, e.g. 2026-11-23T10:00:00+01:00")
    engine = make_engine(db)
    with read_session(engine) as session:
        rows = list(getattr(queries, _BREACHING)(session, seconds, now=when))
    for row in rows:
        due = _field(row, "due_at")
        due_text = due.isoformat() if isinstance(due, datetime) else str(due)
        typer.echo(
            f"{_field(row, 'case_id', 'case')}\t{_field(row, 'clock', 'name')}\t"
            f"{_field(row, 'metric')}\t{due_text}"
        )
    typer.echo(f"{len(rows)} clock(s) breaching within {breaching_within}", err=True)


def register(app: typer.Typer) -> None:
    """Add ``careflow calendar add|diff|hours`` (and ``careflow sla list`` when the store
    offers ``clocks_breaching_within``)."""
    group = typer.Typer(help="Business calendars: add business time, measure it, list open hours.",
                        no_args_is_help=True)
    group.command("add")(calendar_add)
    group.command("diff")(calendar_diff)
    group.command("hours")(calendar_hours)
    app.add_typer(group, name="calendar")
    if store_has_breaching_query():
        sla = typer.Typer(help="SLA clocks across cases.", no_args_is_help=True)
        sla.command("list")(sla_list)
        app.add_typer(sla, name="sla")
