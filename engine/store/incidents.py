"""Incidents: automated steps that failed for good, listed and retried by an operator.

A retry queues an ``IncidentRetried`` input for the case (the interpreter runs the failed
node again: the failed action is re-delivered, completed steps are not re-run) and marks
the incident ``retried``; if the action fails again, a new incident is raised.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import RunError
from engine.store.cases import post_event
from engine.store.models import IncidentRow

__all__ = ["list_incidents", "retry_incident"]


def list_incidents(session: Session, *, status: str | None = "open",
                   case_id: str | None = None, limit: int = 100) -> list[IncidentRow]:
    """Incidents, newest first, filtered by status and case."""
    stmt = select(IncidentRow)
    if status:
        stmt = stmt.where(IncidentRow.status == status)
    if case_id:
        stmt = stmt.where(IncidentRow.case_id == case_id)
    return list(session.scalars(stmt.order_by(IncidentRow.id.desc()).limit(limit)))


def retry_incident(session: Session, incident_id: int, *, actor: str, event_json: Any,
                   now: datetime) -> IncidentRow:
    """Queue the retry of incident ``incident_id`` (``event_json``: codec IncidentRetried).

    Raises:
        RunError: no such incident, or it is not open.
    """
    row = session.get(IncidentRow, incident_id)
    if row is None:
        raise RunError(f"no such incident {incident_id}")
    if row.status != "open":
        raise RunError(f"incident {incident_id} is {row.status}, not open", case_id=row.case_id,
                       node_id=row.node)
    row.status, row.resolved_at, row.resolved_by = "retried", now, actor
    session.flush()
    post_event(session, row.case_id, "IncidentRetried", event_json, now=now, actor=actor)
    return row
