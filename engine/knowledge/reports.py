"""Knowledge reports from the database: gaps and shift-left (the pure maths is in learning).

``gaps_report`` gathers e-level attempts, knowledge outcomes, resolved cases and published
articles per category for ``learning.compute_gaps``; ``shift_left_report`` compares the
period ``[now - period, now)`` with the one before it via ``learning.compute_shift_left``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
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

__all__ = ["gaps_report", "shift_left_report"]


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
