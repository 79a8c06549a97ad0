"""Claiming work: runnable cases (with a lease), due timers (fired in the claim), outbox rows.

PostgreSQL: ``SELECT ... FOR UPDATE SKIP LOCKED`` inside the claiming UPDATE, so several
workers take disjoint batches without waiting on each other. SQLite: the transaction
starts with ``BEGIN IMMEDIATE`` (engine.store.db), so claims are serialised by the write
lock. Every comparison with "now" uses the instant passed in (the injected clock), never
the database's own time, so a simulated clock drives leases and timers alike.

Misfire policy (timers due while no worker ran): every timer kind -- timeout, retry,
wait_timeout, sla_warning, sla_breach, sla_escalation -- fires ONCE on catch-up, late,
with its lateness (``fired_at - due_at``) recorded on the timer row; the interpreter
decides what a late firing still means (a stale timer of a case that moved on is ignored).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import and_, bindparam, select, update
from sqlalchemy.orm import Session

from engine.slots import slot_functions
from engine.store.bulk import json_read, rows_in, sqlite_time
from engine.store.cases import wake_cases
from engine.store.models import (
    CaseEventRow,
    CaseRow,
    EventStatus,
    OutboxRow,
    OutboxStatus,
    TimerRow,
    TimerStatus,
)

__all__ = [
    "ClaimedCase",
    "FiredTimer",
    "MISFIRE_POLICY",
    "claim_due_timers",
    "claim_outbox",
    "claim_runnable_cases",
    "release_cases",
    "with_states",
]

CASES = CaseRow.__table__
EVENTS = CaseEventRow.__table__
TIMERS = TimerRow.__table__
OUTBOX = OutboxRow.__table__

#: what a timer that was due while workers were down does on catch-up, per kind
MISFIRE_POLICY = {
    "timeout": "fire_once",
    "retry": "fire_once",
    "wait_timeout": "fire_once",
    "sla_warning": "fire_once",
    "sla_breach": "fire_once",
    "sla_escalation": "fire_once",
}


@dataclass(frozen=True, slots=True)
class ClaimedCase:
    """A case this worker leased: what the advance loop needs to run it."""

    id: str
    sop_id: str
    sop_hash: str
    sop_version: str
    state: Any
    version: int
    seq: int
    priority: str
    tier: str
    channel: str | None
    customer_id: str | None
    parent_case_id: str | None
    parent_call_id: str | None
    audit_seq: int
    audit_hash: str
    status: str = "open"
    level: str | None = None

    @property
    def meta(self) -> tuple[Any, ...]:
        """(status, level, priority, tier, channel, customer_id) as claimed."""
        return (self.status, self.level, self.priority, self.tier, self.channel, self.customer_id)


#: ClaimedCase(...) and dataclasses.replace for it, through the slots (a batch makes
#: thousands: engine.slots)
_make_claimed, _evolve_claimed = slot_functions(ClaimedCase)


def _is_pg(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


#: the claimed cases' columns, in ClaimedCase's order but ``state`` (in case_states)
_CLAIM_RETURNING = ("id", "sop_id", "sop_hash", "sop_version", "version", "seq",
                    "priority", "tier", "channel", "customer_id", "parent_case_id",
                    "parent_call_id", "audit_seq", "audit_hash", "status", "level")


@lru_cache(maxsize=8)
def _claim_sql(dialect: str) -> str:
    p, true = ("?", "1") if dialect == "sqlite" else ("%s", "true")
    lock = " FOR UPDATE SKIP LOCKED" if dialect == "postgresql" else ""  # (SQLite: BEGIN IMMEDIATE)
    # next_run_at moves to the lease's end: the claim's index range (runnable, next_run_at
    # <= now) no longer holds leased cases, so neither this scan nor has_runnable walks
    # past the batches other workers hold; a case whose worker died is due when its lease ends
    return (f"UPDATE cases SET lease_owner = {p}, lease_until = {p}, next_run_at = {p}, "
            f"version = version + 1 "
            f"WHERE id IN (SELECT id FROM cases WHERE runnable = {true} AND next_run_at <= {p} "
            f"AND (lease_until IS NULL OR lease_until < {p}) ORDER BY next_run_at "
            f"LIMIT {p}{lock}) RETURNING {', '.join(_CLAIM_RETURNING)}")


def claim_runnable_cases(
    session: Session, worker: str, limit: int, lease_s: float, now: datetime, *,
    with_state: bool = True,
) -> list[ClaimedCase]:
    """Lease up to ``limit`` runnable cases whose lease is free or expired.

    The claim bumps each case's ``version``; the batch commit writes a case only if that
    version is still current, so a worker whose lease expired cannot overwrite the work
    of the worker that took the case over. One statement through the driver; PostgreSQL
    skips rows other workers hold.

    ``with_state=False`` leaves the states out (``state`` is None): the caller reads them
    with ``with_states`` after its transaction, outside the SQLite write lock; otherwise
    they are read here, in the claim's transaction.
    """
    conn = session.connection()
    dialect = conn.dialect.name
    time = sqlite_time if dialect == "sqlite" else _same
    until = time(now + timedelta(seconds=lease_s))
    rows = conn.exec_driver_sql(_claim_sql(dialect), (
        worker, until, until, time(now), time(now), limit)).all()
    claimed = [_make_claimed(*row[:4], None, *row[4:]) for row in rows]
    claimed.sort(key=lambda x: x.id)
    return with_states(session, claimed) if with_state and claimed else claimed


def with_states(session: Session, claimed: Sequence[ClaimedCase]) -> list[ClaimedCase]:
    """``claimed`` (from ``claim_runnable_cases(..., with_state=False)``) with their states,
    read in ``session`` -- a read-only one is enough: the lease keeps other workers from
    writing these cases."""
    states = {cid: json_read(state) for cid, state in rows_in(
        session.connection(), "SELECT case_id, state FROM case_states WHERE case_id IN ({ids})",
        [c.id for c in claimed])}
    return [_evolve_claimed(c, state=states.get(c.id)) for c in claimed]


def _same(value: Any) -> Any:
    return value


def release_cases(session: Session, worker: str, case_ids: Sequence[str], retry_at: datetime) -> None:
    """Give up the lease of ``case_ids`` (a failed batch); they run again at ``retry_at``."""
    if case_ids:
        session.connection().execute(
            update(CASES).where(and_(CASES.c.id.in_(list(case_ids)), CASES.c.lease_owner == worker))
            .values(lease_owner=None, lease_until=None, next_run_at=retry_at))


@dataclass(frozen=True, slots=True)
class FiredTimer:
    id: str
    case_id: str
    kind: str
    due_at: datetime
    fired_at: datetime
    lateness_s: float


def claim_due_timers(
    session: Session, now: datetime, limit: int, *, worker: str, event_json: Any
) -> list[FiredTimer]:
    """Fire up to ``limit`` pending timers due at ``now``: in this one transaction each
    becomes a pending ``TimerFired`` input of its case (exactly once) and is marked fired.

    Cost is O(due): the scan walks the (status, due_at) index from its start and stops
    at ``limit`` rows or the first timer not yet due.

    Args:
        event_json: ``(timer_id, due_at, fired_at) -> JSON`` of the TimerFired event (codec).
    """
    stmt = (
        select(TIMERS.c.id, TIMERS.c.case_id, TIMERS.c.kind, TIMERS.c.due_at)
        .where(TIMERS.c.status == TimerStatus.PENDING, TIMERS.c.due_at <= now)
        .order_by(TIMERS.c.due_at)
        .limit(limit)
    )
    if _is_pg(session):
        stmt = stmt.with_for_update(skip_locked=True)
    conn = session.connection()
    rows = conn.execute(stmt).all()
    if not rows:
        return []
    fired = [FiredTimer(r.id, r.case_id, r.kind, r.due_at, now,
                        max(0.0, (now - r.due_at).total_seconds())) for r in rows]
    conn.execute(
        update(TIMERS).where(TIMERS.c.id == bindparam("b_id"))
        .values(status=TimerStatus.FIRED, fired_at=now, lateness_s=bindparam("b_late"),
                lease_owner=worker),
        [{"b_id": f.id, "b_late": f.lateness_s} for f in fired])
    conn.execute(EVENTS.insert(), [
        {"case_id": f.case_id, "seq": None, "kind": "TimerFired",
         "event": event_json(f.id, f.due_at, f.fired_at), "status": EventStatus.PENDING,
         "actor": "timer", "recorded_at": now}
        for f in fired])
    wake_cases(conn, {f.case_id for f in fired}, now)
    return fired


def claim_outbox(session: Session, now: datetime, limit: int, lease_s: float) -> list[Any]:
    """Take up to ``limit`` due outbox rows; each is hidden for ``lease_s`` while it is sent
    (a sender that dies leaves it due again afterwards: at-least-once)."""
    stmt = (
        select(OUTBOX.c.id, OUTBOX.c.case_id, OUTBOX.c.idempotency_key, OUTBOX.c.channel,
               OUTBOX.c.payload, OUTBOX.c.attempts)
        .where(OUTBOX.c.status == OutboxStatus.PENDING, OUTBOX.c.next_attempt_at <= now)
        .order_by(OUTBOX.c.next_attempt_at)
        .limit(limit)
    )
    if _is_pg(session):
        stmt = stmt.with_for_update(skip_locked=True)
    conn = session.connection()
    rows = conn.execute(stmt).all()
    if rows:
        conn.execute(update(OUTBOX).where(OUTBOX.c.id.in_([r.id for r in rows]))
                     .values(next_attempt_at=now + timedelta(seconds=lease_s),
                             attempts=OUTBOX.c.attempts + 1))
    return list(rows)


def finish_outbox(session: Session, results: Sequence[dict[str, Any]]) -> None:
    """Record send results: dicts with b_id, b_status, b_error, b_sent, b_next, b_delivery."""
    if results:
        session.connection().execute(
            update(OUTBOX).where(OUTBOX.c.id == bindparam("b_id"))
            .values(status=bindparam("b_status"), last_error=bindparam("b_error"),
                    sent_at=bindparam("b_sent"), next_attempt_at=bindparam("b_next"),
                    delivery=bindparam("b_delivery")),
            list(results))
