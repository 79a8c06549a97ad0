"""Agent assist: the articles to show with a task or a case ("careflow task show").

Suggestions come from the case's own question (the first matching case-data field of
engine.knowledge.drafting.QUESTION_FIELDS), searched with the case's category among all
published articles, internal ones included (agents may read them). Suggestions the e-level
already attached to the case (``suggestions`` or ``kb.suggestions`` in the case data) come
first, so level 1 sees what the customer was already offered.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from engine.errors import KnowledgeError
from engine.knowledge.drafting import read_case_facts
from engine.knowledge.model import SearchHit
from engine.knowledge.search import StatsCache, search
from engine.store.models_knowledge import ArticleRow

__all__ = ["suggestions_for_case", "suggestions_for_task"]


def _attached(data: Any) -> list[str]:
    found: list[str] = []
    for holder in (data, data.get("kb") if isinstance(data, dict) else None):
        if isinstance(holder, dict) and isinstance(holder.get("suggestions"), list):
            found += [s for s in holder["suggestions"] if isinstance(s, str)]
    return list(dict.fromkeys(found))


def suggestions_for_case(session: Session, case_id: str, *, limit: int = 3,
                         cache: StatsCache | None = None) -> list[SearchHit]:
    """The likely articles for a case, best first (at most ``limit``).

    Raises:
        KnowledgeError: no case store or no such case.
    """
    facts = read_case_facts(session, case_id)
    hits: dict[str, SearchHit] = {}
    for article_id in _attached(facts.data):
        row = session.get(ArticleRow, article_id)
        if row is not None and row.status == "published":
            hits[article_id] = SearchHit(row.id, row.translation_of, row.title, row.language,
                                         row.category, row.audience, 0.0, 0.0)
    question = facts.question
    if question:
        for hit in search(session, question, category=facts.category, limit=limit,
                          cache=cache).hits:
            if hit.article_id in hits:
                hits[hit.article_id] = hit  # keep the attached order, with a real confidence
            else:
                hits.setdefault(hit.article_id, hit)
    return list(hits.values())[:limit]


def suggestions_for_task(session: Session, task_id: str, *, limit: int = 3,
                         cache: StatsCache | None = None) -> list[SearchHit]:
    """``suggestions_for_case`` for the task's case.

    Raises:
        KnowledgeError: no such task.
    """
    case_id = session.execute(text("SELECT case_id FROM human_tasks WHERE id = :id"),
                              {"id": task_id}).scalar()
    if case_id is None:
        raise KnowledgeError(f"no such task {task_id!r}", hint="see 'careflow task list'")
    return suggestions_for_case(session, str(case_id), limit=limit, cache=cache)
