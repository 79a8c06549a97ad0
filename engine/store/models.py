"""The case engine's tables: SOP versions, cases, their event log, tasks, timers, outbox,
inbox, dead letters, incidents and the hash-chained audit log.

Rows, not domain values: engine.store.repo converts between these rows and the
interpreter's frozen types (engine.interpreter.types) via the codec.

Pending inputs (the "pending events" design): everything that should move a case -- a
case start, a task completion, a channel signal, a timer firing, an incident retry -- is a
``case_events`` row with ``status='pending'`` and no ``seq`` yet, plus ``cases.runnable``
set. A worker that holds the case's lease applies the pending rows in ``id`` order and, in
the same transaction as the new state, gives each its ``seq`` (UNIQUE per case) and
``status='applied'`` (or ``'rejected'`` with the reason). So an input is applied exactly
once and never lost, and the event log doubles as the replay log.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    DDL,
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    event,
    select,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped, column_property, mapped_column
from sqlalchemy.types import TypeDecorator

from engine.store.base import Base

__all__ = [
    "AUDIT_LOG_VIEW",
    "AuditRecordRow",
    "AuditRow",
    "CaseEventRow",
    "CaseStateRow",
    "CaseRow",
    "DeadLetterRow",
    "EventStatus",
    "HumanTaskRow",
    "InboxRow",
    "IncidentRow",
    "OutboxRow",
    "OutboxStatus",
    "SopVersionRow",
    "TaskStatus",
    "TimerRow",
    "TimerStatus",
    "UtcDateTime",
]


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite stores naive UTC text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


ID = String(200)


class EventStatus(StrEnum):
    PENDING = "pending"
    APPLIED = "applied"
    REJECTED = "rejected"
    IGNORED = "ignored"  # stale: the case no longer waited for it (a late timer, a late result)


class TaskStatus(StrEnum):
    OPEN = "open"
    CLAIMED = "claimed"
    PROPOSED = "proposed"  # four eyes: an outcome waits for a second agent's confirmation
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class TimerStatus(StrEnum):
    PENDING = "pending"
    FIRED = "fired"
    CANCELLED = "cancelled"


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class SopVersionRow(Base):
    """An immutable, content-hashed SOP version; cases are pinned to its hash."""

    __tablename__ = "sop_versions"

    hash: Mapped[str] = mapped_column(String(80), primary_key=True)
    sop_id: Mapped[str] = mapped_column(String(120), index=True)
    version: Mapped[str] = mapped_column(String(40))
    source: Mapped[str] = mapped_column(Text)  # the YAML text (or JSON of the spec)
    source_path: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class CaseRow(Base):
    """One case: its pinned SOP, the interpreter state (codec JSON) and claim bookkeeping."""

    __tablename__ = "cases"
    __table_args__ = (
        Index("ix_cases_claim", "runnable", "next_run_at"),
        Index("ix_cases_sop_status", "sop_id", "status"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    sop_id: Mapped[str] = mapped_column(String(120))
    sop_hash: Mapped[str] = mapped_column(ForeignKey("sop_versions.hash"))
    sop_version: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    level: Mapped[str | None] = mapped_column(String(40), index=True)
    priority: Mapped[str] = mapped_column(String(16), default="normal")
    tier: Mapped[str] = mapped_column(String(40), default="standard")
    channel: Mapped[str | None] = mapped_column(String(40))
    customer_id: Mapped[str | None] = mapped_column(String(120), index=True)
    outcome: Mapped[str | None] = mapped_column(String(120))
    seq: Mapped[int] = mapped_column(Integer, default=0)
    version: Mapped[int] = mapped_column(Integer, default=1)
    runnable: Mapped[bool] = mapped_column(Boolean, default=False)
    next_run_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(120))
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    parent_case_id: Mapped[str | None] = mapped_column(ID, index=True)
    parent_call_id: Mapped[str | None] = mapped_column(ID)
    audit_seq: Mapped[int] = mapped_column(Integer, default=0)
    audit_hash: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __mapper_args__ = {"version_id_col": version}


class CaseStateRow(Base):
    """The interpreter state of a case (codec JSON), in a table of its own: the claim, a
    new input's wake-up and the lease bookkeeping rewrite the ``cases`` row several times
    per step, and SQLite rewrites a whole row for any change, so a state kept there was
    written again with each (measured: ~30 % of the bytes written per case). No row until
    the case's CaseStarted is applied. ``CaseRow.state`` reads it."""

    __tablename__ = "case_states"

    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), primary_key=True)
    state: Mapped[Any] = mapped_column(JSON, nullable=False)


#: the state as an attribute of the case (read-only: the batch commit writes case_states)
CaseRow.state = column_property(
    select(CaseStateRow.state).where(CaseStateRow.case_id == CaseRow.id)
    .correlate_except(CaseStateRow).scalar_subquery())


class CaseEventRow(Base):
    """An input of a case: pending until a worker applies it, then part of the replay log."""

    __tablename__ = "case_events"
    __table_args__ = (
        UniqueConstraint("case_id", "seq"),
        Index("ix_case_events_pending", "case_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"))
    seq: Mapped[int | None] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(40))
    event: Mapped[Any] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default=EventStatus.PENDING)
    error: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str | None] = mapped_column(String(120))
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime)
    applied_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class HumanTaskRow(Base):
    """Work for a person at a competence level; completed by exactly one agent.

    Four eyes (a node with ``four_eyes: true``): the first agent's completion is a
    *proposal* (``proposed_*``, status ``proposed``); a second agent confirms it (status
    ``completed``, ``completed_by`` the proposer, ``confirmed_by`` the second agent) or
    rejects it (status ``open`` again, the proposal cleared, ``rejection`` keeps
    ``{outcome, proposed_by, by, at, reason}`` of the last rejected one).
    """

    __tablename__ = "human_tasks"
    __table_args__ = (Index("ix_human_tasks_queue", "level", "status", "due_at"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    node: Mapped[str] = mapped_column(String(120))
    level: Mapped[str] = mapped_column(String(40))
    title: Mapped[str] = mapped_column(String(300), default="")
    role: Mapped[str | None] = mapped_column(String(120))
    skills: Mapped[Any] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default=TaskStatus.OPEN)
    assignee: Mapped[str | None] = mapped_column(String(120))
    outcomes: Mapped[Any] = mapped_column(JSON, default=list)
    due_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    claimed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(120))
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    completed_by: Mapped[str | None] = mapped_column(String(120))
    outcome: Mapped[str | None] = mapped_column(String(120))
    fields: Mapped[Any | None] = mapped_column(JSON)
    knowledge: Mapped[Any | None] = mapped_column(JSON)
    cancel_reason: Mapped[str | None] = mapped_column(Text)
    proposed_outcome: Mapped[str | None] = mapped_column(String(120))
    proposed_fields: Mapped[Any | None] = mapped_column(JSON)
    proposed_knowledge: Mapped[Any | None] = mapped_column(JSON)
    proposed_by: Mapped[str | None] = mapped_column(String(120))
    proposed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    confirmed_by: Mapped[str | None] = mapped_column(String(120))
    rejection: Mapped[Any | None] = mapped_column(JSON)

    __mapper_args__ = {"version_id_col": version}


class TimerRow(Base):
    """A durable timer; swept through the (status, due_at) index so a sweep costs O(due)."""

    __tablename__ = "timers"
    __table_args__ = (Index("ix_timers_status_due", "status", "due_at"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    due_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    node: Mapped[str | None] = mapped_column(String(120))
    payload: Mapped[Any] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default=TimerStatus.PENDING)
    lease_owner: Mapped[str | None] = mapped_column(String(120))
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    fired_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    lateness_s: Mapped[float | None] = mapped_column(Float)


class OutboxRow(Base):
    """An outbound message, written with the state that caused it; sent at least once."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_status_next", "status", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    case_id: Mapped[str | None] = mapped_column(ForeignKey("cases.id"), index=True)
    idempotency_key: Mapped[str] = mapped_column(ID, unique=True)
    channel: Mapped[str] = mapped_column(String(40))
    payload: Mapped[Any] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default=OutboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    delivery: Mapped[Any | None] = mapped_column(JSON)


class InboxRow(Base):
    """An inbound channel item, deduplicated by (channel, external id)."""

    __tablename__ = "inbox"
    __table_args__ = (UniqueConstraint("channel", "external_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(40))
    external_id: Mapped[str] = mapped_column(String(500))
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    case_id: Mapped[str | None] = mapped_column(ForeignKey("cases.id"), index=True)
    payload: Mapped[Any] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="received")


class DeadLetterRow(Base):
    """Input that could not be processed, kept with its reason (never dropped)."""

    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(80))
    reason: Mapped[str] = mapped_column(Text)
    payload: Mapped[Any] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    retried_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class IncidentRow(Base):
    """An automated step that failed for good; an operator retries or resolves it."""

    __tablename__ = "incidents"
    __table_args__ = (Index("ix_incidents_status", "status", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    ref: Mapped[str | None] = mapped_column(ID, index=True)  # the interpreter's incident id
    node: Mapped[str] = mapped_column(String(120))
    action_id: Mapped[str | None] = mapped_column(ID)
    error: Mapped[str] = mapped_column(Text)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="open")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    resolved_by: Mapped[str | None] = mapped_column(String(120))


class AuditRecordRow(Base):
    """The append-only audit trail as stored: one record per step (the entries one input
    produced, in order), hash-chained per case. Entries are numbered per case (1, 2, ...):
    a record holds ``first_seq`` .. ``seq``; ``cases.audit_seq`` is the last entry's number.

    ``form``: 1, the hash covers the record (engine.store.audit.chain_record); 0, a single
    entry written before records existed, whose hash covers that entry as it did then.
    Read entry by entry through ``AuditRow`` (the ``audit_log`` view).
    """

    __tablename__ = "audit_records"
    __table_args__ = (UniqueConstraint("case_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"))
    seq: Mapped[int] = mapped_column(Integer)
    first_seq: Mapped[int] = mapped_column(Integer)
    event_seq: Mapped[int | None] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    sop_version: Mapped[str] = mapped_column(String(40))
    sop_hash: Mapped[str] = mapped_column(String(80))
    #: [{"actor", "kind", "node", "detail"}, ...] in order
    entries: Mapped[Any] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    form: Mapped[int] = mapped_column(Integer, default=1)


#: the view of audit entries, one row per entry (not created by the metadata: see
#: AUDIT_LOG_VIEW)
_VIEWS = MetaData()

AUDIT_LOG_VIEW = {
    "sqlite": (
        "CREATE VIEW audit_log AS SELECT r.id * 1000000 + e.key AS id, r.case_id AS case_id, "
        "r.first_seq + e.key AS seq, r.event_seq AS event_seq, r.at AS at, "
        "json_extract(e.value, '$.actor') AS actor, json_extract(e.value, '$.kind') AS kind, "
        "json_extract(e.value, '$.node') AS node, r.sop_version AS sop_version, "
        "r.sop_hash AS sop_hash, json_extract(e.value, '$.detail') AS detail "
        "FROM audit_records AS r, json_each(r.entries) AS e"),
    "postgresql": (
        "CREATE VIEW audit_log AS SELECT r.id * 1000000 + e.ord - 1 AS id, r.case_id, "
        "r.first_seq + e.ord - 1 AS seq, r.event_seq, r.at, e.value ->> 'actor' AS actor, "
        "e.value ->> 'kind' AS kind, e.value ->> 'node' AS node, r.sop_version, r.sop_hash, "
        "e.value -> 'detail' AS detail FROM audit_records AS r "
        "CROSS JOIN LATERAL json_array_elements(r.entries) WITH ORDINALITY AS e(value, ord)"),
}


class AuditRow(Base):
    """One audit entry: a row of the ``audit_log`` view over ``audit_records`` (read only)."""

    __table__ = Table(
        "audit_log", _VIEWS,
        Column("id", BigInteger, primary_key=True),
        Column("case_id", String(200)),
        Column("seq", Integer),
        Column("event_seq", Integer),
        Column("at", UtcDateTime),
        Column("actor", String(120)),
        Column("kind", String(40)),
        Column("node", String(120)),
        Column("sop_version", String(40)),
        Column("sop_hash", String(80)),
        Column("detail", JSON),
    )


event.listen(AuditRecordRow.__table__, "after_create",
             DDL(AUDIT_LOG_VIEW["sqlite"]).execute_if(dialect="sqlite"))
event.listen(AuditRecordRow.__table__, "after_create",
             DDL(AUDIT_LOG_VIEW["postgresql"]).execute_if(dialect="postgresql"))
event.listen(AuditRecordRow.__table__, "before_drop", DDL("DROP VIEW IF EXISTS audit_log"))
