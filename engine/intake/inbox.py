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
    return session.scalars(
        select(InboxRow).where(InboxRow.channel == channel, InboxRow.external_id == external_id)
    ).first()


def _insert_ignoring_duplicates(session: Session) -> Any:
    """``INSERT ... ON CONFLICT DO NOTHING`` for the session's backend (SQLite, PostgreSQL)."""
    from sqlalchemy.dialects import postgresql, sqlite

    name = session.get_bind().dialect.name
    insert: Any
    if name == "postgresql":
        insert = postgresql.insert
    elif name == "sqlite":
        insert = sqlite.insert
    else:
        return None
    return insert(InboxRow).on_conflict_do_nothing(
        index_elements=["channel", "external_id"]
    )


def accept(session: Session, event: ChannelEvent, *, now: datetime) -> tuple[int, bool]:
    """Put ``event`` into the inbox; returns (inbox id, duplicate?).

    One ``INSERT ... ON CONFLICT DO NOTHING RETURNING id``: the UNIQUE constraint decides
    between concurrent deliveries of the same item, without a savepoint.
    """
    values = {
        "channel": event.channel,
        "external_id": event.external_id,
        "received_at": now,
        "payload": event_to_dict(event),
        "status": RECEIVED,
    }
    stmt = _insert_ignoring_duplicates(session)
    if stmt is not None:
        new_id = session.execute(stmt.values(**values).returning(InboxRow.__table__.c.id)).scalar()
        if new_id is not None:
            return int(new_id), False
        existing = find_inbox(session, event.channel, event.external_id)
        if existing is None:  # pragma: no cover -- the conflicting row cannot vanish
            raise IntegrityError("inbox insert ignored but no row found", None, Exception())
        return existing.id, True
    # other backends: savepoint + unique violation
    found = find_inbox(session, event.channel, event.external_id)
    if found is not None:
        return found.id, True
    row = InboxRow(**values)
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        found = find_inbox(session, event.channel, event.external_id)
        if found is None:
            raise
        return found.id, True
    return row.id, False


def dead_letter(session: Session, source: str, reason: str, payload: Any, *, now: datetime) -> int:
    """Keep an unprocessable input with its reason; returns the dead letter's id."""
    row = DeadLetterRow(source=source[:80], reason=reason, payload=payload, received_at=now)
    session.add(row)
    session.flush()
    return row.id
