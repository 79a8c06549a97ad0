"""The article repository: import, draft, edit, lifecycle transitions, history, index upkeep.

Functions take a ``Session`` opened by the edge (CLI, port, test) and never commit. Every
content change appends an ``ArticleVersionRow``; every status change appends an
``ArticleEventRow`` (who, from, to, when, why). The search index follows the lifecycle:
an article enters it when published and leaves it when it stops being published.

Importing files sets content only: the status in a file applies when the article is new;
afterwards the lifecycle commands own it (re-importing never re-publishes a retired article).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import KnowledgeError
from engine.knowledge import index_postgres, index_sqlite
from engine.knowledge.model import LANGUAGES, TRANSITIONS, ArticleSpec, ArticleStatus
from engine.knowledge.text import stem_text
from engine.store.models_knowledge import ArticleEventRow, ArticleRow, ArticleVersionRow

__all__ = [
    "ImportReport",
    "check_spec",
    "create_draft",
    "ensure_search_schema",
    "events_of",
    "get_article",
    "import_specs",
    "list_articles",
    "reindex_all",
    "transition",
    "versions_of",
]


@dataclass
class ImportReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


def _is_pg(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def ensure_search_schema(session: Session) -> None:
    """Create the search structures the ORM metadata cannot (FTS5 table / GIN index)."""
    if _is_pg(session):
        index_postgres.ensure_schema(session)
    else:
        index_sqlite.ensure_schema(session)


def check_spec(spec: ArticleSpec) -> None:
    """The rules of engine.knowledge.files for articles that do not come from files
    (drafts from cases, API callers): id, language, title and body size.

    Raises:
        KnowledgeError: what is wrong, naming the article.
    """
    from engine.knowledge.files import MAX_BODY_BYTES, MAX_TITLE, valid_id

    if not valid_id(spec.id):
        raise KnowledgeError("invalid article id", article_id=spec.id,
                             hint="lower-case letters, digits, '.', '_' and '-'")
    if spec.language not in LANGUAGES:
        raise KnowledgeError(f"unsupported language {spec.language!r}", article_id=spec.id,
                             hint=f"one of {', '.join(LANGUAGES)}")
    if not 0 < len(spec.title.strip()) <= MAX_TITLE:
        raise KnowledgeError(f"the title must have 1 to {MAX_TITLE} characters",
                             article_id=spec.id)
    size = len(spec.body.encode("utf-8"))
    if size > MAX_BODY_BYTES:
        raise KnowledgeError(f"article body is {size // 1024} KiB, larger than "
                             f"{MAX_BODY_BYTES // 1024} KiB", article_id=spec.id,
                             hint="split it into several articles")
    if not spec.body.strip():
        raise KnowledgeError("the article body is empty", article_id=spec.id)


def content_hash(spec: ArticleSpec) -> str:
    payload = json.dumps([spec.title, spec.body, spec.category, list(spec.products),
                          list(spec.keywords), spec.audience.value, spec.translation_of],
                         ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _stems(row: ArticleRow) -> tuple[str, str, str]:
    return (stem_text(row.title, row.language), stem_text(" ".join(row.keywords or ()),
                                                         row.language),
            stem_text(row.body, row.language))


def _reindex(session: Session, row: ArticleRow) -> None:
    stems = _stems(row)
    row.search_text = " ".join(stems)
    session.flush()
    published = row.status == ArticleStatus.PUBLISHED
    if _is_pg(session):
        index_postgres.index_row(session, row.id, row.language)
    elif published:
        index_sqlite.index_row(session, row, stems)
    else:
        index_sqlite.unindex(session, row.id)


def get_article(session: Session, article_id: str) -> ArticleRow:
    """The article ``article_id``.

    Raises:
        KnowledgeError: no such article (with close ids as a hint).
    """
    row = session.get(ArticleRow, article_id)
    if row is None:
        prefix = article_id.split(".")[0][:12]
        close = session.scalars(select(ArticleRow.id).where(ArticleRow.id.like(f"{prefix}%"))
                                .limit(3)).all()
        raise KnowledgeError("no such article", article_id=article_id,
                             hint=f"did you mean {', '.join(close)}?" if close
                             else "see 'careflow kb list'")
    return row


def list_articles(session: Session, *, status: str | None = None, language: str | None = None,
                  category: str | None = None) -> Sequence[ArticleRow]:
    stmt = select(ArticleRow).order_by(ArticleRow.category, ArticleRow.translation_of,
                                       ArticleRow.language)
    if status:
        stmt = stmt.where(ArticleRow.status == status)
    if language:
        stmt = stmt.where(ArticleRow.language == language)
    if category:
        stmt = stmt.where(ArticleRow.category == category)
    return session.scalars(stmt).all()


def _event(session: Session, row: ArticleRow, kind: str, actor: str, at: datetime,
           from_status: str | None = None, note: str | None = None) -> None:
    session.add(ArticleEventRow(article_id=row.id, kind=kind, from_status=from_status,
                                to_status=row.status, version=row.version, actor=actor,
                                note=note, at=at))


def _version(session: Session, row: ArticleRow, actor: str, at: datetime) -> None:
    session.add(ArticleVersionRow(article_id=row.id, version=row.version, title=row.title,
                                  body=row.body, category=row.category,
                                  products=list(row.products or ()),
                                  keywords=list(row.keywords or ()), audience=row.audience,
                                  content_hash=row.content_hash, author=actor, at=at))


def _apply_content(row: ArticleRow, spec: ArticleSpec, digest: str) -> None:
    row.translation_of = spec.translation_of
    row.title = spec.title
    row.body = spec.body
    row.category = spec.category
    row.products = list(spec.products)
    row.keywords = list(spec.keywords)
    row.audience = spec.audience.value
    row.content_hash = digest


def _create(session: Session, spec: ArticleSpec, status: ArticleStatus, actor: str,
            at: datetime, kind: str, source_path: str | None = None,
            source_case_id: str | None = None, note: str | None = None) -> ArticleRow:
    check_spec(spec)
    row = ArticleRow(id=spec.id, language=spec.language, status=status.value, version=1,
                     source_path=source_path, source_case_id=source_case_id, created_at=at,
                     updated_at=at,
                     published_at=at if status == ArticleStatus.PUBLISHED else None)
    _apply_content(row, spec, content_hash(spec))
    session.add(row)
    _version(session, row, actor, at)
    _event(session, row, kind, actor, at, note=note)
    _reindex(session, row)
    return row


def import_specs(session: Session, specs: Iterable[ArticleSpec], *, actor: str,
                 at: datetime) -> ImportReport:
    """Create new articles and new versions of changed ones (status kept for existing ones)."""
    report = ImportReport()
    for spec in specs:
        row = session.get(ArticleRow, spec.id)
        source = spec.span.file if spec.span else None
        if row is None:
            _create(session, spec, spec.status, actor, at, "imported", source_path=source)
            report.created.append(spec.id)
            continue
        if row.language != spec.language:
            raise KnowledgeError(f"language changed from {row.language!r} to "
                                 f"{spec.language!r}", article_id=spec.id,
                                 hint="a translation is a new article with its own id")
        check_spec(spec)
        digest = content_hash(spec)
        if digest == row.content_hash:
            report.unchanged.append(spec.id)
            continue
        _apply_content(row, spec, digest)
        row.version += 1
        row.updated_at = at
        row.source_path = source
        _version(session, row, actor, at)
        _event(session, row, "edited", actor, at, note="imported from file")
        _reindex(session, row)
        report.updated.append(spec.id)
    return report


def create_draft(session: Session, spec: ArticleSpec, *, actor: str, at: datetime,
                 source_case_id: str | None = None, submit: bool = True) -> ArticleRow:
    """A new article written by an agent; ``submit`` sends it to review at once.

    Raises:
        KnowledgeError: the id is taken.
    """
    if session.get(ArticleRow, spec.id) is not None:
        raise KnowledgeError("an article with this id exists already", article_id=spec.id,
                             hint="choose another id")
    row = _create(session, spec, ArticleStatus.DRAFT, actor, at, "created",
                  source_case_id=source_case_id,
                  note=f"drafted from case {source_case_id}" if source_case_id else None)
    if submit:
        transition(session, spec.id, ArticleStatus.REVIEW, actor=actor, at=at,
                   note="submitted for review")
    return row


def transition(session: Session, article_id: str, to: ArticleStatus | str, *, actor: str,
               at: datetime, note: str | None = None) -> ArticleRow:
    """Move an article along its lifecycle and record who did it.

    Raises:
        KnowledgeError: unknown article, or the lifecycle does not allow the move.
    """
    target = ArticleStatus(to)
    row = get_article(session, article_id)
    current = ArticleStatus(row.status)
    if target not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(s.value for s in TRANSITIONS[current]))
        hint = ("submit it for review first: careflow kb review " + article_id
                if current == ArticleStatus.DRAFT and target == ArticleStatus.PUBLISHED
                else f"from {current.value} it may go to: {allowed}")
        raise KnowledgeError(f"cannot move from {current.value} to {target.value}",
                             article_id=article_id, hint=hint)
    if not actor.strip():
        raise KnowledgeError("an actor is required for a lifecycle change",
                             article_id=article_id, hint="pass --actor NAME")
    row.status = target.value
    row.updated_at = at
    if target == ArticleStatus.PUBLISHED:
        row.published_at = at
    _event(session, row, "transition", actor, at, from_status=current.value, note=note)
    _reindex(session, row)
    return row


def versions_of(session: Session, article_id: str) -> Sequence[ArticleVersionRow]:
    return session.scalars(select(ArticleVersionRow).where(
        ArticleVersionRow.article_id == article_id).order_by(ArticleVersionRow.version)).all()


def events_of(session: Session, article_id: str) -> Sequence[ArticleEventRow]:
    return session.scalars(select(ArticleEventRow).where(
        ArticleEventRow.article_id == article_id).order_by(ArticleEventRow.id)).all()


def reindex_all(session: Session) -> int:
    """Rebuild the search index of every article (after an upgrade of the stemmer)."""
    if not _is_pg(session):
        from sqlalchemy import text

        session.execute(text(f"DROP TABLE IF EXISTS {index_sqlite.FTS_TABLE}"))
    ensure_search_schema(session)
    rows = session.scalars(select(ArticleRow)).all()
    for row in rows:
        _reindex(session, row)
    return len(rows)
