"""Full-text search on PostgreSQL: a weighted ``tsvector`` per article in its own language.

``kb_articles.tsv`` is built with the article language's text-search configuration
(``english``, ``dutch``, ``german``: PostgreSQL's Snowball stemmers and stop words) with
weights A (title), B (keywords), D (body), and a GIN index serves ``@@``. A query is
``websearch_to_tsquery(cfg, 'w1 or w2 or ...')`` (OR semantics; the words are plain
``\\w+`` tokens, so nothing in them is query syntax), ranked with ``ts_rank`` normalised by
document length (flag 1).
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

__all__ = ["CONFIGS", "ensure_schema", "index_row", "search", "unindex"]

CONFIGS = {"en": "english", "nl": "dutch", "de": "german"}
_RANK_WEIGHTS = "{0.3, 0.3, 0.75, 1.0}"  # D, C, B, A (chosen on the eval set, see docs)


def ensure_schema(session: Session) -> None:
    """Create the GIN index on ``kb_articles.tsv`` when missing (idempotent)."""
    session.execute(text("CREATE INDEX IF NOT EXISTS ix_kb_articles_tsv ON kb_articles "
                         "USING GIN (tsv)"))


def index_row(session: Session, article_id: str, language: str) -> None:
    """Rebuild the article's ``tsv`` from its current title, keywords and body."""
    session.execute(
        text("UPDATE kb_articles SET tsv = "
             "setweight(to_tsvector(CAST(:cfg AS regconfig), coalesce(title, '')), 'A') || "
             "setweight(to_tsvector(CAST(:cfg AS regconfig), "
             "coalesce(CAST(keywords AS text), '')), 'B') || "
             "setweight(to_tsvector(CAST(:cfg AS regconfig), coalesce(body, '')), 'D') "
             "WHERE id = :id"),
        {"cfg": CONFIGS[language], "id": article_id},
    )


def unindex(session: Session, article_id: str) -> None:
    """Nothing to do: searches filter on ``status = 'published'``."""


def search(session: Session, words: tuple[str, ...], language: str, *, public_only: bool,
           limit: int) -> list[tuple[str, float]]:
    """Top ``limit`` (article id, ts_rank) of ``language`` matching any of ``words``."""
    if not words:
        return []
    audience = "AND a.audience = 'public'" if public_only else ""
    rows = session.execute(
        text("SELECT a.id, ts_rank(CAST(:w AS float4[]), a.tsv, q, 1) AS score "
             "FROM kb_articles a, websearch_to_tsquery(CAST(:cfg AS regconfig), :q) q "
             f"WHERE a.status = 'published' AND a.language = :lang {audience} AND a.tsv @@ q "
             "ORDER BY score DESC, a.id LIMIT :k"),
        {"w": _RANK_WEIGHTS, "cfg": CONFIGS[language], "q": " or ".join(words),
         "lang": language, "k": limit},
    ).all()
    return [(r[0], float(r[1])) for r in rows]
