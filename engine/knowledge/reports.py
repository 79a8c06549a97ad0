"""Knowledge reports from the database: gaps and shift-left (the pure maths is in learning).

``gaps_report`` gathers e-level attempts, knowledge outcomes, resolved cases and published
articles per category for ``learning.compute_gaps``; ``shift_left_report`` compares the
period ``[now - period, now)`` with the one before it via ``learning.compute_shift_left``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.knowledge.learning import (
    Gap,
    ShiftLeft,
    compute_gaps,
    compute_shift_left,
    iter_case_resolutions,
    published_per_category,
    sync_task_outcomes,
)
from engine.store.models_knowledge import ElevelAttemptRow, KnowledgeOutcomeRow

__all__ = ["ArticleUsage", "article_usage", "gaps_report", "shift_left_report"]


def gaps_report(session: Session, *, since: datetime, until: datetime,
                min_signals: int = 2) -> list[Gap]:
    """Categories ranked by how often the knowledge base failed them in ``[since, until)``."""
    sync_task_outcomes(session)
    attempts = session.execute(
        select(ElevelAttemptRow.category, ElevelAttemptRow.outcome, ElevelAttemptRow.reason,
               ElevelAttemptRow.query)
        .where(ElevelAttemptRow.at >= since, ElevelAttemptRow.at < until)).all()
    outcomes = session.execute(
        select(KnowledgeOutcomeRow.category, KnowledgeOutcomeRow.kind, KnowledgeOutcomeRow.reason,
               KnowledgeOutcomeRow.case_id)
        .where(KnowledgeOutcomeRow.at >= since, KnowledgeOutcomeRow.at < until)).all()
    linked = {o.case_id for o in outcomes if o.kind in ("linked", "drafted")}
    return compute_gaps(
        attempts=[(a.category, a.outcome, a.reason, a.query) for a in attempts],
        outcomes=[(o.category, o.kind, o.reason) for o in outcomes],
        resolutions=list(iter_case_resolutions(session, since=since, until=until)),
        linked_cases=linked, published=published_per_category(session),
        min_signals=min_signals)


def shift_left_report(session: Session, *, now: datetime, period: timedelta) -> list[ShiftLeft]:
    """This period against the previous one, per category."""
    current = list(iter_case_resolutions(session, since=now - period, until=now))
    previous = list(iter_case_resolutions(session, since=now - 2 * period, until=now - period))
    return compute_shift_left(previous, current)


@dataclass(frozen=True, slots=True)
class ArticleUsage:
    """How often an article solved cases: at the e-level (confirmed) and by agents (linked)."""

    article_id: str
    elevel_confirmed: int
    agent_linked: int
    drafted_from_cases: int

    @property
    def total(self) -> int:
        return self.elevel_confirmed + self.agent_linked


def article_usage(session: Session, *, since: datetime, until: datetime,
                  limit: int = 20) -> list[ArticleUsage]:
    """The most used articles in ``[since, until)`` ("solved with article X")."""
    sync_task_outcomes(session)
    counts: dict[str, list[int]] = {}
    confirmed = session.execute(
        select(ElevelAttemptRow.article_id, func.count())
        .where(ElevelAttemptRow.outcome == "confirmed", ElevelAttemptRow.at >= since,
               ElevelAttemptRow.at < until, ElevelAttemptRow.article_id.is_not(None))
        .group_by(ElevelAttemptRow.article_id)).all()
    for article_id, n in confirmed:
        counts.setdefault(article_id, [0, 0, 0])[0] += int(n)
    outcomes = session.execute(
        select(KnowledgeOutcomeRow.article_id, KnowledgeOutcomeRow.kind, func.count())
        .where(KnowledgeOutcomeRow.at >= since, KnowledgeOutcomeRow.at < until,
               KnowledgeOutcomeRow.article_id.is_not(None))
        .group_by(KnowledgeOutcomeRow.article_id, KnowledgeOutcomeRow.kind)).all()
    for article_id, kind, n in outcomes:
        slot = 1 if kind == "linked" else 2
        counts.setdefault(article_id, [0, 0, 0])[slot] += int(n)
    rows = [ArticleUsage(a, c[0], c[1], c[2]) for a, c in counts.items()]
    rows.sort(key=lambda u: (-u.total, -u.drafted_from_cases, u.article_id))
    return rows[:limit]
