"""Write the result of advancing cases -- state, event log, audit, tasks, timers, outbox,
incidents, sub-cases, case end -- for a whole batch in ONE transaction.

The advance loop (engine.runtime.advance) computes a ``CaseAdvance`` per case with the pure
interpreter; ``commit_advances`` turns the commands into rows with bulk (executemany)
statements, so a batch of hundreds of cases costs one commit. Fencing: a case is written
only if this worker still holds its lease and its ``version`` is the one it claimed; a case
whose lease was taken over is skipped (its inputs stay pending for the new owner).

Rows are written with SQLAlchemy Core statements that bump ``cases.version`` explicitly
(``version = version + 1 WHERE version = :expected``): the same optimistic check the ORM's
``version_id_col`` does, at bulk speed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, bindparam, exists, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from engine.interpreter import types as t
from engine.store.audit import canonical_json, chain_hash, entry_fields
from engine.store.models import (
    AuditRow,
    CaseEventRow,
    CaseRow,
    EventStatus,
    HumanTaskRow,
    IncidentRow,
    OutboxRow,
    TaskStatus,
    TimerRow,
    TimerStatus,
)

__all__ = ["AppliedEvent", "CaseAdvance", "CommitResult", "commit_advances", "UNROUTED_CHANNEL"]

#: outbox channel of a message with no channel of its own and a case without one
UNROUTED_CHANNEL = "unrouted"

CASES = CaseRow.__table__
EVENTS = CaseEventRow.__table__
AUDIT = AuditRow.__table__
TASKS = HumanTaskRow.__table__
TIMERS = TimerRow.__table__
OUTBOX = OutboxRow.__table__
INCIDENTS = IncidentRow.__table__


@dataclass(frozen=True, slots=True)
class AppliedEvent:
    """One input the interpreter consumed (or refused) while advancing a case.

    Attributes:
        pending_id: the ``case_events.id`` of a pending row; None for an event the runtime
            produced itself (an action's result), which gets a new row.
        seq: the case ``seq`` after applying it; None when it was rejected.
        kind: the event type name.
        event: the codec JSON of the event.
        actor: who caused it.
        error: why it was rejected.
    """

    pending_id: int | None
    seq: int | None
    kind: str
    event: Any
    actor: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class CaseAdvance:
    """Everything one case's advance produced, ready to be written."""

    case_id: str
    expected_version: int
    state: t.CaseState
    state_json: Any
    events: tuple[AppliedEvent, ...]
    commands: tuple[Any, ...]  # interpreter commands, in emission order
    event_seq_of_command: tuple[int, ...]  # the event seq each command came from
    audit_seq: int  # last audit seq of the case before this advance
    audit_hash: str
    sub_cases: tuple[Mapping[str, Any], ...] = ()  # new case rows (see engine.store.cases)
    sub_case_events: tuple[Mapping[str, Any], ...] = ()  # their pending CaseStarted rows
    last_run_action: Mapping[str, Any] = field(default_factory=dict)  # action id -> command json


@dataclass(frozen=True, slots=True)
class CommitResult:
    committed: tuple[str, ...]
    stale: tuple[str, ...]
    counts: Mapping[str, int]


def _insert(session: Session, table: Any) -> Any:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    return table.insert()


def _fence(session: Session, advances: Sequence[CaseAdvance], worker: str) -> set[str]:
    """Ids of the cases this worker may still write (lease held, version unchanged)."""
    ids = [a.case_id for a in advances]
    stmt = select(CASES.c.id, CASES.c.version).where(
        CASES.c.id.in_(ids), CASES.c.lease_owner == worker
    )
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    current = {row[0]: row[1] for row in session.execute(stmt)}
    return {a.case_id for a in advances if current.get(a.case_id) == a.expected_version}


def _json(value: Any) -> Any:
    """``value`` as plain JSON data (what a JSON column gives back on read)."""
    return json.loads(canonical_json(value))


class _Rows:
    """The rows of one batch, collected per table before the bulk statements run."""

    def __init__(self, now: datetime, dialect: str) -> None:
        self.now = now
        self.dialect = dialect
        #: ``now`` as the driver takes it for the raw audit insert (SQLite: naive UTC text,
        #: the format SQLAlchemy's DateTime stores)
        self.now_bind: Any = (now.astimezone(UTC).replace(tzinfo=None)
                              .strftime("%Y-%m-%d %H:%M:%S.%f") if dialect == "sqlite" else now)
        self.event_updates: list[dict[str, Any]] = []
        self.event_inserts: list[dict[str, Any]] = []
        self.audit: list[tuple[Any, ...]] = []
        self.task_inserts: dict[str, dict[str, Any]] = {}
        self.task_cancels: list[dict[str, Any]] = []
        self.timer_inserts: dict[str, dict[str, Any]] = {}
        self.timer_cancels: list[dict[str, Any]] = []
        self.outbox: list[dict[str, Any]] = []
        self.incidents: list[dict[str, Any]] = []
        self.case_updates: list[dict[str, Any]] = []
        self.new_cases: list[dict[str, Any]] = []
        self.ended: list[str] = []
        self.parent_events: list[dict[str, Any]] = []
        self.parents: set[str] = set()


def _collect_events(rows: _Rows, adv: CaseAdvance) -> None:
    for ev in adv.events:
        if ev.seq is not None:
            status = EventStatus.APPLIED
        else:
            status = EventStatus.REJECTED if ev.error else EventStatus.IGNORED
        if ev.pending_id is not None:
            rows.event_updates.append({"b_id": ev.pending_id, "b_seq": ev.seq, "b_status": status,
                                       "b_error": ev.error, "b_at": rows.now})
        else:
            rows.event_inserts.append({
                "case_id": adv.case_id, "seq": ev.seq, "kind": ev.kind, "event": ev.event,
                "status": status, "error": ev.error, "actor": ev.actor,
                "recorded_at": rows.now, "applied_at": rows.now,
            })


def _collect_audit(rows: _Rows, adv: CaseAdvance, entries: Iterable[tuple[t.Audit, int]]) -> tuple[int, str]:
    seq, prev = adv.audit_seq, adv.audit_hash
    st = adv.state
    for audit, event_seq in entries:
        seq += 1
        text = canonical_json(audit.detail)
        entry = entry_fields(adv.case_id, seq, rows.now, audit.actor, audit.kind, audit.node,
                             st.sop_hash, None)
        digest = chain_hash(prev, entry, text)
        rows.audit.append((adv.case_id, seq, event_seq, rows.now_bind, audit.actor, audit.kind,
                           audit.node, st.sop_version, st.sop_hash, text, prev, digest))
        prev = digest
    return seq, prev


def _collect_command(rows: _Rows, adv: CaseAdvance, cmd: Any, codec: Any) -> None:  # noqa: C901
    now, case_id = rows.now, adv.case_id
    if isinstance(cmd, t.CreateTask):
        rows.task_inserts[cmd.task_id] = {
            "id": cmd.task_id, "case_id": case_id, "node": cmd.node, "level": cmd.level,
            "title": cmd.title, "role": cmd.role, "skills": list(cmd.skills),
            "status": TaskStatus.OPEN, "outcomes": list(cmd.outcomes), "due_at": cmd.due_at,
            "version": 1, "created_at": now,
        }
    elif isinstance(cmd, t.CancelTask):
        if cmd.task_id in rows.task_inserts:
            rows.task_inserts[cmd.task_id].update(status=TaskStatus.CANCELLED)
        else:
            rows.task_cancels.append({"b_id": cmd.task_id, "b_reason": cmd.reason})
    elif isinstance(cmd, t.ScheduleTimer):
        rows.timer_inserts[cmd.timer_id] = {
            "id": cmd.timer_id, "case_id": case_id, "kind": cmd.kind, "due_at": cmd.due_at,
            "node": cmd.node, "payload": _json(cmd.payload), "status": TimerStatus.PENDING,
            "created_at": now,
        }
    elif isinstance(cmd, t.CancelTimer):
        if cmd.timer_id in rows.timer_inserts:
            rows.timer_inserts[cmd.timer_id].update(status=TimerStatus.CANCELLED)
        else:
            rows.timer_cancels.append({"b_id": cmd.timer_id})
    elif isinstance(cmd, t.SendMessage):
        payload = _json(codec.command_to_json(cmd))
        rows.outbox.append({
            "id": cmd.message_id, "case_id": case_id,
            "idempotency_key": cmd.idempotency_key or cmd.message_id,
            "channel": cmd.channel or adv.state.channel or UNROUTED_CHANNEL,
            "payload": payload, "status": "pending", "attempts": 0,
            "next_attempt_at": now, "created_at": now,
        })
    elif isinstance(cmd, t.RaiseIncident):
        rows.incidents.append({
            "case_id": case_id, "ref": cmd.incident_id, "node": cmd.node,
            "action_id": cmd.action_id, "error": cmd.error, "attempt": cmd.attempt,
            "status": "open", "created_at": now,
        })
    elif isinstance(cmd, t.CaseEnded):
        rows.ended.append(case_id)
        parent = adv.state.parent
        if parent is not None:
            ended = t.SubCaseEnded(call_id=parent[1], outcome=cmd.outcome, status=cmd.status,
                                   data=adv.state.data)
            rows.parent_events.append({
                "case_id": parent[0], "seq": None, "kind": "SubCaseEnded",
                "event": _json(codec.event_to_json(ended)), "status": EventStatus.PENDING,
                "actor": "system", "recorded_at": now,
            })
            rows.parents.add(parent[0])


def _collect_case(rows: _Rows, adv: CaseAdvance, codec: Any) -> None:
    _collect_events(rows, adv)
    audits = [(c, s) for c, s in zip(adv.commands, adv.event_seq_of_command, strict=True)
              if isinstance(c, t.Audit)]
    audit_seq, audit_hash = _collect_audit(rows, adv, audits)
    for cmd in adv.commands:
        _collect_command(rows, adv, cmd, codec)
    rows.new_cases.extend(adv.sub_cases)
    rows.event_inserts.extend(adv.sub_case_events)
    st = adv.state
    rows.case_updates.append({
        "b_id": adv.case_id, "b_version": adv.expected_version, "b_state": adv.state_json,
        "b_seq": st.seq, "b_status": str(st.status), "b_level": st.level,
        "b_priority": st.priority, "b_tier": st.tier, "b_channel": st.channel,
        "b_customer": st.customer_id, "b_outcome": st.outcome, "b_now": rows.now,
        "b_ended": rows.now if st.status.ended else None, "b_audit_seq": audit_seq,
        "b_audit_hash": audit_hash,
    })


def _write(session: Session, rows: _Rows) -> None:  # noqa: C901
    conn = session.connection()
    if rows.new_cases:
        conn.execute(CASES.insert(), rows.new_cases)
    if rows.event_updates:
        conn.execute(
            update(EVENTS).where(EVENTS.c.id == bindparam("b_id")).values(
                seq=bindparam("b_seq"), status=bindparam("b_status"),
                error=bindparam("b_error"), applied_at=bindparam("b_at")),
            rows.event_updates)
    inserts = rows.event_inserts + rows.parent_events
    if inserts:
        conn.execute(EVENTS.insert(), inserts)
    if rows.audit:
        _insert_audit(session, rows)
    if rows.task_inserts:
        conn.execute(TASKS.insert(), list(rows.task_inserts.values()))
    if rows.task_cancels:
        conn.execute(
            update(TASKS).where(and_(TASKS.c.id == bindparam("b_id"),
                                     TASKS.c.status.in_([TaskStatus.OPEN, TaskStatus.CLAIMED])))
            .values(status=TaskStatus.CANCELLED, cancel_reason=bindparam("b_reason"),
                    version=TASKS.c.version + 1),
            rows.task_cancels)
    if rows.timer_inserts:
        conn.execute(TIMERS.insert(), list(rows.timer_inserts.values()))
    if rows.timer_cancels:
        conn.execute(
            update(TIMERS).where(and_(TIMERS.c.id == bindparam("b_id"),
                                      TIMERS.c.status == TimerStatus.PENDING))
            .values(status=TimerStatus.CANCELLED),
            rows.timer_cancels)
    if rows.outbox:
        conn.execute(_insert(session, OUTBOX).on_conflict_do_nothing(
            index_elements=["idempotency_key"]), rows.outbox)
    if rows.incidents:
        conn.execute(INCIDENTS.insert(), rows.incidents)
    if rows.ended:
        conn.execute(update(TIMERS).where(and_(TIMERS.c.case_id.in_(rows.ended),
                                               TIMERS.c.status == TimerStatus.PENDING))
                     .values(status=TimerStatus.CANCELLED))
        conn.execute(update(TASKS).where(and_(
            TASKS.c.case_id.in_(rows.ended),
            TASKS.c.status.in_([TaskStatus.OPEN, TaskStatus.CLAIMED])))
            .values(status=TaskStatus.CANCELLED, cancel_reason="case ended",
                    version=TASKS.c.version + 1))
    _write_cases(session, rows)


_AUDIT_COLUMNS = ("case_id", "seq", "event_seq", "at", "actor", "kind", "node", "sop_version",
                  "sop_hash", "detail", "prev_hash", "hash")


def _insert_audit(session: Session, rows: _Rows) -> None:
    """The audit rows through the driver's executemany: the bulk of a batch's rows, with
    their detail already canonical JSON text (hashed as such), so no second encoding."""
    conn = session.connection()
    if rows.dialect == "sqlite":
        marks = ", ".join("?" for _ in _AUDIT_COLUMNS)
    elif conn.dialect.paramstyle in ("format", "pyformat"):
        marks = ", ".join("%s::json" if c == "detail" else "%s" for c in _AUDIT_COLUMNS)
    else:  # another driver: let SQLAlchemy bind it
        conn.execute(AUDIT.insert(), [dict(zip(_AUDIT_COLUMNS, r[:9] + (json.loads(r[9]),) + r[10:],
                                               strict=True)) for r in rows.audit])
        return
    sql = f"INSERT INTO audit_log ({', '.join(_AUDIT_COLUMNS)}) VALUES ({marks})"
    conn.exec_driver_sql(sql, rows.audit)


def _write_cases(session: Session, rows: _Rows) -> None:
    conn = session.connection()
    pending = exists().where(and_(EVENTS.c.case_id == CASES.c.id,
                                  EVENTS.c.status == EventStatus.PENDING))
    stmt = (
        update(CASES)
        .where(and_(CASES.c.id == bindparam("b_id"), CASES.c.version == bindparam("b_version")))
        .values(
            state=bindparam("b_state"), seq=bindparam("b_seq"), status=bindparam("b_status"),
            level=bindparam("b_level"), priority=bindparam("b_priority"),
            tier=bindparam("b_tier"), channel=bindparam("b_channel"),
            customer_id=bindparam("b_customer"), outcome=bindparam("b_outcome"),
            version=CASES.c.version + 1, lease_owner=None, lease_until=None,
            runnable=pending, next_run_at=bindparam("b_now"), updated_at=bindparam("b_now"),
            ended_at=bindparam("b_ended"), audit_seq=bindparam("b_audit_seq"),
            audit_hash=bindparam("b_audit_hash"),
        )
    )
    result = conn.execute(stmt, rows.case_updates)
    if result.rowcount != len(rows.case_updates):  # the fence makes this unreachable
        from engine.errors import StoreError

        raise StoreError(f"case version changed under the lease ({result.rowcount} of "
                         f"{len(rows.case_updates)} cases written); batch rolled back")
    if rows.parents:
        conn.execute(update(CASES).where(CASES.c.id.in_(rows.parents))
                     .values(runnable=True, next_run_at=rows.now))


def commit_advances(
    session: Session, advances: Sequence[CaseAdvance], worker: str, now: datetime, codec: Any
) -> CommitResult:
    """Write every case of ``advances`` this worker still holds, in the session's transaction.

    The caller commits (one transaction per batch). Cases whose lease was lost are
    skipped and reported in ``stale``.
    """
    if not advances:
        return CommitResult((), (), {})
    allowed = _fence(session, advances, worker)
    rows = _Rows(now, session.get_bind().dialect.name)
    committed: list[str] = []
    for adv in advances:
        if adv.case_id in allowed:
            _collect_case(rows, adv, codec)
            committed.append(adv.case_id)
    if committed:
        _write(session, rows)
    stale = tuple(a.case_id for a in advances if a.case_id not in allowed)
    counts = {
        "cases": len(committed), "events": len(rows.event_updates) + len(rows.event_inserts),
        "audit": len(rows.audit), "tasks": len(rows.task_inserts), "timers": len(rows.timer_inserts),
        "outbox": len(rows.outbox), "incidents": len(rows.incidents), "ended": len(rows.ended),
        "sub_cases": len(rows.new_cases), "stale": len(stale),
    }
    return CommitResult(tuple(committed), stale, counts)
