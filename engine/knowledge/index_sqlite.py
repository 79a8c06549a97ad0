"""Full-text search on SQLite: an FTS5 table of Snowball-stemmed text, ranked by bm25.

FTS5's own ``porter`` tokenizer only knows English, so the text is stemmed in Python
(engine.knowledge.text) at index and at query time and FTS5 only splits it
(``unicode61 remove_diacritics 2``). Only published articles are in the index; the
repository adds and removes them on every lifecycle change. Column weights: title 4,
keywords 3, body 1. Terms are OR-ed and quoted, so no query text is ever FTS5 syntax.

Each article's FTS row has a fixed ``rowid`` derived from its id (60 bits of SHA-256), so
replacing or removing it is a rowid lookup, not a scan of the index.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import text
from sqlalchemy.orm import Session

from engine.store.models_knowledge import ArticleRow

__all__ = ["FTS_TABLE", "ensure_schema", "fts_rowid", "index_row", "search", "unindex"]

FTS_TABLE = "kb_search"
WEIGHTS = (4.0, 3.0, 1.0)  # title, keywords, body

_DDL = (
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {FTS_TABLE} USING fts5("
    "article_id UNINDEXED, language UNINDEXED, audience UNINDEXED, title, keywords, body, "
    "tokenize = 'unicode61 remove_diacritics 2')"
)


def ensure_schema(session: Session) -> None:
    """Create the FTS5 table when missing (idempotent)."""
    session.execute(text(_DDL))


def fts_rowid(article_id: str) -> int:
    """The FTS rowid of an article: 60 bits of SHA-256 of its id (stable, positive)."""
    return int.from_bytes(hashlib.sha256(article_id.encode("utf-8")).digest()[:8], "big") >> 4


def index_row(session: Session, row: ArticleRow, stems: tuple[str, str, str]) -> None:
    """(Re)index one article from its stemmed title, keywords and body."""
    unindex(session, row.id)
    session.execute(
        text(f"INSERT INTO {FTS_TABLE} (rowid, article_id, language, audience, title, keywords, "
             "body) VALUES (:rid, :id, :lang, :aud, :t, :k, :b)"),
        {"rid": fts_rowid(row.id), "id": row.id, "lang": row.language, "aud": row.audience,
         "t": stems[0], "k": stems[1], "b": stems[2]},
    )


def unindex(session: Session, article_id: str) -> None:
    session.execute(text(f"DELETE FROM {FTS_TABLE} WHERE rowid = :rid"),
                    {"rid": fts_rowid(article_id)})


def search(session: Session, terms: tuple[str, ...], language: str, *, public_only: bool,
           limit: int) -> list[tuple[str, float]]:
    """Top ``limit`` (article id, -bm25) of ``language`` matching any of ``terms``."""
    if not terms:
        return []
    match = " OR ".join('"' + t.replace('"', "") + '"' for t in terms)
    w = ", ".join(str(x) for x in WEIGHTS)
    audience = "AND audience = 'public'" if public_only else ""
    rows = session.execute(
        text(f"SELECT article_id, -bm25({FTS_TABLE}, 0, 0, 0, {w}) AS score FROM {FTS_TABLE} "
             f"WHERE {FTS_TABLE} MATCH :q AND language = :lang {audience} "
             "ORDER BY score DESC LIMIT :k"),
        {"q": match, "lang": language, "k": limit},
    ).all()
    return [(r[0], float(r[1])) for r in rows]
