"""Search the knowledge base: the database ranks, this module merges and scores confidence.

Retrieval and ranking run in the database (engine.knowledge.index_sqlite: FTS5 bm25;
engine.knowledge.index_postgres: tsvector + ts_rank). This module picks the languages to
search (the query's language when detection is sure, else all three, preferring the
detected one), boosts the case's category, and turns raw ranks -- which are comparable only
within one search -- into a **confidence** in [0, 1] that thresholds can use:

    confidence = 0.75 * coverage + 0.25 * margin

- coverage: the IDF-weighted share of the query's stems that the article contains (a term
  the knowledge base has never seen weighs as much as the rarest known one, so an off-topic
  question with a few generic matches stays low);
- margin: for the top hit, how far its rank is ahead of the best hit of a *different*
  article (translations of the same article do not compete): ``(s1 - s2) / s1``.

Corpus statistics (document frequencies per language) come from the published articles'
stemmed text and are cached per knowledge-base revision (published count and last lifecycle event).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.knowledge import index_postgres, index_sqlite
from engine.knowledge.model import LANGUAGES, SearchHit
from engine.knowledge.text import PreparedQuery, prepare_query, split_compounds
from engine.store.models_knowledge import ArticleEventRow, ArticleRow

__all__ = ["CorpusStats", "SearchResult", "StatsCache", "search"]

CATEGORY_BOOST = 1.25
OTHER_LANGUAGE_FACTOR = 0.85
COVERAGE_WEIGHT = 0.75


@dataclass(frozen=True, slots=True)
class _Doc:
    id: str
    group: str
    title: str
    language: str
    category: str
    audience: str
    stems: frozenset[str]


@dataclass(frozen=True, slots=True)
class CorpusStats:
    """What confidence needs to know about the published articles."""

    docs: Mapping[str, _Doc]
    n: Mapping[str, int]  # language -> published articles
    df: Mapping[str, Mapping[str, int]]  # language -> stem -> articles containing it

    def idf(self, language: str, stem: str) -> float:
        n = self.n.get(language, 0)
        df = self.df.get(language, {}).get(stem, 0)
        if df == 0:  # never seen: as telling as the rarest known term
            return math.log(1 + max(n, 1))
        return math.log(1 + n / df)

    def coverage(self, doc: _Doc, stems: tuple[str, ...]) -> float:
        total = sum(self.idf(doc.language, s) for s in stems)
        if total <= 0:
            return 0.0
        hit = sum(self.idf(doc.language, s) for s in stems if s in doc.stems)
        return hit / total


def _revision(session: Session) -> tuple[int, int]:
    """Changes with every create, edit and lifecycle move (each appends an event row)."""
    published = session.execute(select(func.count(ArticleRow.id)).where(
        ArticleRow.status == "published")).scalar()
    last_event = session.execute(select(func.max(ArticleEventRow.id))).scalar()
    return int(published or 0), int(last_event or 0)


def _load_stats(session: Session) -> CorpusStats:
    rows = session.execute(
        select(ArticleRow.id, ArticleRow.translation_of, ArticleRow.title, ArticleRow.language,
               ArticleRow.category, ArticleRow.audience, ArticleRow.search_text)
        .where(ArticleRow.status == "published")
    ).all()
    docs: dict[str, _Doc] = {}
    n: dict[str, int] = {}
    df: dict[str, dict[str, int]] = {}
    for r in rows:
        stems = frozenset(r.search_text.split())
        docs[r.id] = _Doc(r.id, r.translation_of, r.title, r.language, r.category, r.audience,
                          stems)
        n[r.language] = n.get(r.language, 0) + 1
        lang_df = df.setdefault(r.language, {})
        for s in stems:
            lang_df[s] = lang_df.get(s, 0) + 1
    return CorpusStats(docs, n, df)


@dataclass
class StatsCache:
    """Corpus statistics cached per revision; one per process (or per port) is enough."""

    revision: tuple[int, int] | None = None
    stats: CorpusStats | None = None

    def get(self, session: Session) -> CorpusStats:
        rev = _revision(session)
        if self.stats is None or rev != self.revision:
            self.stats, self.revision = _load_stats(session), rev
        return self.stats


@dataclass(frozen=True, slots=True)
class SearchResult:
    """Ranked hits (best first) and the query as it was searched."""

    hits: tuple[SearchHit, ...]
    query: PreparedQuery
    languages: tuple[str, ...] = field(default=())

    @property
    def top(self) -> SearchHit | None:
        return self.hits[0] if self.hits else None


def _backend_search(session: Session, query: PreparedQuery, language: str, *,
                    public_only: bool, limit: int) -> list[tuple[str, float]]:
    if session.get_bind().dialect.name == "postgresql":
        return index_postgres.search(session, query.words, language, public_only=public_only,
                                     limit=limit)
    return index_sqlite.search(session, query.terms(language), language,
                               public_only=public_only, limit=limit)


def search(session: Session, text: str, *, language: str | None = None,
           category: str | None = None, public_only: bool = False, limit: int = 5,
           cache: StatsCache | None = None) -> SearchResult:
    """Ranked articles for ``text``.

    Args:
        text: the question (any length: it is capped, see engine.knowledge.text).
        language: force the query language; None detects it.
        category: the case category; articles of that category rank higher.
        public_only: only articles customers may see (the e-level).
        limit: how many hits to return.
        cache: corpus statistics cache (a fresh one per call when None).
    """
    stats = (cache or StatsCache()).get(session)
    query = split_compounds(prepare_query(text, language), stats.df)
    languages = (query.language,) if query.language_sure else LANGUAGES
    hits = _collect(session, query, stats, languages, category, public_only, limit)
    if not hits and languages != LANGUAGES:
        languages = LANGUAGES
        hits = _collect(session, query, stats, languages, category, public_only, limit)
    return SearchResult(tuple(hits[:limit]), query, languages)


def _collect(session: Session, query: PreparedQuery, stats: CorpusStats,
             languages: tuple[str, ...], category: str | None, public_only: bool,
             limit: int) -> list[SearchHit]:
    merged: list[SearchHit] = []
    for lang in languages:
        raw = _backend_search(session, query, lang, public_only=public_only,
                              limit=max(limit * 3, 10))
        scored = []
        for article_id, score in raw:
            doc = stats.docs.get(article_id)
            if doc is None:  # published after the stats were read
                continue
            if category and doc.category == category:
                score *= CATEGORY_BOOST
            scored.append((doc, score))
        scored.sort(key=lambda ds: (-ds[1], ds[0].id))
        merged.extend(_with_confidence(scored, query.terms(lang), stats))
    if len(languages) > 1:
        def key(h: SearchHit) -> tuple[float, str]:
            factor = 1.0 if h.language == query.language else OTHER_LANGUAGE_FACTOR
            return (-h.confidence * factor, h.article_id)
        merged.sort(key=key)
    return merged


def _with_confidence(scored: list[tuple[_Doc, float]], stems: tuple[str, ...],
                     stats: CorpusStats) -> list[SearchHit]:
    hits = []
    for i, (doc, score) in enumerate(scored):
        rival = next((s for d, s in scored[i + 1:] if d.group != doc.group), 0.0)
        margin = max(0.0, (score - rival) / score) if score > 0 and i == 0 else 0.0
        coverage = stats.coverage(doc, stems)
        conf = COVERAGE_WEIGHT * coverage + (1 - COVERAGE_WEIGHT) * margin
        hits.append(SearchHit(doc.id, doc.group, doc.title, doc.language, doc.category,
                              doc.audience, score, round(min(1.0, conf), 4)))
    return hits

