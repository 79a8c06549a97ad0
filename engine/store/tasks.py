"""Human tasks: claim and complete with optimistic locking, escalate, queue queries.

Two agents completing the same task: each loads the task and updates it through the ORM,
whose ``version_id_col`` turns the update into ``... WHERE id = ? AND version = ?``.
Exactly one update matches; the other raises ``StaleDataError`` (or, when the first one
has already committed, finds the task completed) and gets ``TaskConflict`` naming the
task and who won. The winner's transaction also queues the ``TaskCompleted`` input of
the case, so the completion and the event are one atomic fact.

Four eyes: ``propose_task`` records the first agent's outcome on the row (status
``proposed``, no case input yet); ``confirm_proposal`` completes the task with it and
queues the ``TaskCompleted`` input, ``reject_proposal`` opens the task again. Both are
versioned updates like completion: of two concurrent confirmations (or a confirmation
and a rejection) exactly one wins.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from engine.errors import RunError, TaskConflict
from engine.store.cases import post_event, post_events
from engine.store.bulk import Bulk, bulk_for
from engine.store.models import HumanTaskRow, TaskStatus

__all__ = ["TaskCompletion", "cancel_task", "check_proposed", "claim_task", "complete_task",
           "complete_tasks", "confirm_proposal", "get_task", "list_tasks", "mark_escalated",
           "propose_task", "reject_proposal"]

ACTIVE = (TaskStatus.OPEN, TaskStatus.CLAIMED)
#: not finished: the queue (``list_tasks(status="open")``) shows these
UNFINISHED = (*ACTIVE, TaskStatus.PROPOSED)
TASKS = HumanTaskRow.__table__


def get_task(session: Session, task_id: str) -> HumanTaskRow:
    """The task row ``task_id``.

    Raises:
        RunError: no such task.
    """
    row = session.get(HumanTaskRow, task_id)
    if row is None:
        raise RunError(f"no such task {task_id!r}")
    return row


def _column(row: Any, name: str) -> Any:
    """``row.name``, or None when ``row`` (a bulk path's partial row) does not hold it."""
    try:
        return getattr(row, name)
    except (AttributeError, KeyError):  # sqlalchemy's NoSuchColumnError is a KeyError
        return None


def _conflict(row: HumanTaskRow, agent: str, doing: str) -> TaskConflict:
    proposer = _column(row, "proposed_by") if row.status == TaskStatus.PROPOSED else None
    who = proposer or row.completed_by or row.claimed_by or row.assignee
    confirmer = _column(row, "confirmed_by")
    if who and confirmer:
        who += f", confirmed by {confirmer}"
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


@dataclass(frozen=True, slots=True)
class TaskCompletion:
    """One completion for ``complete_tasks`` (the arguments of ``complete_task``)."""

    task_id: str
    outcome: str
    fields: Mapping[str, Any]
    agent: str
    knowledge: Mapping[str, Any] | None
    event_json: Any  # codec JSON of the TaskCompleted input


#: a bulk completion row: the SET values, then the WHERE values (id, version as read)
_COMPLETE_COLUMNS = ("outcome", "fields", "knowledge", "completed_at", "completed_by", "assignee",
                     "version", "id", "version")


def _complete_sql(bulk: Bulk) -> str:
    """The versioned exactly-one-winner update of ``complete_tasks``."""
    sets = ", ".join(f"{c} = {bulk.mark(c)}" for c in _COMPLETE_COLUMNS[:7])
    active = ", ".join(f"'{s}'" for s in ACTIVE)
    return (f"UPDATE human_tasks SET status = '{TaskStatus.COMPLETED}', {sets} "
            f"WHERE id = {bulk.mark('id')} AND version = {bulk.mark('version')} "
            f"AND status IN ({active})")


_TASKS_TO_COMPLETE = select(
    TASKS.c.id, TASKS.c.case_id, TASKS.c.node, TASKS.c.status, TASKS.c.assignee,
    TASKS.c.claimed_by, TASKS.c.completed_by, TASKS.c.version,
).where(TASKS.c.id.in_(bindparam("ids", expanding=True)))


def complete_tasks(session: Session, items: Sequence[TaskCompletion], *,
                   now: datetime) -> list[str]:
    """Complete many tasks and queue their ``TaskCompleted`` inputs in a few statements.

    The same checks and the same exactly-one-winner rule as ``complete_task``, batched:
    one SELECT per 500 tasks, one versioned ``UPDATE ... WHERE id = ? AND version = ?``
    executed for all of them, one insert of the pending inputs. Either every completion
    applies or none does: any refusal raises before anything is written, and a
    concurrent change found by the versioned update raises ``TaskConflict`` (the caller's
    transaction then rolls back). Returns the case ids, in ``items`` order.

    Raises:
        RunError: no such task.
        TaskConflict: a task is no longer open, is claimed by another agent, appears twice,
            or was changed concurrently.
    """
    if not items:
        return []
    ids = [i.task_id for i in items]
    rows: dict[str, Any] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        for r in session.execute(_TASKS_TO_COMPLETE, {"ids": chunk}):
            rows[r.id] = r
    params, events, seen = [], [], set()
    for item in items:
        row = rows.get(item.task_id)
        if row is None:
            raise RunError(f"no such task {item.task_id!r}")
        if item.task_id in seen:
            raise TaskConflict(f"task {item.task_id} is completed twice in one batch",
                               case_id=row.case_id, node_id=row.node)
        seen.add(item.task_id)
        if row.status not in ACTIVE:
            raise _conflict(row, item.agent, "completed")
        if row.status == TaskStatus.CLAIMED and row.assignee not in (None, item.agent):
            raise TaskConflict(f"task {item.task_id} is claimed by {row.assignee}, not {item.agent}",
                               case_id=row.case_id, node_id=row.node)
        params.append((item.outcome, dict(item.fields),
                       dict(item.knowledge) if item.knowledge else None, now, item.agent,
                       row.assignee or item.agent, row.version + 1, item.task_id, row.version))
        events.append((row.case_id, "TaskCompleted", item.event_json, item.agent))
    conn = session.connection()
    bulk = bulk_for(TASKS, _COMPLETE_COLUMNS, conn.dialect.name)
    result = conn.exec_driver_sql(_complete_sql(bulk), [bulk.row(p) for p in params])
    if result.rowcount != len(params):
        lost = _lost_updates(session, params)
        raise TaskConflict(f"task(s) {', '.join(lost)} were completed by another agent at the "
                           f"same time; none of this batch's {len(params)} completions was "
                           f"applied")
    post_events(session, events, now=now)
    return [e[0] for e in events]


def _lost_updates(session: Session, params: list[tuple[Any, ...]]) -> list[str]:
    """The task ids of ``params`` whose row is not what their update would have written
    (all of them when that cannot be told apart, e.g. the same agent won elsewhere)."""
    want = {p[7]: (p[6], p[4]) for p in params}
    got: dict[str, tuple[int, str | None]] = {}
    ids = list(want)
    for start in range(0, len(ids), 500):
        for r in session.execute(select(TASKS.c.id, TASKS.c.version, TASKS.c.completed_by)
                                 .where(TASKS.c.id.in_(ids[start:start + 500]))):
            got[r.id] = (r.version, r.completed_by)
    return [tid for tid, w in want.items() if got.get(tid) != w] or ids


def mark_escalated(session: Session, task_id: str, agent: str, event_json: Any, *,
                   now: datetime, kind: str = "TaskEscalated") -> HumanTaskRow:
    """Queue a by-hand escalation (or, with ``kind="TaskHandedBack"``, hand-back) of
    ``task_id``; the interpreter cancels the task and moves the case."""
    row = get_task(session, task_id)
    if row.status not in ACTIVE:
        raise _conflict(row, agent, "escalated" if kind == "TaskEscalated" else "handed back")
    post_event(session, row.case_id, kind, event_json, now=now, actor=agent)
    return row


def _flush(session: Session, task_id: str, agent: str, doing: str, case_id: str,
           node: str) -> None:
    try:
        session.flush()
    except StaleDataError as exc:
        raise TaskConflict(f"task {task_id} was changed by another agent at the same time; "
                           f"{agent}'s {doing} was not applied",
                           case_id=case_id, node_id=node) from exc


def propose_task(
    session: Session,
    task_id: str,
    *,
    outcome: str,
    fields: Mapping[str, Any],
    agent: str,
    knowledge: Mapping[str, Any] | None,
    now: datetime,
) -> HumanTaskRow:
    """Record ``agent``'s outcome as the proposal of a four-eyes task (-> ``proposed``).

    Nothing reaches the case until a second agent confirms (``confirm_proposal``).

    Raises:
        TaskConflict: the task is no longer open, is claimed by another agent, or was
            changed concurrently.
    """
    row = get_task(session, task_id)
    if row.status not in ACTIVE:
        raise _conflict(row, agent, "completed")
    if row.status == TaskStatus.CLAIMED and row.assignee not in (None, agent):
        raise TaskConflict(f"task {task_id} is claimed by {row.assignee}, not {agent}",
                           case_id=row.case_id, node_id=row.node)
    case_id, node = row.case_id, row.node
    row.status, row.assignee = TaskStatus.PROPOSED, agent
    row.proposed_outcome, row.proposed_fields = outcome, dict(fields)
    row.proposed_knowledge = dict(knowledge) if knowledge else None
    row.proposed_by, row.proposed_at = agent, now
    _flush(session, task_id, agent, "proposal", case_id, node)
    return row


def check_proposed(row: HumanTaskRow, agent: str, doing: str) -> None:
    """Refuse to confirm or reject (``doing``) a task that holds no proposal (any more).

    Raises:
        TaskConflict: the task is open or claimed (no proposal), or finished.
    """
    if row.status == TaskStatus.PROPOSED:
        return
    if row.status in ACTIVE:
        raise TaskConflict(f"task {row.id} cannot be {doing} by {agent}: it is {row.status} "
                           "and holds no proposed outcome"
                           + (f" (the last one was rejected by {row.rejection.get('by')})"
                              if row.rejection else ""),
                           case_id=row.case_id, node_id=row.node)
    raise _conflict(row, agent, doing)


def confirm_proposal(session: Session, task_id: str, *, agent: str, event_json: Any,
                     now: datetime) -> HumanTaskRow:
    """Complete a proposed task with its proposal and queue its ``TaskCompleted`` input
    (``event_json``: codec JSON, ``confirmed_by`` = ``agent``). Who may confirm is the
    caller's check (engine.runtime.permissions).

    Raises:
        TaskConflict: the task holds no proposal (any more): confirmed or rejected by
            someone else first, also concurrently.
    """
    row = get_task(session, task_id)
    check_proposed(row, agent, "confirmed")
    case_id, node = row.case_id, row.node
    row.status, row.outcome = TaskStatus.COMPLETED, row.proposed_outcome
    row.fields, row.knowledge = row.proposed_fields, row.proposed_knowledge
    row.completed_at, row.completed_by, row.confirmed_by = now, row.proposed_by, agent
    _flush(session, task_id, agent, "confirmation", case_id, node)
    post_event(session, case_id, "TaskCompleted", event_json, now=now, actor=agent, check=False)
    return row


def reject_proposal(session: Session, task_id: str, *, agent: str, reason: str,
                    now: datetime) -> HumanTaskRow:
    """Send a proposed task back to ``open``: the proposal is cleared, the rejection kept
    (``{outcome, proposed_by, by, at, reason}``); the case does not move.

    Raises:
        TaskConflict: the task holds no proposal (any more), also concurrently.
    """
    row = get_task(session, task_id)
    check_proposed(row, agent, "rejected")
    case_id, node = row.case_id, row.node
    row.rejection = {"outcome": row.proposed_outcome, "proposed_by": row.proposed_by,
                     "by": agent, "at": now.isoformat(), "reason": reason}
    row.status, row.assignee = TaskStatus.OPEN, None
    row.proposed_outcome = row.proposed_fields = row.proposed_knowledge = None
    row.proposed_by, row.proposed_at = None, None
    _flush(session, task_id, agent, "rejection", case_id, node)
    return row


def cancel_task(session: Session, task_id: str, reason: str) -> HumanTaskRow:
    """Mark an unfinished task ``cancelled`` with ``reason`` (the case no longer waits for
    it; the interpreter already dropped it)."""
    row = get_task(session, task_id)
    if row.status in UNFINISHED:
        row.status, row.cancel_reason = TaskStatus.CANCELLED, reason
        _flush(session, task_id, "careflow", "cancellation", row.case_id, row.node)
    return row


def list_tasks(
    session: Session, *, level: str | None = None, status: str | None = "open",
    case_id: str | None = None, limit: int = 100,
) -> list[HumanTaskRow]:
    """A task queue: by level and status, oldest due first. ``status="open"`` is every
    unfinished task: open, claimed, and proposed (waiting for a second agent)."""
    stmt = select(HumanTaskRow)
    if level:
        stmt = stmt.where(HumanTaskRow.level == level)
    if status == "open":
        stmt = stmt.where(HumanTaskRow.status.in_(UNFINISHED))
    elif status:
        stmt = stmt.where(HumanTaskRow.status == status)
    if case_id:
        stmt = stmt.where(HumanTaskRow.case_id == case_id)
    stmt = stmt.order_by(HumanTaskRow.due_at.is_(None), HumanTaskRow.due_at,
                         HumanTaskRow.created_at, HumanTaskRow.id).limit(limit)
    return list(session.scalars(stmt))

