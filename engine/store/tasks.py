"""Human tasks: claim and complete with optimistic locking, escalate, queue queries.

Two agents completing the same task: each loads the task and updates it through the ORM,
whose ``version_id_col`` turns the update into ``... WHERE id = ? AND version = ?``.
Exactly one update matches; the other raises ``StaleDataError`` (or, when the first one
has already committed, finds the task completed) and gets ``TaskConflict`` naming the
task and who won. The winner's transaction also queues the ``TaskCompleted`` input of
the case, so the completion and the event are one atomic fact.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from engine.errors import RunError, TaskConflict
from engine.store.cases import post_event
from engine.store.models import HumanTaskRow, TaskStatus

__all__ = ["claim_task", "complete_task", "get_task", "list_tasks", "mark_escalated"]

ACTIVE = (TaskStatus.OPEN, TaskStatus.CLAIMED)


def get_task(session: Session, task_id: str) -> HumanTaskRow:
    """The task row ``task_id``.

    Raises:
        RunError: no such task.
    """
    row = session.get(HumanTaskRow, task_id)
    if row is None:
        raise RunError(f"no such task {task_id!r}")
    return row


def _conflict(row: HumanTaskRow, agent: str, doing: str) -> TaskConflict:
    who = row.completed_by or row.claimed_by or row.assignee
    return TaskConflict(
        f"task {row.id} cannot be {doing} by {agent}: it is already {row.status}"
        + (f" by {who}" if who else ""),
        case_id=row.case_id, node_id=row.node,
    )


def claim_task(session: Session, task_id: str, agent: str, *, now: datetime) -> HumanTaskRow:
    """Assign ``task_id`` to ``agent`` (open -> claimed).

    Raises:
        TaskConflict: someone else claimed or completed it first.
    """
    row = get_task(session, task_id)
    if row.status not in ACTIVE or (row.status == TaskStatus.CLAIMED and row.assignee != agent):
        raise _conflict(row, agent, "claimed")
    case_id, node = row.case_id, row.node  # readable after a failed flush expires the row
    row.status, row.assignee = TaskStatus.CLAIMED, agent
    row.claimed_at, row.claimed_by = now, agent
    try:
        session.flush()
    except StaleDataError as exc:
        raise TaskConflict(f"task {task_id} was changed by someone else while {agent} claimed it",
                           case_id=case_id, node_id=node) from exc
    return row


def complete_task(
    session: Session,
    task_id: str,
    *,
    outcome: str,
    fields: Mapping[str, Any],
    agent: str,
    knowledge: Mapping[str, Any] | None,
    event_json: Any,
    now: datetime,
) -> HumanTaskRow:
    """Complete ``task_id`` and queue its ``TaskCompleted`` input (``event_json``, codec JSON).

    Raises:
        TaskConflict: the task is no longer open, is claimed by another agent, or another
            agent completed it concurrently.
    """
    row = get_task(session, task_id)
    if row.status not in ACTIVE:
        raise _conflict(row, agent, "completed")
    if row.status == TaskStatus.CLAIMED and row.assignee not in (None, agent):
        raise TaskConflict(f"task {task_id} is claimed by {row.assignee}, not {agent}",
                           case_id=row.case_id, node_id=row.node)
    case_id, node = row.case_id, row.node  # readable after a failed flush expires the row
    row.status, row.outcome = TaskStatus.COMPLETED, outcome
    row.fields, row.knowledge = dict(fields), dict(knowledge) if knowledge else None
    row.completed_at, row.completed_by = now, agent
    row.assignee = row.assignee or agent
    try:
        session.flush()
    except StaleDataError as exc:
        raise TaskConflict(f"task {task_id} was completed by another agent at the same time; "
                           f"{agent}'s completion was not applied",
                           case_id=case_id, node_id=node) from exc
    post_event(session, case_id, "TaskCompleted", event_json, now=now, actor=agent, check=False)
    return row


def mark_escalated(session: Session, task_id: str, agent: str, event_json: Any, *,
                   now: datetime) -> HumanTaskRow:
    """Queue a by-hand escalation of ``task_id``; the interpreter cancels and moves the task."""
    row = get_task(session, task_id)
    if row.status not in ACTIVE:
        raise _conflict(row, agent, "escalated")
    post_event(session, row.case_id, "TaskEscalated", event_json, now=now, actor=agent)
    return row


def list_tasks(
    session: Session, *, level: str | None = None, status: str | None = "open",
    case_id: str | None = None, limit: int = 100,
) -> list[HumanTaskRow]:
    """A task queue: by level and status, oldest due first."""
    stmt = select(HumanTaskRow)
    if level:
        stmt = stmt.where(HumanTaskRow.level == level)
    if status == "open":
        stmt = stmt.where(HumanTaskRow.status.in_(ACTIVE))
    elif status:
        stmt = stmt.where(HumanTaskRow.status == status)
    if case_id:
        stmt = stmt.where(HumanTaskRow.case_id == case_id)
    stmt = stmt.order_by(HumanTaskRow.due_at.is_(None), HumanTaskRow.due_at,
                         HumanTaskRow.created_at, HumanTaskRow.id).limit(limit)
    return list(session.scalars(stmt))

