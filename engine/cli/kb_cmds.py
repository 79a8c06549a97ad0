"""CLI of the knowledge base: ``careflow kb list/show/search/import/review/publish/retire/...``.

Errors of careflow (unknown article, refused lifecycle move, bad article file) print as one
clear line and exit 1; file errors print as ``file:line:col: CODE: message``. SQLAlchemy is
imported inside the commands only.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = ["register"]

kb_app = typer.Typer(help="The knowledge base: articles, search, self-service figures, gaps.",
                     no_args_is_help=True)

DbOpt = Annotated[str | None, typer.Option("--db", envvar="CAREFLOW_DATABASE_URL",
                                           help="Case database URL (default: sqlite:///careflow.db).")]
ActorOpt = Annotated[str, typer.Option("--actor", "-a", envvar="CAREFLOW_AGENT",
                                       help="Who does it (recorded in the article's history).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
DEFAULT_KB = Path("sop_definitions/knowledge")


def _err(text: str) -> None:
    typer.echo(text, err=True)


@contextmanager
def _session(db: str | None) -> Iterator[Session]:
    """One transaction on the case database (schema created when missing)."""
    from sqlalchemy.exc import SQLAlchemyError

    from engine.errors import CareflowError, SopErrors
    from engine.knowledge.repo import ensure_search_schema
    from engine.store.db import make_engine, sessions

    try:
        engine = make_engine(db)
        _ensure_tables(engine)
    except (CareflowError, SQLAlchemyError) as exc:
        _err(f"careflow kb: cannot open the database: {exc}")
        raise typer.Exit(1) from exc
    try:
        with sessions(engine)() as session, session.begin():
            ensure_search_schema(session)
            yield session
    except SopErrors as exc:
        _err(str(exc))
        raise typer.Exit(1) from exc
    except CareflowError as exc:
        _err(f"careflow kb: {exc}")
        raise typer.Exit(1) from exc
    except SQLAlchemyError as exc:
        _err(f"careflow kb: database error: {str(exc).splitlines()[0]}")
        raise typer.Exit(1) from exc
    finally:
        engine.dispose()


def _ensure_tables(engine: Any) -> None:
    from sqlalchemy import inspect

    if inspect(engine).has_table("kb_articles"):
        return
    if not inspect(engine).has_table("cases"):
        from engine.store.migrate import upgrade

        upgrade(engine.url.render_as_string(hide_password=False))
    if not inspect(engine).has_table("kb_articles"):  # migrations without the KB tables
        from engine.store.all_models import load_all

        meta = load_all().metadata
        meta.create_all(engine, tables=[t for t in meta.sorted_tables if t.name.startswith("kb_")])


def _now() -> Any:
    from engine.clock import SystemClock

    return SystemClock().now()


@kb_app.command("list")
def kb_list(
    status: Annotated[str | None, typer.Option(help="draft, review, published or retired.")] = None,
    language: Annotated[str | None, typer.Option("--language", "-l", help="en, nl or de.")] = None,
    category: Annotated[str | None, typer.Option("--category", "-c")] = None,
    as_json: JsonOpt = False,
    db: DbOpt = None,
) -> None:
    """Articles, grouped by category and translation."""
    from engine.knowledge.repo import list_articles

    with _session(db) as s:
        rows = list_articles(s, status=status, language=language, category=category)
        items = [{"id": r.id, "title": r.title, "category": r.category, "language": r.language,
                  "audience": r.audience, "status": r.status, "version": r.version} for r in rows]
    if as_json:
        typer.echo(json.dumps(items, ensure_ascii=False, indent=2))
        return
    for i in items:
        typer.echo(f"{i['id']:<40} {i['status']:<10} v{i['version']:<3} {i['category']:<20} "
                   f"{i['audience']:<8} {i['title']}")
    typer.echo(f"{len(items)} article(s)")


@kb_app.command("show")
def kb_show(
    article_id: Annotated[str, typer.Argument(help="The article id, e.g. password-reset.en.")],
    html: Annotated[bool, typer.Option("--html", help="Print the body as safe HTML.")] = False,
    history: Annotated[bool, typer.Option("--history", help="Also list versions and lifecycle events.")] = False,
    db: DbOpt = None,
) -> None:
    """One article: metadata, body (plain text or safe HTML) and optionally its history."""
    from engine.knowledge.render import render_html, render_text
    from engine.knowledge.repo import events_of, get_article, versions_of

    with _session(db) as s:
        r = get_article(s, article_id)
        typer.echo(f"{r.id}  [{r.status}, v{r.version}, {r.language}, {r.audience}]")
        typer.echo(f"title:    {r.title}")
        typer.echo(f"category: {r.category}   products: {', '.join(r.products or []) or '-'}")
        typer.echo(f"translations of: {r.translation_of}")
        typer.echo("")
        typer.echo(render_html(r.body) if html else render_text(r.body))
        if history:
            typer.echo("\nversions:")
            for v in versions_of(s, article_id):
                typer.echo(f"  v{v.version}  {v.at.isoformat(timespec='seconds')}  {v.author}  "
                           f"{v.content_hash[:12]}")
            typer.echo("events:")
            for e in events_of(s, article_id):
                move = f"{e.from_status or '-'} -> {e.to_status}"
                typer.echo(f"  {e.at.isoformat(timespec='seconds')}  {e.kind:<10} {move:<22} "
                           f"{e.actor}  {e.note or ''}".rstrip())


@kb_app.command("import")
def kb_import(
    path: Annotated[Path, typer.Argument(help="Folder of Markdown articles (or one file).")] = DEFAULT_KB,
    actor: ActorOpt = "import",
    check: Annotated[bool, typer.Option("--check", help="Only validate the files.")] = False,
    db: DbOpt = None,
) -> None:
    """Validate article files and load new or changed ones (a new version each)."""
    from engine.errors import SopErrors
    from engine.knowledge.files import load_article_file, load_article_folder
    from engine.knowledge.repo import import_specs

    if not path.exists():
        _err(f"careflow kb import: no such file or folder: {path}")
        raise typer.Exit(2)
    try:
        specs = load_article_folder(path) if path.is_dir() else [load_article_file(path)]
    except SopErrors as exc:
        for e in exc:
            _err(e.format())
        _err(f"careflow kb import: {len(exc)} error(s); nothing imported")
        raise typer.Exit(1) from exc
    if check:
        typer.echo(f"{len(specs)} article(s) valid")
        return
    with _session(db) as s:
        report = import_specs(s, specs, actor=actor, at=_now())
    typer.echo(f"imported {len(specs)} article(s): {len(report.created)} new, "
               f"{len(report.updated)} updated, {len(report.unchanged)} unchanged")


def _move(article_id: str, to: str, actor: str, note: str | None, db: str | None) -> None:
    from engine.knowledge.repo import transition

    with _session(db) as s:
        row = transition(s, article_id, to, actor=actor, at=_now(), note=note)
        typer.echo(f"{row.id}: {to} (v{row.version}) by {actor}")


@kb_app.command("review")
def kb_review(article_id: str, actor: ActorOpt, note: Annotated[str | None, typer.Option()] = None,
              db: DbOpt = None) -> None:
    """Submit a draft for review."""
    _move(article_id, "review", actor, note, db)


@kb_app.command("publish")
def kb_publish(article_id: str, actor: ActorOpt, note: Annotated[str | None, typer.Option()] = None,
               db: DbOpt = None) -> None:
    """Publish a reviewed article: from now on search, L1 and the e-level use it."""
    _move(article_id, "published", actor, note, db)


@kb_app.command("reject")
def kb_reject(article_id: str, actor: ActorOpt,
              note: Annotated[str, typer.Option(help="What must change.")], db: DbOpt = None) -> None:
    """Send an article in review back to draft."""
    _move(article_id, "draft", actor, note, db)


@kb_app.command("retire")
def kb_retire(article_id: str, actor: ActorOpt,
              reason: Annotated[str | None, typer.Option(help="Why it is retired.")] = None,
              db: DbOpt = None) -> None:
    """Retire an article: it leaves search and self-service; its history stays."""
    _move(article_id, "retired", actor, reason, db)


@kb_app.command("search")
def kb_search(
    query: Annotated[str, typer.Argument(help="The question, in English, Dutch or German.")],
    language: Annotated[str | None, typer.Option("--language", "-l", help="Force the query language.")] = None,
    category: Annotated[str | None, typer.Option("--category", "-c", help="Prefer this category.")] = None,
    public: Annotated[bool, typer.Option("--public", help="Only customer-facing articles.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=50)] = 5,
    as_json: JsonOpt = False,
    db: DbOpt = None,
) -> None:
    """Ranked articles for a question, with their confidence (0..1)."""
    from engine.knowledge.search import search

    with _session(db) as s:
        result = search(s, query, language=language, category=category, public_only=public,
                        limit=limit)
    hits = [{"article_id": h.article_id, "title": h.title, "language": h.language,
             "confidence": h.confidence, "score": round(h.score, 6)} for h in result.hits]
    if as_json:
        typer.echo(json.dumps({"language": result.query.language,
                               "truncated": result.query.truncated, "hits": hits},
                              ensure_ascii=False, indent=2))
        return
    note = " (query truncated)" if result.query.truncated else ""
    typer.echo(f"query language: {result.query.language}"
               f"{'' if result.query.language_sure else ' (unsure: searched all)'}{note}")
    for h in hits:
        typer.echo(f"{h['confidence']:.2f}  {h['article_id']:<40} {h['title']}")
    if not hits:
        typer.echo("no matching article")


@kb_app.command("suggest")
def kb_suggest(
    case: Annotated[str | None, typer.Option(help="Articles for this case.")] = None,
    task: Annotated[str | None, typer.Option(help="Articles for this task's case.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=20)] = 3,
    as_json: JsonOpt = False,
    db: DbOpt = None,
) -> None:
    """Agent assist: the articles that likely answer a case (what the e-level offered first)."""
    from engine.knowledge.assist import suggestions_for_case, suggestions_for_task

    if bool(case) == bool(task):
        _err("careflow kb suggest: give --case or --task")
        raise typer.Exit(2)
    with _session(db) as s:
        hits = (suggestions_for_task(s, task, limit=limit) if task
                else suggestions_for_case(s, case or "", limit=limit))
    items = [{"article_id": h.article_id, "title": h.title, "confidence": h.confidence}
             for h in hits]
    if as_json:
        typer.echo(json.dumps(items, ensure_ascii=False, indent=2))
        return
    for i in items:
        typer.echo(f"{i['confidence']:.2f}  {i['article_id']:<40} {i['title']}")
    if not items:
        typer.echo("no suggestions")


@kb_app.command("draft-from-case")
def kb_draft_from_case(
    case_id: Annotated[str, typer.Argument(help="The resolved (or resolving) case.")],
    actor: ActorOpt,
    title: Annotated[str, typer.Option(help="Article title (what the customer asked).")],
    body: Annotated[str | None, typer.Option(help="Article body (Markdown); default: built from the case.")] = None,
    task: Annotated[str | None, typer.Option(help="Record it as this task's knowledge outcome (drafted).")] = None,
    article_id: Annotated[str | None, typer.Option("--id", help="Article id (default: from the title).")] = None,
    language: Annotated[str | None, typer.Option("--language", "-l")] = None,
    category: Annotated[str | None, typer.Option("--category", "-c")] = None,
    db: DbOpt = None,
) -> None:
    """Draft an article from a case's question and resolution; it goes to review."""
    from engine.knowledge.drafting import draft_from_case

    with _session(db) as s:
        row = draft_from_case(s, case_id, title=title, body=body, actor=actor, at=_now(),
                              task_id=task, article_id=article_id, language=language,
                              category=category)
        typer.echo(f"{row.id}: drafted from case {case_id}, status {row.status}")


@kb_app.command("gaps")
def kb_gaps(
    days: Annotated[int, typer.Option(help="Look at the last N days.")] = 90,
    min_signals: Annotated[int, typer.Option("--min", help="Leave out categories with fewer signals.")] = 2,
    as_json: JsonOpt = False,
    db: DbOpt = None,
) -> None:
    """Frequent case categories without a good article (the KB failed them)."""
    from engine.knowledge.reports import gaps_report

    now = _now()
    with _session(db) as s:
        gaps = gaps_report(s, since=now - timedelta(days=days), until=now,
                           min_signals=min_signals)
    if as_json:
        typer.echo(json.dumps([_asdict(g) for g in gaps], ensure_ascii=False, indent=2))
        return
    if not gaps:
        typer.echo("no knowledge gaps found")
    for g in gaps:
        typer.echo(f"{g.category:<22} signals {g.signals:>4}  (not confident {g.low_confidence}, "
                   f"'none' outcomes {g.no_article_outcomes}, deep without article "
                   f"{g.deep_unlinked})  published articles {g.published_articles}")
        for ex in g.examples:
            typer.echo(f"    e.g. {ex}")


def _asdict(value: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(value)


@kb_app.command("shift-left")
def kb_shift_left(
    days: Annotated[int, typer.Option(help="Period length; compared with the period before it.")] = 90,
    as_json: JsonOpt = False,
    db: DbOpt = None,
) -> None:
    """Per category: share of cases resolved at a lower level than in the previous period."""
    from engine.knowledge.reports import shift_left_report

    now = _now()
    with _session(db) as s:
        rows = shift_left_report(s, now=now, period=timedelta(days=days))
    if as_json:
        typer.echo(json.dumps([_asdict(r) for r in rows], ensure_ascii=False, indent=2))
        return
    typer.echo(f"{'category':<22} {'prev':>5} {'now':>5} {'prev median':>12} {'shift-left':>10}")
    for r in rows:
        share = "-" if r.shift_left_share is None else f"{r.shift_left_share:.0%}"
        typer.echo(f"{r.category:<22} {r.cases_previous:>5} {r.cases_current:>5} "
                   f"{r.median_level_previous or '-':>12} {share:>10}")


@kb_app.command("stats")
def kb_stats(
    days: Annotated[int, typer.Option(help="Look at the last N days.")] = 30,
    as_json: JsonOpt = False,
    db: DbOpt = None,
) -> None:
    """E-level self-service (attempts, deflection) and the articles that solved cases."""
    from engine.knowledge.elevel import elevel_stats
    from engine.knowledge.reports import article_usage

    now = _now()
    since = now - timedelta(days=days)
    with _session(db) as s:
        st = elevel_stats(s, since=since, until=now)
        usage = article_usage(s, since=since, until=now)
    data: dict[str, Any] = {
        "attempts": st.total, "confirmed": st.confirmed, "potential": st.potential,
        "escalated": st.escalated, "pending": st.pending,
        "containment": round(st.containment, 4), "deflection": round(st.deflection, 4)}
    if as_json:
        typer.echo(json.dumps({**data, "articles": [_asdict(u) for u in usage]}))
        return
    for k, v in data.items():
        typer.echo(f"{k:<12} {v}")
    if usage:
        typer.echo("\nsolved with article (e-level confirmed / agents linked / drafted from):")
    for u in usage:
        typer.echo(f"  {u.article_id:<40} {u.elevel_confirmed:>4} {u.agent_linked:>4} "
                   f"{u.drafted_from_cases:>4}")


@kb_app.command("reindex")
def kb_reindex(db: DbOpt = None) -> None:
    """Rebuild the search index of every article."""
    from engine.knowledge.repo import reindex_all

    with _session(db) as s:
        n = reindex_all(s)
    typer.echo(f"reindexed {n} article(s)")


def register(app: typer.Typer) -> None:
    app.add_typer(kb_app, name="kb")
