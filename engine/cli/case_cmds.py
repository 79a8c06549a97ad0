"""CLI of the case engine: ``careflow db upgrade``, ``careflow case ...``, ``run``, ``worker``, ``serve``.

Commands that change a case queue the input and then (unless ``--no-run``) run the engine
until idle, so the user sees the result at once. One-shot commands run the engine
in-process without Prefect unless ``PREFECT_API_URL`` names a server (an ephemeral Prefect
API costs seconds to start); ``careflow run``, ``worker`` and ``serve`` always go through
the Prefect flows. Heavy imports (SQLAlchemy, Prefect) stay inside the command functions.
Exit codes: 0 done, 1 refused (invalid input, conflict, unknown case), 2 usage.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from engine.cli.tables import id_table

if TYPE_CHECKING:
    from engine.runtime.registry import Runtime

__all__ = ["DbOpt", "SopsOpt", "open_runtime", "parse_pairs", "register", "settle"]

DbOpt = Annotated[str | None, typer.Option("--db", envvar="CAREFLOW_DATABASE_URL",
                                           help="Case database URL (default: sqlite:///careflow.db).")]
SopsOpt = Annotated[Path, typer.Option("--sops", help="SOP library folder.")]
NoRunOpt = Annotated[bool, typer.Option("--no-run", help="Only queue the input; do not run the engine.")]
DEFAULT_SOPS = Path("sop_definitions")


def _err(text: str) -> None:
    typer.echo(text, err=True)


def parse_pairs(pairs: list[str] | None, option: str) -> dict[str, Any]:
    """``["k=v", ...]`` -> dict; values that parse as JSON (numbers, true, [..]) are decoded."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            _err(f"careflow: {option} expects name=value, got {pair!r}")
            raise typer.Exit(2)
        out[key.strip()] = value
    return out


def _json_file(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        _err(f"careflow: cannot read JSON from {path}: {exc}")
        raise typer.Exit(2) from exc
    if not isinstance(data, dict):
        _err(f"careflow: {path} must hold a JSON object")
        raise typer.Exit(2)
    return data


def ensure_schema(engine: Any) -> None:
    """Create the schema (Alembic upgrade) when the database has no case tables yet; refuse
    one whose schema is older than this careflow (StoreError: run ``careflow db upgrade``)."""
    from sqlalchemy import inspect

    from engine.store.migrate import check_current

    if not inspect(engine).has_table("cases"):
        from engine.store.migrate import upgrade

        upgrade(engine.url.render_as_string(hide_password=False))
        return
    check_current(engine)


@contextmanager
def open_runtime(db: str | None, sops: Path, *, clock: Any = None) -> Iterator[Runtime]:
    """A runtime for one command; errors of careflow become exit code 1 with the message."""
    from engine.errors import CareflowError, SopErrors

    try:
        from engine.runtime.registry import unregister_runtime
        from engine.runtime.sops import SopProvider
        from engine.runtime.worker import make_runtime
        from engine.store.db import make_engine

        engine = make_engine(db)
        ensure_schema(engine)
        rt = make_runtime(engine, clock, sops=SopProvider(sops))
    except SopErrors as exc:
        _err(f"careflow: the SOP library {sops} is invalid:\n{exc}")
        raise typer.Exit(1) from exc
    except CareflowError as exc:
        _err(f"careflow: {exc}")
        raise typer.Exit(1) from exc
    try:
        yield rt
    except CareflowError as exc:
        _err(f"careflow: {exc}")
        raise typer.Exit(1) from exc
    finally:
        unregister_runtime(rt.key)
        engine.dispose()


def settle(rt: Runtime, *, prefect: bool | None = None) -> Any:
    """Run the engine until idle (Prefect when a server is configured, or when asked)."""
    from engine.runtime.worker import run_until_idle

    use = bool(os.environ.get("PREFECT_API_URL")) if prefect is None else prefect
    return run_until_idle(runtime=rt, use_prefect=use)


# ---- db ---------------------------------------------------------------------------------

db_app = typer.Typer(help="The case database.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade(db: DbOpt = None) -> None:
    """Create or migrate the case database schema to the newest revision (Alembic)."""
    from engine.store.db import resolve_url
    from engine.store.migrate import upgrade

    upgrade(db)
    typer.echo(f"database {resolve_url(db)} is at the newest schema revision")


# ---- case -------------------------------------------------------------------------------

case_app = typer.Typer(help="Start, inspect and feed cases.", no_args_is_help=True)


@case_app.command("start")
def case_start(
    sop: Annotated[str, typer.Argument(help="SOP id, e.g. password_reset.")],
    data: Annotated[list[str] | None, typer.Option("--data", "-d", help="Case data name=value (repeatable).")] = None,
    json_file: Annotated[Path | None, typer.Option("--json", help="Case data from a JSON object file.")] = None,
    priority: Annotated[str | None, typer.Option(help="Priority (low, normal, high, critical).")] = None,
    tier: Annotated[str | None, typer.Option(help="Customer tier (standard, silver, gold).")] = None,
    channel: Annotated[str | None, typer.Option(help="Channel the case came in on.")] = None,
    customer: Annotated[str | None, typer.Option(help="Customer id.")] = None,
    case_id: Annotated[str | None, typer.Option("--id", help="Case id (default: generated).")] = None,
    no_run: NoRunOpt = False,
    sops: SopsOpt = DEFAULT_SOPS,
    db: DbOpt = None,
) -> None:
    """Start a case of SOP with its input data; prints the case id."""
    values = {**_json_file(json_file), **parse_pairs(data, "--data")}
    with open_runtime(db, sops) as rt:
        from engine.runtime import ops

        values = _typed_data(rt, sop, values)
        cid = ops.start_case(rt, sop, values, case_id=case_id, priority=priority, tier=tier,
                             channel=channel, customer_id=customer)
        if not no_run:
            settle(rt)
        typer.echo(cid)
        if not no_run:
            _print_case_brief(rt, cid)


def _typed_data(rt: Runtime, sop: str, values: dict[str, Any]) -> dict[str, Any]:
    """Decode ``--data`` strings by the SOP's declared field types."""
    from engine.errors import RunError

    fields = rt.sops.by_id(sop).spec.data
    out = {}
    for name, value in values.items():
        spec = fields.get(name)
        if spec is None:
            raise RunError(f"SOP {sop} declares no data field {name!r}; declared: "
                           f"{', '.join(sorted(fields))}")
        if isinstance(value, str) and spec.type not in ("string", "timestamp", "duration"):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise RunError(f"data field {name!r} ({spec.type}): {value!r} is not valid") from exc
        out[name] = value
    return out


@case_app.command("event")
def case_event(
    case_id: Annotated[str, typer.Argument(help="The case.")],
    event: Annotated[str, typer.Argument(help="Event name, e.g. customer_confirmed, withdrawn.")],
    json_file: Annotated[Path | None, typer.Option("--json", help="Event payload from a JSON object file.")] = None,
    data: Annotated[list[str] | None, typer.Option("--data", "-d", help="Payload name=value (repeatable).")] = None,
    actor: Annotated[str, typer.Option(help="Who sends it.")] = "customer",
    no_run: NoRunOpt = False,
    sops: SopsOpt = DEFAULT_SOPS,
    db: DbOpt = None,
) -> None:
    """Send a named event (payload from --json) to a case."""
    payload = {**_json_file(json_file), **parse_pairs(data, "--data")}
    with open_runtime(db, sops) as rt:
        from engine.runtime import ops

        ops.send_event(rt, case_id, event, payload, actor=actor)
        if not no_run:
            settle(rt)
            _print_case_brief(rt, case_id)


def _print_case_brief(rt: Runtime, case_id: str) -> None:
    from sqlalchemy.orm import Session

    from engine.store.cases import load_case
    from engine.store.queries import case_events
    from engine.store.tasks import list_tasks

    with Session(rt.engine) as session:
        case = load_case(session, case_id)
        tasks = list_tasks(session, case_id=case_id)
        rejected = [e for e in case_events(session, case_id) if e.status == "rejected"]
    line = f"{case.id}: {case.status}"
    if case.outcome:
        line += f" ({case.outcome})"
    if case.level:
        line += f", level {case.level}"
    typer.echo(line)
    for task in tasks:
        typer.echo(f"  open task {task.id} [{task.level}] {task.title or task.node}"
                   f" -> outcomes: {', '.join(task.outcomes)}")
    if rejected:
        typer.echo(f"  last rejected input: {rejected[-1].kind}: {rejected[-1].error}", err=True)


@case_app.command("show")
def case_show(
    case_id: Annotated[str, typer.Argument(help="The case.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    sops: SopsOpt = DEFAULT_SOPS,
    db: DbOpt = None,
) -> None:
    """Show a case: state, level, positions, open tasks, SLA clocks, timeline."""
    from sqlalchemy.orm import Session

    from engine.runtime.case_view import case_view

    with open_runtime(db, sops) as rt, Session(rt.engine) as session:
        view = case_view(rt, session, case_id)
        if as_json:
            typer.echo(json.dumps(view, indent=2, default=str))
        else:
            print_case(view)


@case_app.command("verify")
def case_verify(
    case_ids: Annotated[list[str] | None, typer.Argument(help="Cases (default: every case).")] = None,
    db: DbOpt = None,
) -> None:
    """Check the hash chain of each case's audit trail; exit 1 if any was altered."""
    from sqlalchemy import func, select

    from engine.store.audit import check_trails
    from engine.store.db import make_engine, read_session
    from engine.store.models import CaseRow

    engine = make_engine(db)
    with read_session(engine) as session:
        count = select(func.count()).select_from(CaseRow)
        if case_ids:
            count = count.where(CaseRow.id.in_(case_ids))
        checked = session.scalar(count) or 0
        if case_ids and checked < len(set(case_ids)):
            known = set(session.scalars(select(CaseRow.id).where(CaseRow.id.in_(case_ids))))
            typer.echo(f"no such case: {', '.join(sorted(set(case_ids) - known))}", err=True)
            raise typer.Exit(2)
        problems = list(check_trails(session, case_ids or None))
    engine.dispose()
    for p in problems:
        where = f"entry {p.seq}" if p.seq is not None else "end of trail"
        typer.echo(f"{p.case_id}: {where}: {p.reason}")
    if problems:
        typer.echo(f"{len(problems)} of {checked} audit trails do not check", err=True)
        raise typer.Exit(1)
    typer.echo(f"{checked} audit trail(s) intact")


@case_app.command("list")
def case_list(
    status: Annotated[str | None, typer.Option(help="open, resolved, closed, cancelled.")] = None,
    sop: Annotated[str | None, typer.Option(help="SOP id.")] = None,
    level: Annotated[str | None, typer.Option(help="Competence level holding the case.")] = None,
    customer: Annotated[str | None, typer.Option(help="Customer id.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many.")] = 50,
    sops: SopsOpt = DEFAULT_SOPS,
    db: DbOpt = None,
) -> None:
    """List cases, most recently updated first."""
    from rich.console import Console
    from sqlalchemy.orm import Session

    from engine.store.queries import list_cases

    with open_runtime(db, sops) as rt, Session(rt.engine) as session:
        rows = list_cases(session, status=status, sop=sop, level=level, customer=customer,
                          limit=limit)
        table = id_table("case", "sop", "status", "level", "priority", "tier", "outcome", "updated",
                         ids={"case": [r.id for r in rows]})
        for r in rows:
            table.add_row(r.id, f"{r.sop_id} {r.sop_version}", r.status, r.level or "-",
                          r.priority, r.tier, r.outcome or "-", r.updated_at.isoformat(timespec="seconds"))
        Console().print(table)


def _fmt_s(seconds: Any) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def print_case(view: dict[str, Any]) -> None:
    """Rich rendering of ``engine.runtime.case_view.case_view``."""
    from rich.console import Console
    from rich.table import Table

    con = Console()
    head = f"[bold]{view['id']}[/bold]  {view['sop']} {view['version']}  [b]{view['status']}[/b]"
    if view["outcome"]:
        head += f" ({view['outcome']})"
    con.print(head)
    con.print(f"level {view['level'] or '-'} | priority {view['priority']} | tier {view['tier']}"
              f" | channel {view['channel'] or '-'} | customer {view['customer'] or '-'}")
    if view["positions"]:
        con.print("positions: " + ", ".join(
            f"{p['node']}" + (f" (waits for {p['waits_for']})" if p["waits_for"] else "")
            for p in view["positions"]))
    if view["tasks"]:
        t = id_table("task", "level", "title", "status", "assignee", "outcomes", "due",
                     ids={"task": [k["id"] for k in view["tasks"]]}, title="open tasks")
        for k in view["tasks"]:
            t.add_row(k["id"], k["level"], k["title"] or k["node"], k["status"], k["assignee"] or "-",
                      ", ".join(k["outcomes"]), str(k["due_at"] or "-"))
        con.print(t)
    if view["clocks"]:
        t = Table("clock", "state", "status", "due", "elapsed (business)", "elapsed (wall)",
                  "breached", title="SLA clocks")
        for c in view["clocks"]:
            t.add_row(c["name"], str(c.get("state", "?")), str(c.get("status", "-")),
                      str(c.get("due_at") or "-"), _fmt_s(c.get("elapsed_business_s")),
                      _fmt_s(c.get("elapsed_wall_s")), "yes" if c.get("breached") else "no")
        con.print(t)
    t = Table("#", "at", "actor", "kind", "node", "detail", title="timeline")
    for a in view["timeline"]:
        detail = json.dumps(a["detail"], default=str) if a["detail"] else ""
        t.add_row(str(a["seq"]), a["at"].strftime("%Y-%m-%d %H:%M:%S"), a["actor"], a["kind"],
                  a["node"] or "", detail[:80])
    con.print(t)
    for r in view["rejected"]:
        con.print(f"[red]rejected input[/red] {r['kind']}: {r['error']}")


# ---- run / worker / serve ---------------------------------------------------------------


def run(
    batch: Annotated[int, typer.Option(help="Cases per advance batch.")] = 500,
    sops: SopsOpt = DEFAULT_SOPS,
    db: DbOpt = None,
) -> None:
    """Run the engine through the Prefect flows until nothing is runnable, due or sendable."""
    with open_runtime(db, sops) as rt:
        from engine.runtime.worker import run_until_idle

        rep = run_until_idle(runtime=rt, use_prefect=True, batch=batch)
        typer.echo(f"idle: {rep.cases} case advances in {rep.batches} batches, "
                   f"{rep.timers_fired} timers fired, {rep.sent} messages sent, "
                   f"{rep.failed} failed, {rep.flow_runs} flow runs")


def worker(
    once: Annotated[bool, typer.Option("--once", help="One pass, then exit.")] = False,
    batch: Annotated[int, typer.Option(help="Cases per advance batch.")] = 500,
    poll: Annotated[float, typer.Option(help="Seconds to sleep when idle.")] = 1.0,
    lease: Annotated[float, typer.Option(help="Lease on claimed cases, seconds.")] = 60.0,
    sops: SopsOpt = DEFAULT_SOPS,
    db: DbOpt = None,
) -> None:
    """A long-lived worker: calls the flows in a loop in this process (run several on PostgreSQL)."""
    with open_runtime(db, sops) as rt:
        from engine.runtime.worker import worker_loop

        import threading

        from engine.runtime.worker import _stop_on_signals

        rt.advancer.lease_s = lease
        stop = threading.Event()
        _stop_on_signals(stop)
        rep = worker_loop(rt, once=once, batch=batch, poll_s=poll, stop=stop)
        typer.echo(f"{rep.cases} case advances, {rep.timers_fired} timers fired, {rep.sent} sent")


def serve(
    port: Annotated[int, typer.Option(help="Port of the Prefect server careflow starts.")] = 4200,
    batch: Annotated[int, typer.Option(help="Cases per advance batch.")] = 500,
    sops: SopsOpt = DEFAULT_SOPS,
    db: DbOpt = None,
    prefect_db: Annotated[str | None, typer.Option(
        "--prefect-db", envvar="CAREFLOW_PREFECT_DATABASE_URL",
        help="Database of the Prefect server careflow starts (postgresql://... for several "
             "workers; default: Prefect's SQLite file).")] = None,
) -> None:
    """Worker loop against a persistent Prefect server (PREFECT_API_URL, or one started here)."""
    from engine.runtime.worker import serve as serve_loop
    from engine.store.db import make_engine

    engine = make_engine(db)
    ensure_schema(engine)
    typer.echo("careflow serve: Prefect UI at "
               f"{os.environ.get('PREFECT_API_URL', f'http://127.0.0.1:{port}/api').removesuffix('/api')}")
    try:
        serve_loop(engine, sops=sops, batch=batch, port=port, prefect_database=prefect_db)
    except KeyboardInterrupt:
        typer.echo("careflow serve: stopped")


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
    app.add_typer(case_app, name="case")
    app.command("run")(run)
    app.command("worker")(worker)
    app.command("serve")(serve)
