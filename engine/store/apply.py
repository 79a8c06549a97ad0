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

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from functools import lru_cache

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from engine.interpreter import types as t
from engine.store.audit import chain_record
from engine.store.bulk import Bulk, execute_in, sqlite_time
from engine.store.cases import wake_cases
from engine.store.tasks import UNFINISHED
from engine.store.models import (
    AuditRecordRow,
    CaseEventRow,
    CaseRow,
    CaseStateRow,
    EventStatus,
    HumanTaskRow,
    IncidentRow,
    OutboxRow,
    TaskStatus,
    TimerRow,
    TimerStatus,
)

__all__ = ["AppliedEvent", "CaseAdvance", "CommitResult", "PreparedCommit", "commit_advances",
           "prepare_commit", "UNROUTED_CHANNEL"]

#: outbox channel of a message with no channel of its own and a case without one
UNROUTED_CHANNEL = "unrouted"

CASES = CaseRow.__table__
EVENTS = CaseEventRow.__table__
AUDIT = AuditRecordRow.__table__
TASKS = HumanTaskRow.__table__
TIMERS = TimerRow.__table__
OUTBOX = OutboxRow.__table__
INCIDENTS = IncidentRow.__table__
STATES = CaseStateRow.__table__


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
    #: the case row's (status, level, priority, tier, channel, customer_id) when it was
    #: claimed: the update sets only those that changed (None: all of them)
    claimed_meta: tuple[Any, ...] | None = None


@dataclass(frozen=True, slots=True)
class CommitResult:
    committed: tuple[str, ...]
    stale: tuple[str, ...]
    counts: Mapping[str, int]


#: statements built once, with their id lists bound as one expanding parameter (an
#: ``in_(ids)`` built per call coerces every id: ~1 µs per case at these sizes)
_IDS = bindparam("ids", expanding=True)
_FENCE = select(CASES.c.id, CASES.c.version).where(CASES.c.id.in_(_IDS),
                                                   CASES.c.lease_owner == bindparam("worker"))


def _fence(session: Session, advances: Sequence[CaseAdvance], worker: str) -> set[str]:
    """Ids of the cases this worker may still write (lease held, version unchanged)."""
    stmt = _FENCE.with_for_update() if session.get_bind().dialect.name == "postgresql" else _FENCE
    current = {row[0]: row[1] for row in session.execute(
        stmt, {"ids": [a.case_id for a in advances], "worker": worker})}
    return {a.case_id for a in advances if current.get(a.case_id) == a.expected_version}


class _Rows:
    """The rows of one batch, collected per table before the bulk statements run."""

    def __init__(self, now: datetime, dialect: str) -> None:
        self.now = now
        self.dialect = dialect
        #: ``now`` as the driver takes it for the raw audit insert (SQLite: naive UTC text,
        #: the format SQLAlchemy's DateTime stores)
        self.now_bind: Any = sqlite_time(now) if dialect == "sqlite" else now
        self.now_iso = now.isoformat()  # the audit entries' ``at``, as the hash covers it
        self.event_updates: list[tuple[Any, ...]] = []  # _EVENT_UPDATE order
        self.event_inserts: list[tuple[Any, ...]] = []  # _EVENT_COLUMNS order
        self.audit: list[tuple[Any, ...]] = []
        self.task_inserts: dict[str, list[Any]] = {}  # _TASK_COLUMNS order
        self.task_cancels: list[tuple[str, str]] = []  # (reason, task id)
        self.timer_inserts: dict[str, list[Any]] = {}  # _TIMER_COLUMNS order
        self.timer_cancels: list[tuple[str]] = []
        self.outbox: list[tuple[Any, ...]] = []  # _OUTBOX_COLUMNS order
        self.incidents: list[dict[str, Any]] = []
        #: case updates grouped by the metadata columns they change (see _case_update)
        self.case_updates: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
        self.states: list[tuple[str, Any]] = []  # (case id, state JSON)
        self.new_cases: list[dict[str, Any]] = []
        self.ended: list[str] = []
        self.parent_events: list[tuple[Any, ...]] = []
        self.parents: set[str] = set()
        self._driver: _DriverRows | None = None

    def driver_rows(self) -> _DriverRows:
        """The rows as the driver takes them (converted once: by ``prepare_commit``, before
        the write lock, or on first use)."""
        if self._driver is None:
            st = _statements(self.dialect)
            self._driver = _DriverRows(
                event_updates=_driver(st["event_update"][0], self.event_updates),
                events=_driver(st["events"], (*self.event_inserts, *self.parent_events)),
                tasks=_driver(st["tasks"], self.task_inserts.values()),
                timers=_driver(st["timers"], self.timer_inserts.values()),
                outbox=_driver(st["outbox"], self.outbox),
                states=_driver(st["states"], self.states),
                case_updates={changed: _driver(_case_update(self.dialect, changed)[0], updates)
                              for changed, updates in self.case_updates.items()})
        return self._driver


def _driver(bulk: Bulk, rows: Iterable[Sequence[Any]]) -> list[tuple[Any, ...]]:
    """``rows`` (Python values in ``bulk``'s column order) as driver values."""
    row = bulk.row
    return [row(r) for r in rows]


@dataclass(frozen=True, slots=True)
class _DriverRows:
    """A batch's rows in driver values, per statement (see ``_Rows.driver_rows``)."""

    event_updates: list[tuple[Any, ...]]
    events: list[tuple[Any, ...]]
    tasks: list[tuple[Any, ...]]
    timers: list[tuple[Any, ...]]
    outbox: list[tuple[Any, ...]]
    states: list[tuple[Any, ...]]
    case_updates: dict[tuple[str, ...], list[tuple[Any, ...]]]


def _collect_events(rows: _Rows, adv: CaseAdvance) -> None:
    for ev in adv.events:
        if ev.seq is not None:
            status = EventStatus.APPLIED
        else:
            status = EventStatus.REJECTED if ev.error else EventStatus.IGNORED
        if ev.pending_id is not None:
            rows.event_updates.append((ev.seq, str(status), ev.error, rows.now, ev.pending_id))
        else:
            rows.event_inserts.append((adv.case_id, ev.seq, ev.kind, ev.event, str(status),
                                       ev.error, ev.actor, rows.now, rows.now))


def _collect_audit(rows: _Rows, adv: CaseAdvance, entries: Iterable[tuple[t.Audit, int]]) -> tuple[int, str]:
    """One audit record per step: the entries of each event seq, in order, chained."""
    seq, prev = adv.audit_seq, adv.audit_hash
    st = adv.state
    case_id, at, at_bind, sop_hash, sop_version = (adv.case_id, rows.now_iso, rows.now_bind,
                                                   st.sop_hash, st.sop_version)
    append = rows.audit.append
    group: list[dict[str, Any]] = []
    group_seq: int | None = None
    for audit, event_seq in (*entries, (None, None)):
        if group and (audit is None or event_seq != group_seq):
            first, seq = seq + 1, seq + len(group)
            text, digest = chain_record(prev, case_id, first, seq, at, sop_hash, group)
            append((case_id, seq, first, group_seq, at_bind, sop_version, sop_hash, text,
                    prev, digest, 1))
            prev, group = digest, []
        if audit is not None:
            group_seq = event_seq
            group.append({"actor": audit.actor, "kind": audit.kind, "node": audit.node,
                          "detail": audit.detail})
    return seq, prev


#: the commands that become rows of this commit
_ROW_COMMANDS = frozenset({t.CreateTask, t.CancelTask, t.ScheduleTimer, t.CancelTimer,
                           t.SendMessage, t.RaiseIncident, t.CaseEnded})


def _collect_command(rows: _Rows, adv: CaseAdvance, cmd: Any, codec: Any) -> None:  # noqa: C901
    now, case_id = rows.now, adv.case_id
    if isinstance(cmd, t.CreateTask):
        rows.task_inserts[cmd.task_id] = [
            cmd.task_id, case_id, cmd.node, cmd.level, cmd.title, cmd.role, list(cmd.skills),
            str(TaskStatus.OPEN), list(cmd.outcomes), cmd.due_at, 1, now]
    elif isinstance(cmd, t.CancelTask):
        if cmd.task_id in rows.task_inserts:
            rows.task_inserts[cmd.task_id][_TASK_STATUS] = str(TaskStatus.CANCELLED)
        else:
            rows.task_cancels.append((cmd.reason, cmd.task_id))
    elif isinstance(cmd, t.ScheduleTimer):
        rows.timer_inserts[cmd.timer_id] = [
            cmd.timer_id, case_id, cmd.kind, cmd.due_at, cmd.node, cmd.payload,
            str(TimerStatus.PENDING), now]
    elif isinstance(cmd, t.CancelTimer):
        if cmd.timer_id in rows.timer_inserts:
            rows.timer_inserts[cmd.timer_id][_TIMER_STATUS] = str(TimerStatus.CANCELLED)
        else:
            rows.timer_cancels.append((cmd.timer_id,))
    elif isinstance(cmd, t.SendMessage):
        rows.outbox.append((
            cmd.message_id, case_id, cmd.idempotency_key or cmd.message_id,
            cmd.channel or adv.state.channel or UNROUTED_CHANNEL, codec.command_to_json(cmd),
            "pending", 0, now, now))
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
            rows.parent_events.append((parent[0], None, "SubCaseEnded", codec.event_to_json(ended),
                                       str(EventStatus.PENDING), None, "system", now, None))
            rows.parents.add(parent[0])


def _collect_case(rows: _Rows, adv: CaseAdvance, codec: Any) -> None:
    _collect_events(rows, adv)
    audits, row_commands = [], []
    for cmd, seq in zip(adv.commands, adv.event_seq_of_command, strict=True):
        kind = type(cmd)
        if kind is t.Audit:
            audits.append((cmd, seq))
        elif kind in _ROW_COMMANDS:  # (RunAction, StartSubCase: carried out by the runtime)
            row_commands.append(cmd)
    audit_seq, audit_hash = _collect_audit(rows, adv, audits)
    for cmd in row_commands:
        _collect_command(rows, adv, cmd, codec)
    rows.new_cases.extend(adv.sub_cases)
    rows.event_inserts.extend(tuple(e.get(c) for c in _EVENT_COLUMNS) for e in adv.sub_case_events)
    st = adv.state
    new = (str(st.status), st.level, st.priority, st.tier, st.channel, st.customer_id)
    old = adv.claimed_meta
    changed = [(c, v) for i, (c, v) in enumerate(zip(_CASE_META, new))
               if old is None or old[i] != v]
    if old is None or old[0] != new[0]:
        changed += [("outcome", st.outcome), ("ended_at", rows.now if st.status.ended else None)]
    key = tuple(c for c, _ in changed)
    rows.case_updates.setdefault(key, []).append((
        st.seq, rows.now, rows.now, audit_seq, audit_hash, *(v for _, v in changed),
        adv.case_id, adv.expected_version))
    rows.states.append((adv.case_id, adv.state_json))


_EVENT_COLUMNS = ("case_id", "seq", "kind", "event", "status", "error", "actor", "recorded_at",
                  "applied_at")
_TASK_COLUMNS = ("id", "case_id", "node", "level", "title", "role", "skills", "status",
                 "outcomes", "due_at", "version", "created_at")
_TASK_STATUS = _TASK_COLUMNS.index("status")
_TIMER_COLUMNS = ("id", "case_id", "kind", "due_at", "node", "payload", "status", "created_at")
_TIMER_STATUS = _TIMER_COLUMNS.index("status")
_OUTBOX_COLUMNS = ("id", "case_id", "idempotency_key", "channel", "payload", "status",
                   "attempts", "next_attempt_at", "created_at")
_AUDIT_COLUMNS = ("case_id", "seq", "first_seq", "event_seq", "at", "sop_version", "sop_hash",
                  "entries", "prev_hash", "hash", "form")
#: what every case update sets; the metadata columns (indexed, most of them) are set only
#: when they change, which spares SQLite the index maintenance (a third of an update's
#: cost). ``next_run_at`` comes back from the lease's end (engine.store.claims) to the
#: commit's instant: a case still runnable after its commit has an input queued, due now.
#: The state itself goes to case_states (engine.store.models.CaseStateRow).
_CASE_ALWAYS = ("seq", "updated_at", "next_run_at", "audit_seq", "audit_hash")
_CASE_META = ("status", "level", "priority", "tier", "channel", "customer_id")


@lru_cache(maxsize=256)
def _case_update(dialect: str, changed: tuple[str, ...]) -> tuple[Bulk, str]:
    """The versioned update of the cases whose metadata ``changed`` (rows: _CASE_ALWAYS
    values, the changed values, then id and the claimed version)."""
    columns = (*_CASE_ALWAYS, *changed)
    bulk = Bulk(CASES, (*columns, "id", "version"), dialect)
    p = "?" if dialect == "sqlite" else "%s"
    sets = ", ".join(f"{c} = {bulk.mark(c)}" for c in columns)
    return bulk, (
        f"UPDATE cases SET {sets}, version = version + 1, lease_owner = NULL, "
        f"lease_until = NULL, runnable = EXISTS (SELECT 1 FROM case_events "
        f"WHERE case_events.case_id = cases.id AND case_events.status = "
        f"'{EventStatus.PENDING}') WHERE id = {p} AND version = {p}")


#: a task the interpreter cancels may be open, claimed or (four eyes) proposed
_UNFINISHED = ", ".join(f"'{s}'" for s in UNFINISHED)


@lru_cache(maxsize=8)
def _statements(dialect: str) -> Mapping[str, Any]:
    """The batch commit's SQL texts and row converters for ``dialect`` (built once)."""
    ev = Bulk(EVENTS, _EVENT_COLUMNS, dialect)
    ev_upd = Bulk(EVENTS, ("seq", "status", "error", "applied_at", "id"), dialect)
    p = "?" if dialect == "sqlite" else "%s"
    return {
        "events": ev,
        "event_update": (ev_upd, f"UPDATE case_events SET seq = {p}, status = {p}, error = {p}, "
                                 f"applied_at = {p} WHERE id = {p}"),
        "tasks": Bulk(TASKS, _TASK_COLUMNS, dialect),
        "task_cancel": (f"UPDATE human_tasks SET status = '{TaskStatus.CANCELLED}', "
                        f"cancel_reason = {p}, version = version + 1 WHERE id = {p} "
                        f"AND status IN ({_UNFINISHED})"),
        "timers": Bulk(TIMERS, _TIMER_COLUMNS, dialect),
        "timer_cancel": (f"UPDATE timers SET status = '{TimerStatus.CANCELLED}' WHERE id = {p} "
                         f"AND status = '{TimerStatus.PENDING}'"),
        "outbox": Bulk(OUTBOX, _OUTBOX_COLUMNS, dialect),
        "audit": Bulk(AUDIT, _AUDIT_COLUMNS, dialect),
        # a case's first commit inserts its state, every later one replaces it
        "states": Bulk(STATES, ("case_id", "state"), dialect),
        # the ended cases' timers, through their case_id index: with no statistics, SQLite
        # preferred the (status, due_at) index for "status = 'pending'" and walked every
        # pending timer of every open case for each batch that ended a case
        "end_timers": (f"UPDATE timers{' INDEXED BY ix_timers_case_id' if p == '?' else ''} "
                       f"SET status = '{TimerStatus.CANCELLED}' WHERE case_id IN ({{ids}}) "
                       f"AND status = '{TimerStatus.PENDING}'"),
        # what the interpreter left open of an ended case (it cancels its own tasks)
        "end_tasks": (f"UPDATE human_tasks SET status = '{TaskStatus.CANCELLED}', "
                      f"cancel_reason = 'case ended', version = version + 1 "
                      f"WHERE case_id IN ({{ids}}) AND status IN ({_UNFINISHED})"),
    }


def _write(session: Session, rows: _Rows) -> None:
    """Every row of the batch, through the driver's executemany (engine.store.bulk)."""
    conn = session.connection()
    st = _statements(rows.dialect)
    if rows.new_cases:
        conn.execute(CASES.insert(), rows.new_cases)
    driver = rows.driver_rows()
    if driver.event_updates:
        conn.exec_driver_sql(st["event_update"][1], driver.event_updates)
    st["events"].insert(conn, driver.events, converted=True)
    if rows.audit:
        st["audit"].insert(conn, rows.audit, converted=True)
    st["tasks"].insert(conn, driver.tasks, converted=True)
    if rows.task_cancels:
        conn.exec_driver_sql(st["task_cancel"], rows.task_cancels)
    st["timers"].insert(conn, driver.timers, converted=True)
    if rows.timer_cancels:
        conn.exec_driver_sql(st["timer_cancel"], rows.timer_cancels)
    st["outbox"].insert(conn, driver.outbox, converted=True,
                        suffix=" ON CONFLICT (idempotency_key) DO NOTHING")
    if rows.incidents:
        conn.execute(INCIDENTS.insert(), rows.incidents)
    if rows.ended:
        execute_in(conn, st["end_timers"], rows.ended)
        execute_in(conn, st["end_tasks"], rows.ended)
    for changed, updates in driver.case_updates.items():
        _write_cases(conn, updates, _case_update(rows.dialect, changed)[1])
    st["states"].insert(conn, driver.states, converted=True,
                        suffix=" ON CONFLICT (case_id) DO UPDATE SET state = excluded.state")
    if rows.parents:
        wake_cases(conn, rows.parents, rows.now)


def _write_cases(conn: Any, updates: list[tuple[Any, ...]], sql: str) -> None:
    if not updates:
        return
    result = conn.exec_driver_sql(sql, updates)
    if result.rowcount != len(updates):  # the fence makes this unreachable
        from engine.errors import StoreError

        raise StoreError(f"case version changed under the lease ({result.rowcount} of "
                         f"{len(updates)} cases written); batch rolled back")


@dataclass(frozen=True, slots=True)
class PreparedCommit:
    """The rows of a batch, collected before its transaction (see ``prepare_commit``)."""

    advances: tuple[CaseAdvance, ...]
    rows: _Rows
    dialect: str
    now: datetime


def prepare_commit(advances: Sequence[CaseAdvance], dialect: str, now: datetime,
                   codec: Any) -> PreparedCommit:
    """Turn a batch's advances into rows, outside any transaction.

    This is the Python half of the commit (audit hash chains, JSON, driver values); doing
    it before ``BEGIN IMMEDIATE`` keeps the SQLite write lock for the statements alone, so
    workers sharing one database spend the lock's time writing, not computing. The rows
    assume every case is still this worker's; ``commit_advances`` collects again the
    cases that are (a lost lease is rare).
    """
    rows = _Rows(now, dialect)
    for adv in advances:
        _collect_case(rows, adv, codec)
    rows.driver_rows()
    return PreparedCommit(tuple(advances), rows, dialect, now)


def commit_advances(
    session: Session, advances: Sequence[CaseAdvance], worker: str, now: datetime, codec: Any,
    *, prepared: PreparedCommit | None = None,
) -> CommitResult:
    """Write every case of ``advances`` this worker still holds, in the session's transaction.

    The caller commits (one transaction per batch). Cases whose lease was lost are
    skipped and reported in ``stale``. ``prepared``: the rows of exactly these
    ``advances`` from ``prepare_commit`` (else they are collected here).
    """
    if not advances:
        return CommitResult((), (), {})
    allowed = _fence(session, advances, worker)
    dialect = session.get_bind().dialect.name
    committed = [a.case_id for a in advances if a.case_id in allowed]
    if (prepared is not None and len(committed) == len(advances)
            and prepared.dialect == dialect and prepared.now == now
            and prepared.advances == tuple(advances)):
        rows = prepared.rows
    else:
        rows = prepare_commit([a for a in advances if a.case_id in allowed], dialect, now,
                              codec).rows
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
