"""What there is to do now: runnable cases, due timers, due outbox messages.

The worker loops and the advance flow poll these between batches and while they linger,
so each is one index probe through a statement built once: a runnable case whose lease
is free (claims move a leased case's ``next_run_at`` to its lease's end, so the probe's
index range holds no leased case: engine.store.claims), the first pending timer due, the
first pending message due.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, and_, bindparam, exists, or_, select

from engine.runtime.registry import Runtime
from engine.store.db import READ_ONLY
from engine.store.models import CaseRow, OutboxRow, TimerRow

__all__ = ["has_due_outbox", "has_due_timers", "has_runnable"]

_CASES, _TIMERS, _OUTBOX = CaseRow.__table__.c, TimerRow.__table__.c, OutboxRow.__table__.c
_NOW = bindparam("now", type_=CaseRow.__table__.c.next_run_at.type)

_RUNNABLE = select(exists().where(and_(
    _CASES.runnable.is_(True), _CASES.next_run_at <= _NOW,
    or_(_CASES.lease_until.is_(None), _CASES.lease_until < _NOW))))
_DUE_TIMERS = select(exists().where(and_(_TIMERS.status == "pending", _TIMERS.due_at <= _NOW)))
_DUE_OUTBOX = select(exists().where(and_(_OUTBOX.status == "pending",
                                         _OUTBOX.next_attempt_at <= _NOW)))


def _any(engine: Engine, stmt: Any, now: Any) -> bool:
    with engine.execution_options(**{READ_ONLY: True}).connect() as conn:
        return conn.execute(stmt, {"now": now}).scalar() is True


def has_runnable(rt: Runtime) -> bool:
    """A case is runnable now and no worker holds it."""
    return _any(rt.engine, _RUNNABLE, rt.clock.now())


def has_due_timers(rt: Runtime) -> bool:
    """A pending timer is due now."""
    return _any(rt.engine, _DUE_TIMERS, rt.clock.now())


def has_due_outbox(rt: Runtime) -> bool:
    """A pending outbox message is due now."""
    return _any(rt.engine, _DUE_OUTBOX, rt.clock.now())
