"""CLI of reporting and process mining: ``careflow report``, ``export-log``, ``conformance``.

``report`` prints the KPI summary (rich tables) and writes ``--html`` / ``--csv`` / ``--json``
(``-`` = stdout); ``export-log`` writes the case event log as XES, OCEL 2.0 JSON or CSV;
``conformance SOP`` replays the cases of one SOP against its graph and exits 1 when a case
took a path the SOP does not allow. Heavy imports (SQLAlchemy, rich) stay inside the commands.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["register"]

DbOpt = Annotated[str | None, typer.Option("--db", envvar="CAREFLOW_DATABASE_URL",
                                           help="Case database URL (default: sqlite:///careflow.db).")]
SopsOpt = Annotated[Path, typer.Option("--sops", help="SOP library folder (with org/).")]
DEFAULT_SOPS = Path("sop_definitions")


def _fail(message: str) -> typer.Exit:
    typer.echo(f"careflow: {message}", err=True)
    return typer.Exit(code=1)


def _open_store(db: str | None) -> Any:
    from sqlalchemy import inspect

    from engine.errors import CareflowError
    from engine.store.db import make_engine, resolve_url

    try:
        engine = make_engine(db)
    except CareflowError as exc:
        raise _fail(str(exc)) from exc
    if "cases" not in inspect(engine).get_table_names():
        raise _fail(f"{resolve_url(db)} holds no case store (no 'cases' table); "
                    "run `careflow db upgrade` or `careflow demo` first")
    return engine


def _instant(text: str | None, option: str) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise _fail(f"{option} {text!r} is not an ISO 8601 date or instant (e.g. 2026-11-01)") from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _write(text: str, target: Path) -> None:
    if str(target) == "-":
        sys.stdout.write(text)
    else:
        target.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {target}", err=True)


def report(
    db: DbOpt = None,
    sops: SopsOpt = DEFAULT_SOPS,
    tz: Annotated[str | None, typer.Option("--tz", help="Business time zone (default: the calendar's).")] = None,
    calendar: Annotated[str, typer.Option("--calendar", help="Business calendar id.")] = "office_nl",
    period: Annotated[str, typer.Option("--period", help="auto | hour | day | week | month.")] = "auto",
    since: Annotated[str | None, typer.Option("--since", help="Cases created at or after (ISO 8601).")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Cases created before (ISO 8601).")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="As-of instant (default: latest activity).")] = None,
    by: Annotated[str, typer.Option("--by", help="Dimension of the terminal tables.")] = "channel",
    html: Annotated[Path | None, typer.Option("--html", help="Write the HTML report here.")] = None,
    csv_out: Annotated[Path | None, typer.Option("--csv", help="Write every figure with its cases as CSV (- = stdout).")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the report as JSON (- = stdout).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No terminal tables.")] = False,
) -> None:
    """KPIs of the case store: terminal tables, and the HTML page / CSV / JSON behind them."""
    from rich.console import Console

    from engine.reporting.context import ReportError, context_from_org, period_for_span
    from engine.reporting.export import to_csv, to_json
    from engine.reporting.html import render_html
    from engine.reporting.report import DIMENSIONS, activity_span, load_report
    from engine.reporting.terminal import print_report

    if by not in DIMENSIONS:
        raise _fail(f"--by {by!r}: use one of {', '.join(DIMENSIONS)}")
    engine = _open_store(db)
    first, last = activity_span(engine)
    start, end = _instant(since, "--since"), _instant(until, "--until")
    now = _instant(as_of, "--as-of") or last
    chosen = period if period != "auto" else period_for_span(((end or now) - (start or first)).total_seconds())
    try:
        ctx = context_from_org(sops, now=now, tz=tz, calendar=calendar, period=chosen)
    except ReportError as exc:
        raise _fail(str(exc)) from exc
    rep = load_report(engine, ctx, since=start, until=end)
    if not quiet:
        print_report(rep, Console(stderr=str(csv_out) == "-" or str(json_out) == "-"), by=by)
    if html is not None:
        html.parent.mkdir(parents=True, exist_ok=True)
        _write(render_html(rep, engine=engine, sop_dir=sops), html)
    if csv_out is not None:
        _write(to_csv(rep), csv_out)
    if json_out is not None:
        _write(json.dumps(to_json(rep), indent=1, default=str) + "\n", json_out)


def export_log(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output file.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="xes | ocel | csv")] = "xes",
    db: DbOpt = None,
    sops: SopsOpt = DEFAULT_SOPS,
    sop: Annotated[str | None, typer.Option("--sop", help="Only the cases of this SOP.")] = None,
) -> None:
    """Write the case event log for process mining (pm4py, Celonis, Disco)."""
    from engine.reporting.eventlog import iter_traces, write_csv
    from engine.reporting.ocel import write_ocel
    from engine.reporting.xes import write_xes

    if fmt not in ("xes", "ocel", "csv"):
        raise _fail(f"--format {fmt!r}: use xes, ocel or csv")
    engine = _open_store(db)
    out.parent.mkdir(parents=True, exist_ok=True)
    traces = iter_traces(engine, sop_id=sop)
    if fmt == "xes":
        n = write_xes(traces, out, node_levels=_node_levels(sops))
    elif fmt == "csv":
        n = write_csv(traces, out)
    else:
        n = write_ocel(engine, traces, out)
    typer.echo(f"wrote {n} events to {out} ({fmt})", err=True)


def _node_levels(sops: Path) -> dict[tuple[str, str], str]:
    try:
        from engine.sop import load_library

        lib = load_library(sops)
    except Exception:  # noqa: BLE001 - org:group is optional; the log is complete without it
        return {}
    return {(sid, n.id): n.level for sid, c in lib.sops.items() for n in c.spec.nodes.values() if n.level}


def conformance(
    sop: Annotated[str, typer.Argument(help="SOP id (as in the library).")],
    db: DbOpt = None,
    sops: SopsOpt = DEFAULT_SOPS,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    rare: Annotated[float, typer.Option("--rare", help="A branch is rare below this share.")] = 0.05,
) -> None:
    """Compare what the cases of SOP did with the SOP; exit 1 on a disallowed path."""
    from rich.console import Console
    from rich.table import Table

    from engine.errors import SopErrors
    from engine.reporting.conformance import check_conformance
    from engine.reporting.eventlog import iter_traces
    from engine.sop import load_library

    try:
        lib = load_library(sops)
    except SopErrors as exc:
        raise _fail(f"the SOP library {sops} is invalid:\n{exc}") from exc
    if sop not in lib.sops:
        raise _fail(f"unknown SOP {sop!r}; known: {', '.join(sorted(lib.sops))}")
    result = check_conformance(lib.sops[sop], iter_traces(_open_store(db), sop_id=sop), rare_share=rare)
    if as_json:
        typer.echo(json.dumps(result.to_json(), indent=1))
    else:
        con = Console()
        con.rule(f"[bold]conformance of {sop}: {result.cases} cases")
        if result.other_versions:
            con.print(f"{result.other_versions} case(s) of other SOP versions not replayed")
        con.print(f"disallowed transitions: [bold]{len(result.violations)}[/bold]")
        for v in result.violations:
            con.print(f"  [red]{v.source} -> {v.target}[/red]: {len(v.cases)} case(s), e.g. {', '.join(v.cases[:5])}")
        con.print(f"dead branches (never taken): {len(result.dead)}")
        for a, b in result.dead:
            con.print(f"  {a} -> {b}")
        con.print(f"rare branches (< {rare:.0%}): " + (", ".join(f"{a} -> {b} ({n}/{m})" for a, b, n, m in result.rare) or "none"))
        table = Table(title="where cases wait longest", title_justify="left", show_edge=False)
        for col in ("node", "mean", "median", "n"):
            table.add_column(col, justify="left" if col == "node" else "right")
        for node, (mean, median, n) in list(result.waits.items())[:10]:
            table.add_row(node, f"{mean / 60:.1f}m", f"{median / 60:.1f}m", str(n))
        con.print(table)
    if not result.ok:
        raise typer.Exit(code=1)


def register(app: typer.Typer) -> None:
    app.command("report")(report)
    app.command("export-log")(export_log)
    app.command("conformance")(conformance)
