"""``KnowledgePort``: what the runtime hands to the kb_* actions and to agent tools.

The runtime builds one per process, ``KnowledgePort(session_factory)``, and puts it into
the actions' ports as ``ports["knowledge"]``. Each method opens its own short transaction
(the port never shares the runtime's session) and takes the time from its caller, so a
simulated clock stays in charge.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.knowledge import elevel, learning, repo
from engine.knowledge.model import LANGUAGES, Answer, AttemptOutcome, OutcomeKind, SearchHit
from engine.knowledge.render import render_text
from engine.knowledge.search import SearchResult, StatsCache, search
from engine.knowledge.text import detect_language
from engine.store.models_knowledge import ArticleRow, ElevelAttemptRow, KnowledgeOutcomeRow

__all__ = ["KnowledgePort", "customer_language"]


class KnowledgePort:
    """Knowledge-base access for actions and agent assist.

    Args:
        session_factory: a callable returning a new ``Session`` on the case database
            (``engine.store.db.sessions(engine)``).
    """

    def __init__(self, session_factory: Callable[[], Session]) -> None:
        self._sessions = session_factory
        self._cache = StatsCache()
        self._indexed = False

    def _session(self) -> Session:
        if not self._indexed:
            self.ensure_index()
        return self._sessions()

    def ensure_index(self) -> None:
        """Create the search structures if missing (idempotent; done once per port)."""
        with self._sessions() as s, s.begin():
            repo.ensure_search_schema(s)
        self._indexed = True

    # ---- search -------------------------------------------------------------------------

    def search(self, text: str, *, language: str | None = None, category: str | None = None,
               public_only: bool = False, limit: int = 5) -> SearchResult:
        with self._session() as s, s.begin():
            return search(s, text, language=language, category=category,
                          public_only=public_only, limit=limit, cache=self._cache)

    def suggest_for_case(self, subject: str, body: str = "", category: str | None = None, *,
                         limit: int = 3, public_only: bool = False) -> list[SearchHit]:
        """Articles for a case, from its subject (counted twice), body and category."""
        query = f"{subject}\n{subject}\n{body}".strip()
        if not query:
            return []
        return list(self.search(query, category=category, public_only=public_only,
                                limit=limit).hits)

    def article_text(self, article_id: str) -> tuple[str, str, str]:
        """(title, plain-text body, language) of one article."""
        with self._session() as s:
            row = repo.get_article(s, article_id)
            return row.title, render_text(row.body), row.language

    # ---- e-level ------------------------------------------------------------------------

    def answer(self, text: str, *, at: datetime, idempotency_key: str,
               category: str | None = None, language: str | None = None,
               threshold: float = elevel.DEFAULT_THRESHOLD, case_id: str | None = None,
               node: str | None = None, limit: int = 3) -> Answer:
        """Try to answer a concern from public articles and record the attempt.

        Confident (top confidence >= ``threshold``): the answer is the top article in the
        customer's language (its translation when the match was in another language) and
        the attempt is ``pending`` until the customer's feedback. Otherwise the attempt is
        ``escalated`` (reason ``low_confidence``) and the suggestions go to level 1.
        ``language`` is a hint (e.g. the chat widget's setting): when the text is clearly in
        another language, the customer is answered in the language they wrote in.
        """
        language = customer_language(text, language)
        with self._session() as s, s.begin():
            result = search(s, text, language=language, category=category, public_only=True,
                            limit=max(limit, 1), cache=self._cache)
            lang = result.query.language
            suggestions = tuple(h.article_id for h in result.hits)
            top = result.top
            score = top.confidence if top else 0.0
            answer = Answer(confident=False, score=score, threshold=threshold, language=lang,
                            suggestions=suggestions, truncated=result.query.truncated)
            if top is not None and score >= threshold:
                row = self._in_language(s, top, lang)
                body = render_text(row.body)
                answer = Answer(
                    confident=True, score=score, threshold=threshold, language=row.language,
                    article_id=row.id, title=row.title, answer_text=body,
                    reply_text=elevel.reply_text(row.language, row.title, body),
                    suggestions=suggestions, truncated=result.query.truncated)
            elevel.record_attempt(
                s, idempotency_key=idempotency_key, case_id=case_id, node=node, query=text,
                category=category or learning.case_category(s, case_id), language=answer.language, article_id=answer.article_id or
                (top.article_id if top else None), score=score, threshold=threshold,
                suggestions=suggestions,
                outcome=AttemptOutcome.PENDING if answer.confident else AttemptOutcome.ESCALATED,
                reason=None if answer.confident else "low_confidence", at=at)
            return answer

    @staticmethod
    def _in_language(s: Session, hit: SearchHit, language: str) -> ArticleRow:
        if hit.language != language:
            twin = s.scalars(select(ArticleRow).where(
                ArticleRow.translation_of == hit.translation_of, ArticleRow.language == language,
                ArticleRow.status == "published", ArticleRow.audience == "public")).first()
            if twin is not None:
                return twin
        return repo.get_article(s, hit.article_id)

    def record_attempt_outcome(self, case_id: str, outcome: AttemptOutcome | str, *,
                               at: datetime, reason: str | None = None) -> dict[str, Any] | None:
        """Decide the case's pending e-level attempt (confirmed / potential / escalated)."""
        with self._session() as s, s.begin():
            row = elevel.set_outcome(s, case_id, outcome, at=at, reason=reason)
            return _attempt_dict(row) if row else None

    def attempts(self, case_id: str) -> list[dict[str, Any]]:
        with self._session() as s:
            rows = s.scalars(select(ElevelAttemptRow).where(ElevelAttemptRow.case_id == case_id)
                             .order_by(ElevelAttemptRow.id)).all()
            return [_attempt_dict(r) for r in rows]

    # ---- learning loop ------------------------------------------------------------------

    def record_knowledge_outcome(self, *, case_id: str, task_id: str, kind: OutcomeKind | str,
                                 actor: str, at: datetime, article_id: str | None = None,
                                 reason: str | None = None, level: str | None = None,
                                 category: str | None = None) -> None:
        """Store a task's knowledge outcome ("solved with article X", drafted, none + reason)."""
        with self._session() as s, s.begin():
            learning.record_outcome(s, case_id=case_id, task_id=task_id, kind=kind, actor=actor,
                                    at=at, article_id=article_id, reason=reason, level=level,
                                    category=category)

    def knowledge_outcomes(self, case_id: str) -> list[dict[str, Any]]:
        with self._session() as s:
            rows = s.scalars(select(KnowledgeOutcomeRow).where(
                KnowledgeOutcomeRow.case_id == case_id).order_by(KnowledgeOutcomeRow.id)).all()
            return [{"task_id": r.task_id, "kind": r.kind, "article_id": r.article_id,
                     "reason": r.reason, "actor": r.actor, "at": r.at.isoformat()} for r in rows]


def customer_language(text: str, hint: str | None) -> str | None:
    """The language to answer in: what the text is clearly written in, else the hint.

    >>> customer_language("Ich habe mein Passwort vergessen", "en")
    'de'
    >>> customer_language("ok", "nl")
    'nl'
    """
    found = detect_language(text)
    if found.sure and found.language != hint:
        return found.language
    return hint if hint in LANGUAGES else None


def _attempt_dict(row: ElevelAttemptRow) -> dict[str, Any]:
    return {"id": row.id, "case_id": row.case_id, "article_id": row.article_id,
            "score": row.score, "language": row.language, "outcome": row.outcome,
            "reason": row.reason, "suggestions": list(row.suggestions or ()),
            "at": row.at.isoformat()}
