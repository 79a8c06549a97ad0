"""CLI of the channels and the customer view: ``careflow api``, ``intake``, ``deadletter``,
``customer``, ``connectors``.

Heavy imports (SQLAlchemy, FastAPI, uvicorn) happen inside the commands. Exit codes: 0 ok,
1 a careflow error (printed as ``careflow: ...``), 2 usage.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["register"]

DbOpt = Annotated[str | None, typer.Option("--db", envvar="CAREFLOW_DATABASE_URL",
                                           help="Case database URL (default: sqlite:///careflow.db).")]
SopsOpt = Annotated[Path, typer.Option("--sops", help="SOP library folder (routing and SOPs).")]
ActorOpt = Annotated[str, typer.Option("--actor", envvar="CAREFLOW_ACTOR", help="Who does it (audit trail).")]
DEFAULT_SOPS = Path("sop_definitions")

deadletter_app = typer.Typer(help="Inputs intake could not process, kept with their reason.",
                             no_args_is_help=True)
customer_app = typer.Typer(help="The customer view: one customer, one timeline.", no_args_is_help=True)
connectors_app = typer.Typer(help="Registered channel connectors.", no_args_is_help=True)


def _err(text: str) -> None:
    typer.echo(text, err=True)


def _ensure_tables(engine: Any) -> None:
    """The case schema (Alembic, engine.cli.case_cmds) plus the CRM/channel tables if missing."""
    from collections.abc import Callable

    from sqlalchemy import inspect

    ensure_schema: Callable[[Any], None] | None
    try:
        from engine.cli.case_cmds import ensure_schema
    except ImportError:
        ensure_schema = None
    if ensure_schema is not None:
        try:
            ensure_schema(engine)
        except ImportError:
            ensure_schema = None
    from engine.store.all_models import load_all

    base = load_all()
    if ensure_schema is None or not inspect(engine).has_table("cases"):
        base.metadata.create_all(engine)
        return
    existing = set(inspect(engine).get_table_names())
    missing = [t for name, t in base.metadata.tables.items() if name not in existing]
    if missing:
        base.metadata.create_all(engine, tables=missing)


@contextmanager
def _session(db: str | None) -> Iterator[Any]:
    """One committed transaction on the case database; careflow errors exit 1."""
    from sqlalchemy.orm import Session

    from engine.errors import CareflowError
    from engine.store.db import make_engine

    try:
        engine = make_engine(db)
        _ensure_tables(engine)
    except CareflowError as exc:
        _err(f"careflow: {exc}")
        raise typer.Exit(1) from exc
    try:
        with Session(engine, expire_on_commit=False) as session, session.begin():
            yield session
    except (CareflowError, ValueError) as exc:
        _err(f"careflow: {exc}")
        raise typer.Exit(1) from exc
    finally:
        engine.dispose()


def _library(sops: Path) -> Any:
    from engine.errors import SopErrors
    from engine.sop.library import load_library

    if not sops.exists():
        return None
    try:
        return load_library(sops)
    except SopErrors as exc:
        _err(f"careflow: the SOP library {sops} is invalid:\n{exc}")
        raise typer.Exit(1) from exc


def _clock() -> Any:
    from engine.clock import SystemClock

    return SystemClock()


def _secrets(value: str | None) -> list[str]:
    raw = value if value is not None else os.environ.get("CAREFLOW_WEBHOOK_SECRETS", "")
    return [s.strip() for s in raw.split(",") if s.strip()]


# ---- api ----------------------------------------------------------------------------------


def api(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8080,
    db: DbOpt = None,
    sops: SopsOpt = DEFAULT_SOPS,
    secrets: Annotated[str | None, typer.Option("--secrets", help="Webhook secrets, comma-separated (default: $CAREFLOW_WEBHOOK_SECRETS). Several = rotation.")] = None,
    status_secret: Annotated[str | None, typer.Option("--status-secret", envvar="CAREFLOW_STATUS_LINK_SECRET", help="Key of the customer status links.")] = None,
) -> None:
    """Run the HTTP API (webhook intake, status links, health; OpenAPI at /openapi.json)."""
    import uvicorn

    from connectors.http.app import ApiSettings, create_app
    from connectors.registry import load_connectors
    from engine.store.db import make_engine, sessions

    keys = _secrets(secrets)
    if not keys:
        _err("careflow api: no webhook secrets: set CAREFLOW_WEBHOOK_SECRETS or --secrets")
        raise typer.Exit(2)
    load_connectors()
    engine = make_engine(db)
    _ensure_tables(engine)
    app = create_app(ApiSettings(sessions(engine), keys, library=_library(sops),
                                 clock=_clock(), status_secret=status_secret))
    uvicorn.run(app, host=host, port=port, log_level="info", ws="none")


def intake(
    files: Annotated[list[Path], typer.Argument(help="Channel event JSON files (schemas/channel_event.schema.json).")],
    db: DbOpt = None,
    sops: SopsOpt = DEFAULT_SOPS,
) -> None:
    """Ingest channel events from JSON files (what a connector would deliver)."""
    from engine.intake.pipeline import ingest_payload

    library = _library(sops)
    with _session(db) as session:
        for path in files:
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                data = {"unreadable": str(path), "error": str(exc)}
            result = ingest_payload(session, data, source=f"file:{path.name}", library=library,
                                    clock=_clock())
            typer.echo(f"{path}: {json.dumps(result.as_dict())}")


# ---- dead letters -------------------------------------------------------------------------


@deadletter_app.command("list")
def deadletter_list(
    db: DbOpt = None,
    include_retried: Annotated[bool, typer.Option("--all", help="Include retried letters.")] = False,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 100,
) -> None:
    """List dead letters, newest first."""
    from rich.console import Console
    from rich.table import Table

    from engine.intake.deadletters import list_dead_letters

    with _session(db) as session:
        letters = list_dead_letters(session, include_retried=include_retried, limit=limit)
    table = Table("id", "received", "source", "reason", "retried", title="dead letters")
    for d in letters:
        table.add_row(str(d.id), d.received_at.isoformat(timespec="seconds"), d.source,
                      d.reason[:120], d.retried_at.isoformat(timespec="seconds") if d.retried_at else "")
    Console().print(table)


@deadletter_app.command("show")
def deadletter_show(dead_letter_id: Annotated[int, typer.Argument(help="Dead letter id.")],
                    db: DbOpt = None) -> None:
    """Show one dead letter: its reason and its full payload."""
    from engine.intake.deadletters import get_dead_letter

    with _session(db) as session:
        d = get_dead_letter(session, dead_letter_id)
    typer.echo(json.dumps({"id": d.id, "source": d.source, "reason": d.reason,
                           "received_at": d.received_at.isoformat(),
                           "retried_at": d.retried_at.isoformat() if d.retried_at else None,
                           "payload": d.payload}, indent=2, ensure_ascii=False, default=str))


@deadletter_app.command("retry")
def deadletter_retry(dead_letter_id: Annotated[int, typer.Argument(help="Dead letter id.")],
                     db: DbOpt = None, sops: SopsOpt = DEFAULT_SOPS) -> None:
    """Re-ingest a dead letter (after fixing its cause); prints what intake did."""
    from connectors.http.adapters import PARSERS
    from engine.intake.deadletters import retry_dead_letter
    from engine.intake.pipeline import IntakeStatus

    library = _library(sops)
    with _session(db) as session:
        result = retry_dead_letter(session, dead_letter_id, library=library, clock=_clock(),
                                   parsers=PARSERS)
    typer.echo(json.dumps(result.as_dict()))
    if result.status is IntakeStatus.DEAD_LETTER:
        raise typer.Exit(1)


# ---- customers ----------------------------------------------------------------------------


@customer_app.command("show")
def customer_show(
    key: Annotated[str, typer.Argument(help="Customer id, e-mail, phone, handle or customer number.")],
    db: DbOpt = None,
) -> None:
    """Every interaction on every channel and every case of a customer, in one timeline."""
    from rich.console import Console
    from rich.table import Table

    from engine.crm.customers import find_customer
    from engine.crm.timeline import customer_view

    with _session(db) as session:
        view = customer_view(session, find_customer(session, key))
    console = Console()
    console.print(f"[bold]{view.customer_id}[/bold] {view.display_name}  tier={view.tier}"
                  + (f"  organisations={', '.join(view.organisations)}" if view.organisations else "")
                  + (f"  merged from {', '.join(view.merged_from)}" if view.merged_from else ""))
    ids = Table("kind", "value", "verification", "source", title="identifiers")
    for row in view.identifiers:
        ids.add_row(*row)
    console.print(ids)
    timeline = Table("when", "channel", "dir", "kind", "case", "summary", "rule",
                     title=f"timeline ({len(view.entries)} entries, "
                           f"{len(view.channels)} channels, {len(view.case_ids)} cases)")
    for e in view.entries:
        timeline.add_row(e.at.isoformat(timespec="seconds"), e.channel or "",
                         {"inbound": "in", "outbound": "out"}.get(e.direction or "", ""),
                         e.kind, e.case_id or "", e.summary[:80], str(e.detail.get("rule") or ""))
    console.print(timeline)


@customer_app.command("merge")
def customer_merge(
    survivor: Annotated[str, typer.Argument(help="The customer that stays (id or identifier).")],
    merged: Annotated[str, typer.Argument(help="The customer merged into it (id or identifier).")],
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the audit trail).")],
    actor: ActorOpt = "cli",
    db: DbOpt = None,
) -> None:
    """Merge two customers; prints the merge id (for unmerge)."""
    from engine.crm.customers import find_customer
    from engine.crm.merge import merge

    with _session(db) as session:
        a, b = find_customer(session, survivor), find_customer(session, merged)
        merge_id = merge(session, a, b, actor=actor, reason=reason, now=_clock().now())
    typer.echo(f"merged {b} into {a} (merge {merge_id}; undo with: careflow customer unmerge {merge_id})")


@customer_app.command("unmerge")
def customer_unmerge(
    merge_id: Annotated[int, typer.Argument(help="The merge id.")],
    actor: ActorOpt = "cli",
    reason: Annotated[str, typer.Option("--reason", help="Why (audit trail).")] = "",
    db: DbOpt = None,
) -> None:
    """Undo a merge: identifiers, interactions, cases and organisations move back."""
    from engine.crm.merge import unmerge

    with _session(db) as session:
        row = unmerge(session, merge_id, actor=actor, now=_clock().now(), reason=reason)
        moved = {k: len(v) for k, v in (row.moved or {}).items()}
    typer.echo(f"unmerged {row.merged_id} from {row.survivor_id}; moved back {moved}")


@customer_app.command("suggestions")
def customer_suggestions(
    db: DbOpt = None,
    dismiss: Annotated[int | None, typer.Option("--dismiss", help="Dismiss this suggestion id.")] = None,
    actor: ActorOpt = "cli",
) -> None:
    """Open merge suggestions (probable duplicates found on unverified identifiers or names)."""
    from rich.console import Console
    from rich.table import Table
    from sqlalchemy import select

    from engine.crm.merge import dismiss_suggestion
    from engine.store.models_crm import MergeSuggestionRow

    with _session(db) as session:
        if dismiss is not None:
            dismiss_suggestion(session, dismiss, actor=actor, now=_clock().now())
        rows = list(session.scalars(select(MergeSuggestionRow).where(
            MergeSuggestionRow.status == "open").order_by(MergeSuggestionRow.id)))
    table = Table("id", "customer a", "customer b", "basis", "since", title="merge suggestions")
    for r in rows:
        table.add_row(str(r.id), r.customer_a, r.customer_b, r.basis,
                      r.created_at.isoformat(timespec="seconds"))
    Console().print(table)


@customer_app.command("verify")
def customer_verify(
    key: Annotated[str, typer.Argument(help="Customer id or identifier.")],
    kind: Annotated[str, typer.Argument(help="email | phone | handle | customer_number")],
    value: Annotated[str, typer.Argument(help="The identifier value.")],
    actor: ActorOpt = "cli",
    db: DbOpt = None,
) -> None:
    """Mark an identifier of a customer verified (it then links contacts automatically)."""
    from engine.crm.customers import find_customer, verify_identifier

    with _session(db) as session:
        cid = find_customer(session, key)
        row = verify_identifier(session, cid, kind, value, actor=actor, now=_clock().now())
    typer.echo(f"{cid}: {row.kind}={row.value} verified by {actor}")


@customer_app.command("org")
def customer_org(
    key: Annotated[str, typer.Argument(help="Customer id or identifier.")],
    organisation: Annotated[str, typer.Argument(help="Organisation name (created if new).")],
    role: Annotated[str, typer.Option(help="Role in the organisation.")] = "",
    db: DbOpt = None,
) -> None:
    """Add a customer to an organisation (many-to-many)."""
    from engine.crm.customers import add_to_organisation, find_customer

    with _session(db) as session:
        cid = find_customer(session, key)
        org = add_to_organisation(session, cid, organisation, now=_clock().now(), role=role)
    typer.echo(f"{cid} is a member of {organisation} ({org})")


@customer_app.command("tier")
def customer_tier(
    key: Annotated[str, typer.Argument(help="Customer id or identifier.")],
    tier: Annotated[str, typer.Argument(help="Loyalty tier, e.g. standard, silver, gold.")],
    db: DbOpt = None,
) -> None:
    """Set a customer's tier (new cases get the tier's SLA targets)."""
    from engine.crm.customers import find_customer, set_tier

    with _session(db) as session:
        cid = find_customer(session, key)
        set_tier(session, cid, tier, now=_clock().now())
    typer.echo(f"{cid}: tier {tier}")


@customer_app.command("link")
def customer_link(
    case_id: Annotated[str, typer.Argument(help="The case.")],
    base_url: Annotated[str, typer.Option("--base-url", help="Where the API is reachable.")] = "http://127.0.0.1:8080",
    days: Annotated[int, typer.Option(help="Valid for this many days.")] = 30,
    status_secret: Annotated[str | None, typer.Option("--status-secret", envvar="CAREFLOW_STATUS_LINK_SECRET")] = None,
) -> None:
    """Print a signed status link for the customer of a case."""
    from connectors.http.app import status_link

    if not status_secret:
        _err("careflow customer link: set CAREFLOW_STATUS_LINK_SECRET or --status-secret")
        raise typer.Exit(2)
    typer.echo(status_link(base_url, case_id, status_secret, _clock().now() + timedelta(days=days)))


# ---- connectors ---------------------------------------------------------------------------


@connectors_app.command("list")
def connectors_list() -> None:
    """Connectors registered through the careflow.connectors entry points (and their errors)."""
    from connectors.base import CONTRACT_VERSION
    from connectors.registry import default_registry, load_connectors

    load_connectors()
    typer.echo(f"connector contract {CONTRACT_VERSION}")
    for name in default_registry.names():
        typer.echo(f"  {name:<16} {default_registry.origin(name)}")
    for name, err in sorted(default_registry.errors.items()):
        typer.echo(f"  {name:<16} BROKEN: {err}")
    bindings = default_registry.bindings()
    if bindings:
        typer.echo("channel bindings ($CAREFLOW_CONNECTORS)")
        for channel, name in sorted(bindings.items()):
            typer.echo(f"  {channel:<16} -> {name}")


def register(app: typer.Typer) -> None:
    app.command("api")(api)
    app.command("intake")(intake)
    app.add_typer(deadletter_app, name="deadletter")
    app.add_typer(customer_app, name="customer")
    app.add_typer(connectors_app, name="connectors")
