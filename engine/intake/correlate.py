"""Tie an inbound event to an open case, by an ordered chain of rules; say which matched.

1. ``case_token``  careflow's own token (or ``[Case#...]`` subject tag) names the case;
2. ``thread``      In-Reply-To / References / call id match a message id stored on an
                   interaction of the case (both directions are recorded);
3. ``customer_channel``  the customer has exactly one most recent open case on this
                   channel that waits for an event (``wait`` node).

Only open cases correlate: a reply to a closed case starts a new contact (the old case id
is kept in the result's ``detail`` so the timeline shows the link).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.base import ChannelEvent
from engine.store.models import CaseRow
from engine.store.models_crm import InteractionRow

__all__ = ["RULES", "Correlation", "correlate_thread", "correlate_waiting"]

RULES = ("case_token", "thread", "customer_channel")


@dataclass(frozen=True, slots=True)
class Correlation:
    case_id: str | None
    rule: str | None
    customer_id: str | None = None  # the case's customer
    closed_case: str | None = None  # a matching case that has already ended


def _open(session: Session, case_id: str) -> tuple[CaseRow | None, bool]:
    row = session.get(CaseRow, case_id)
    if row is None:
        return None, False
    return row, row.status == "open"


def correlate_thread(session: Session, event: ChannelEvent) -> Correlation:
    """Rules 1 and 2 (they need no customer)."""
    closed: str | None = None
    for token in (event.thread.case_token, event.thread.subject_tag):
        if not token:
            continue
        row, is_open = _open(session, token.strip())
        if row is not None and is_open:
            return Correlation(row.id, "case_token", row.customer_id)
        if row is not None:
            closed = closed or row.id
    ids = event.thread.ids()
    if ids:
        hits = session.execute(
            select(InteractionRow.message_id, InteractionRow.case_id)
            .where(InteractionRow.message_id.in_(ids), InteractionRow.case_id.is_not(None))
            .order_by(InteractionRow.id.desc())
        ).all()
        by_id: dict[str | None, str | None] = {}
        for message_id, case_id in hits:
            by_id.setdefault(message_id, case_id)
        for ref in ids:  # most specific reference first
            case_id = by_id.get(ref)
            if case_id is None:
                continue
            row, is_open = _open(session, case_id)
            if row is not None and is_open:
                return Correlation(row.id, "thread", row.customer_id)
            if row is not None:
                closed = closed or row.id
    return Correlation(None, None, closed_case=closed)


def _waits_for_event(state: Any) -> bool:
    if not isinstance(state, dict):
        return True  # not started yet: it will reach its first wait soon enough
    tokens = state.get("tokens") or ()
    return any(isinstance(t, dict) and t.get("wait") == "event" for t in tokens)


def correlate_waiting(session: Session, event: ChannelEvent, customer_id: str) -> Correlation:
    """Rule 3: the customer's most recent open case on this channel waiting for an event."""
    rows = session.scalars(
        select(CaseRow)
        .where(
            CaseRow.customer_id == customer_id,
            CaseRow.status == "open",
            CaseRow.channel == event.channel,
        )
        .order_by(CaseRow.updated_at.desc())
        .limit(20)
    )
    for row in rows:
        if _waits_for_event(row.state):
            return Correlation(row.id, "customer_channel", customer_id)
    return Correlation(None, None)
