"""E-level self-service: answer from the knowledge base, ask, and record what came of it.

An attempt is one row in ``kb_elevel_attempts``:

- confident match -> the answer goes to the customer (``reply_text``, in the customer's
  language, asking whether it solved the problem); outcome ``pending``;
- the customer says yes -> ``confirmed`` (resolved at the e-level: confirmed deflection);
- no answer within the SOP's wait -> ``potential`` (potential deflection);
- the customer says no, or the match was not confident -> ``escalated`` (to level 1,
  with the suggestions attached).

So containment (confirmed / all) and deflection (confirmed + potential) are counts of rows.
Attempts are keyed by the action's idempotency key: a retried action never records twice.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.errors import KnowledgeError
from engine.knowledge.model import AttemptOutcome
from engine.knowledge.text import tokens
from engine.store.models_knowledge import ElevelAttemptRow

__all__ = [
    "DEFAULT_THRESHOLD",
    "ElevelStats",
    "classify_feedback",
    "elevel_stats",
    "latest_pending",
    "record_attempt",
    "reply_text",
    "set_outcome",
]

#: default confidence an answer needs before the e-level sends it (per SOP: ``threshold``)
DEFAULT_THRESHOLD = 0.55

_ASK = {
    "en": ("Here is what we found for your question:", "Did this solve your problem? "
           "Please reply YES or NO. If you reply NO, a colleague will take over."),
    "nl": ("Dit hebben we gevonden voor uw vraag:", "Heeft dit uw probleem opgelost? "
           "Antwoord met JA of NEE. Bij NEE neemt een collega het van ons over."),
    "de": ("Das haben wir zu Ihrer Frage gefunden:", "Hat das Ihr Problem gelöst? "
           "Bitte antworten Sie mit JA oder NEIN. Bei NEIN übernimmt eine Kollegin oder "
           "ein Kollege."),
}


def reply_text(language: str, title: str, answer: str) -> str:
    """The message the e-level sends: intro, the article, and the question."""
    intro, ask = _ASK.get(language, _ASK["en"])
    return f"{intro}\n\n{title}\n\n{answer}\n\n{ask}"


_YES = frozenset("yes yeah yep y ok okay solved worked works thanks thank ja jawel opgelost "
                 "gelukt werkt bedankt dank gelöst geklappt funktioniert danke super prima "
                 "perfect perfekt top".split())
_NO = frozenset("no nope not didn't didnt doesn't doesnt nee niet geen nein nicht kein keine "
                "leider unfortunately helaas".split())


def classify_feedback(text: str) -> str:
    """The customer's answer to "did this solve it?": ``yes``, ``no`` or ``unclear``.

    A negation wins ("not solved", "nog steeds niet", "hat nicht geklappt").

    >>> [classify_feedback(t) for t in ("Yes, thanks!", "nee", "hat nicht geklappt", "hmm")]
    ['yes', 'no', 'no', 'unclear']
    """
    words = set(tokens(text)) | set(re.findall(r"\w+'\w+", text.casefold()))
    if words & _NO:
        return "no"
    if words & _YES:
        return "yes"
    return "unclear"


@dataclass(frozen=True, slots=True)
class ElevelStats:
    """Counts of attempt outcomes and the rates built from them."""

    total: int
    confirmed: int
    potential: int
    escalated: int
    pending: int

    @property
    def containment(self) -> float:
        """Share of decided attempts resolved at the e-level with the customer's confirmation."""
        decided = self.confirmed + self.potential + self.escalated
        return self.confirmed / decided if decided else 0.0

    @property
    def deflection(self) -> float:
        """Share of decided attempts deflected (confirmed or potential)."""
        decided = self.confirmed + self.potential + self.escalated
        return (self.confirmed + self.potential) / decided if decided else 0.0


def record_attempt(session: Session, *, idempotency_key: str, case_id: str | None,
                   node: str | None, query: str, category: str | None, language: str,
                   article_id: str | None, score: float, threshold: float,
                   suggestions: Sequence[str], outcome: AttemptOutcome, reason: str | None,
                   at: datetime) -> ElevelAttemptRow:
    """Insert the attempt unless one with the key exists (then return that one)."""
    row = session.scalars(select(ElevelAttemptRow).where(
        ElevelAttemptRow.idempotency_key == idempotency_key)).first()
    if row is not None:
        return row
    row = ElevelAttemptRow(
        idempotency_key=idempotency_key, case_id=case_id, node=node, query=query[:4000],
        category=category, language=language, article_id=article_id, score=score,
        threshold=threshold, suggestions=list(suggestions), outcome=outcome.value,
        reason=reason, at=at,
        outcome_at=at if outcome != AttemptOutcome.PENDING else None)
    session.add(row)
    session.flush()
    return row


def latest_pending(session: Session, case_id: str) -> ElevelAttemptRow | None:
    return session.scalars(
        select(ElevelAttemptRow).where(ElevelAttemptRow.case_id == case_id,
                                       ElevelAttemptRow.outcome == AttemptOutcome.PENDING)
        .order_by(ElevelAttemptRow.id.desc())).first()


def set_outcome(session: Session, case_id: str, outcome: AttemptOutcome | str, *,
                at: datetime, reason: str | None = None) -> ElevelAttemptRow | None:
    """Decide the case's latest pending attempt; a repeat of the same decision is a no-op.

    Returns:
        The attempt, or None when the case has no attempt at all (nothing to decide).

    Raises:
        KnowledgeError: ``outcome`` is not confirmed, potential or escalated.
    """
    target = AttemptOutcome(outcome)
    if target == AttemptOutcome.PENDING:
        raise KnowledgeError("an attempt's outcome must be confirmed, potential or escalated")
    row = latest_pending(session, case_id)
    if row is None:
        return session.scalars(select(ElevelAttemptRow).where(
            ElevelAttemptRow.case_id == case_id).order_by(ElevelAttemptRow.id.desc())).first()
    row.outcome = target.value
    row.outcome_at = at
    row.reason = reason or row.reason
    session.flush()
    return row


def elevel_stats(session: Session, *, since: datetime | None = None,
                 until: datetime | None = None, category: str | None = None) -> ElevelStats:
    stmt = select(ElevelAttemptRow.outcome, func.count()).group_by(ElevelAttemptRow.outcome)
    if since is not None:
        stmt = stmt.where(ElevelAttemptRow.at >= since)
    if until is not None:
        stmt = stmt.where(ElevelAttemptRow.at < until)
    if category:
        stmt = stmt.where(ElevelAttemptRow.category == category)
    counts = {k: int(v) for k, v in session.execute(stmt).all()}
    return ElevelStats(total=sum(counts.values()), confirmed=counts.get("confirmed", 0),
                       potential=counts.get("potential", 0),
                       escalated=counts.get("escalated", 0), pending=counts.get("pending", 0))
