"""The dead-letter store: list, show and retry what intake could not process.

A dead letter's payload says how to retry it:

- ``{"inbox_id": N, "event": {...}}``  -- accepted, failed while processing: reprocess row N;
- ``{"event": {...}}``                  -- channel-event JSON that failed validation: re-ingest;
- ``{"endpoint": "webform", "body": {...}}`` -- an HTTP intake body the endpoint's adapter
  could not convert: run the adapter again (``parsers`` maps endpoint -> adapter).

Retrying after fixing the cause (a routing rule, a missing SOP, an adapter bug) succeeds;
a retry that fails again keeps the letter with the new reason.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.base import ChannelEvent
from engine.clock import Clock
from engine.errors import CareflowError
from engine.intake.pipeline import (
    IntakeLibrary,
    IntakeResult,
    IntakeStatus,
    ingest,
    ingest_payload,
    process_inbox,
)
from engine.store.models import DeadLetterRow, InboxRow

__all__ = ["DeadLetter", "get_dead_letter", "list_dead_letters", "retry_dead_letter"]

Parser = Callable[[Mapping[str, Any], datetime], ChannelEvent]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: int
    source: str
    reason: str
    payload: Any
    received_at: datetime
    retried_at: datetime | None


def _view(row: DeadLetterRow) -> DeadLetter:
    return DeadLetter(row.id, row.source, row.reason, row.payload, row.received_at, row.retried_at)


def list_dead_letters(
    session: Session, *, include_retried: bool = False, limit: int = 100
) -> list[DeadLetter]:
    q = select(DeadLetterRow).order_by(DeadLetterRow.id.desc()).limit(limit)
    if not include_retried:
        q = q.where(DeadLetterRow.retried_at.is_(None))
    return [_view(r) for r in session.scalars(q)]


def get_dead_letter(session: Session, dead_letter_id: int) -> DeadLetter:
    row = session.get(DeadLetterRow, dead_letter_id)
    if row is None:
        raise CareflowError(f"no dead letter with id {dead_letter_id}")
    return _view(row)


def retry_dead_letter(
    session: Session,
    dead_letter_id: int,
    *,
    library: IntakeLibrary | None,
    clock: Clock,
    parsers: Mapping[str, Parser] | None = None,
) -> IntakeResult:
    """Re-ingest a dead letter. On success it is marked retried; on failure it keeps the
    new reason (no second letter is written).

    Raises:
        CareflowError: no such dead letter, already retried, or no way to retry it.
    """
    row = session.get(DeadLetterRow, dead_letter_id)
    if row is None:
        raise CareflowError(f"no dead letter with id {dead_letter_id}")
    if row.retried_at is not None:
        raise CareflowError(
            f"dead letter {dead_letter_id} was already retried at {row.retried_at.isoformat()}"
        )
    payload = row.payload if isinstance(row.payload, dict) else {}
    result: IntakeResult
    with session.begin_nested() as nested:
        if "inbox_id" in payload:
            inbox = session.get(InboxRow, payload["inbox_id"])
            if inbox is None:
                raise CareflowError(
                    f"dead letter {dead_letter_id}: inbox row {payload['inbox_id']} is gone"
                )
            inbox.status = "received"
            session.flush()
            result = process_inbox(session, inbox.id, library=library, clock=clock)
        elif "endpoint" in payload:
            parser = (parsers or {}).get(str(payload["endpoint"]))
            if parser is None:
                raise CareflowError(
                    f"dead letter {dead_letter_id}: no adapter for endpoint {payload['endpoint']!r}"
                )
            try:
                event = parser(payload.get("body") or {}, clock.now())
            except (CareflowError, ValueError, KeyError, TypeError) as exc:
                result = IntakeResult(
                    IntakeStatus.DEAD_LETTER, reason=f"{type(exc).__name__}: {exc}"
                )
            else:
                result = ingest(session, event, library=library, clock=clock)
        elif "event" in payload:
            result = ingest_payload(
                session, payload["event"], source=row.source, library=library, clock=clock
            )
        else:
            raise CareflowError(f"dead letter {dead_letter_id} has no retryable payload")
        if result.status is IntakeStatus.DEAD_LETTER:
            nested.rollback()  # drop the new letter (and any status change); keep this one
    if result.status is IntakeStatus.DEAD_LETTER:
        row.reason = f"{result.reason} (retry at {clock.now().isoformat()})"
    else:
        row.retried_at = clock.now()
    session.flush()
    return result
