"""The inbox and the dead-letter store: nothing inbound is processed twice or lost.

``accept`` inserts the event into the inbox keyed by (channel, external id); a second
delivery of the same item is reported as a duplicate and leaves no second row (the UNIQUE
constraint decides under concurrency). ``dead_letter`` keeps anything that could not be
parsed, validated or routed, with its reason, for ``careflow deadletter retry``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from connectors.base import ChannelEvent, event_to_dict
from engine.store.models import DeadLetterRow, InboxRow

__all__ = ["accept", "dead_letter", "find_inbox"]

RECEIVED = "received"


def find_inbox(session: Session, channel: str, external_id: str) -> InboxRow | None:
    return session.scalars(select(InboxRow).where(
        InboxRow.channel == channel, InboxRow.external_id == external_id)).first()


def accept(session: Session, event: ChannelEvent, *, now: datetime) -> tuple[int, bool]:
    """Put ``event`` into the inbox; returns (inbox id, duplicate?)."""
    existing = find_inbox(session, event.channel, event.external_id)
    if existing is not None:
        return existing.id, True
    row = InboxRow(channel=event.channel, external_id=event.external_id, received_at=now,
                   payload=event_to_dict(event), status=RECEIVED)
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        # a concurrent delivery of the same item won the race
        existing = find_inbox(session, event.channel, event.external_id)
        if existing is None:
            raise
        return existing.id, True
    return row.id, False


def dead_letter(session: Session, source: str, reason: str, payload: Any, *,
                now: datetime) -> int:
    """Keep an unprocessable input with its reason; returns the dead letter's id."""
    row = DeadLetterRow(source=source[:80], reason=reason, payload=payload, received_at=now)
    session.add(row)
    session.flush()
    return row.id
