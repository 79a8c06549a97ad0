"""The knowledge base's tables: articles, their versions and lifecycle audit, e-level attempts
and the knowledge outcomes of resolved cases.

Rows, not domain values: engine.knowledge.repo converts them to engine.knowledge.model's
frozen types. ``kb_articles.search_text`` holds the Snowball-stemmed title, keywords and
body (engine.knowledge.text) that the SQLite FTS5 index and the confidence score use;
``kb_articles.tsv`` is the PostgreSQL ``tsvector`` (a plain text column on SQLite, unused).
The SQLite FTS5 virtual table itself is created by engine.knowledge.index_sqlite, because
SQLAlchemy's metadata cannot describe virtual tables.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from engine.store.base import Base
from engine.store.models import UtcDateTime

__all__ = [
    "ArticleEventRow",
    "ArticleRow",
    "ArticleVersionRow",
    "ElevelAttemptRow",
    "KnowledgeOutcomeRow",
]

ID = String(200)


class ArticleRow(Base):
    """The current version of one knowledge article (one language)."""

    __tablename__ = "kb_articles"
    __table_args__ = (
        Index("ix_kb_articles_status_lang", "status", "language"),
        Index("ix_kb_articles_category", "category"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    translation_of: Mapped[str] = mapped_column(ID, index=True)  # translation group id
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(80))
    products: Mapped[Any] = mapped_column(JSON, default=list)
    keywords: Mapped[Any] = mapped_column(JSON, default=list)
    language: Mapped[str] = mapped_column(String(8))
    audience: Mapped[str] = mapped_column(String(16), default="public")
    status: Mapped[str] = mapped_column(String(16), default="draft")
    version: Mapped[int] = mapped_column(Integer, default=1)
    content_hash: Mapped[str] = mapped_column(String(64))
    source_path: Mapped[str | None] = mapped_column(String(500))
    source_case_id: Mapped[str | None] = mapped_column(ID)  # drafted from this case
    search_text: Mapped[str] = mapped_column(Text, default="")
    tsv: Mapped[Any | None] = mapped_column(Text().with_variant(TSVECTOR(), "postgresql"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    published_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class ArticleVersionRow(Base):
    """Every content version an article ever had (append-only)."""

    __tablename__ = "kb_article_versions"
    __table_args__ = (UniqueConstraint("article_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    article_id: Mapped[str] = mapped_column(ID, index=True)
    version: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(80))
    products: Mapped[Any] = mapped_column(JSON, default=list)
    keywords: Mapped[Any] = mapped_column(JSON, default=list)
    audience: Mapped[str] = mapped_column(String(16))
    content_hash: Mapped[str] = mapped_column(String(64))
    author: Mapped[str] = mapped_column(String(120))
    at: Mapped[datetime] = mapped_column(UtcDateTime)


class ArticleEventRow(Base):
    """Lifecycle audit: who moved which article from which status to which, and why."""

    __tablename__ = "kb_article_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    article_id: Mapped[str] = mapped_column(ID, index=True)
    kind: Mapped[str] = mapped_column(String(40))  # created | edited | transition | imported
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str | None] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer)
    actor: Mapped[str] = mapped_column(String(120))
    note: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UtcDateTime)


class ElevelAttemptRow(Base):
    """One e-level self-service attempt and what came of it.

    ``outcome``: pending (answer sent, waiting for the customer) | confirmed (the customer
    said it solved the problem) | potential (no answer within the wait: potential
    deflection) | escalated (low confidence, or the customer said no).
    """

    __tablename__ = "kb_elevel_attempts"
    __table_args__ = (Index("ix_kb_elevel_attempts_case", "case_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    idempotency_key: Mapped[str] = mapped_column(ID, unique=True)
    case_id: Mapped[str | None] = mapped_column(ID)
    node: Mapped[str | None] = mapped_column(String(120))
    query: Mapped[str] = mapped_column(Text)
    category: Mapped[str | None] = mapped_column(String(80))
    language: Mapped[str] = mapped_column(String(8))
    article_id: Mapped[str | None] = mapped_column(ID)
    score: Mapped[float] = mapped_column(Float, default=0.0)
    threshold: Mapped[float] = mapped_column(Float, default=0.0)
    suggestions: Mapped[Any] = mapped_column(JSON, default=list)
    outcome: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    reason: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    outcome_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class KnowledgeOutcomeRow(Base):
    """What knowledge a resolution produced: linked an article, drafted one, or none (why)."""

    __tablename__ = "kb_knowledge_outcomes"
    __table_args__ = (UniqueConstraint("case_id", "task_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ID, index=True)
    task_id: Mapped[str] = mapped_column(ID)
    kind: Mapped[str] = mapped_column(String(16))  # linked | drafted | none
    article_id: Mapped[str | None] = mapped_column(ID, index=True)
    reason: Mapped[str | None] = mapped_column(Text)
    level: Mapped[str | None] = mapped_column(String(40))
    category: Mapped[str | None] = mapped_column(String(80))
    actor: Mapped[str] = mapped_column(String(120))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
