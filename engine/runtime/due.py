"""What there is to do now: runnable cases, due timers, due outbox messages.

The worker loops and the advance flow poll these between batches and while they linger,
so each is one index probe: a runnable case whose lease is free (claims move a leased
case's ``next_run_at`` to its lease's end, so the probe's index range holds no leased
case: engine.store.claims), the first pending timer due, the first pending message due.

A probe's SQL is compiled once per dialect and runs on a pooled driver connection
(engine.store.db.driver_rows: a few µs instead of ~95 through a SQLAlchemy Connection; an
idle worker polls every 20 ms), outside any transaction on SQLite, so it never takes the
write lock.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlalchemy import Engine, and_, bindparam, exists, or_, select

from engine.runtime.registry import Runtime
from engine.store.bulk import driver_converter
from engine.store.db import driver_rows
from engine.store.models import CaseRow, OutboxRow, TimerRow

__all__ = ["has_due_outbox", "has_due_timers", "has_runnable", "has_work"]

_CASES, _TIMERS, _OUTBOX = CaseRow.__table__.c, TimerRow.__table__.c, OutboxRow.__table__.c
_NOW = bindparam("now", type_=CaseRow.__table__.c.next_run_at.type)

_RUNNABLE = select(exists().where(and_(
    _CASES.runnable.is_(True), _CASES.next_run_at <= _NOW,
    or_(_CASES.lease_until.is_(None), _CASES.lease_until < _NOW))))
_DUE_TIMERS = select(exists().where(and_(_TIMERS.status == "pending", _TIMERS.due_at <= _NOW)))
_DUE_OUTBOX = select(exists().where(and_(_OUTBOX.status == "pending",
                                         _OUTBOX.next_attempt_at <= _NOW)))


@lru_cache(maxsize=32)
def _compiled(stmt: Any, dialect: Any) -> tuple[str, dict[str, Any], tuple[str, ...] | None, Any]:
    """``stmt``'s SQL on ``dialect``, its parameters but ``now``, the order of its positional
    parameters (None: the driver takes them by name) and the converter of ``now``."""
    compiled = stmt.compile(dialect=dialect)
    params = {k: v for k, v in compiled.construct_params({"now": None}).items() if k != "now"}
    order = tuple(compiled.positiontup) if dialect.positional else None
    return compiled.string, params, order, driver_converter(_CASES.next_run_at, dialect.name)


def _any(engine: Engine, stmt: Any, now: Any) -> bool:
    sql, fixed, order, convert = _compiled(stmt, engine.dialect)
    values = {**fixed, "now": convert(now)}
    params: Any = values if order is None else tuple(values[name] for name in order)
    return bool(driver_rows(engine, sql, params)[0][0])


def has_runnable(rt: Runtime) -> bool:
    """A case is runnable now and no worker holds it."""
    return _any(rt.engine, _RUNNABLE, rt.clock.now())


def has_work(rt: Runtime) -> bool:
    """There are cases to advance: some this runtime's advancer holds (claimed ahead by its
    last batch), or a runnable case no worker holds."""
    return rt.advancer.holds_cases or has_runnable(rt)


def has_due_timers(rt: Runtime) -> bool:
    """A pending timer is due now."""
    return _any(rt.engine, _DUE_TIMERS, rt.clock.now())


def has_due_outbox(rt: Runtime) -> bool:
    """A pending outbox message is due now."""
    return _any(rt.engine, _DUE_OUTBOX, rt.clock.now())
