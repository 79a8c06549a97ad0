"""Read-only queries for the CLI and reports: case lists, timelines, event logs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.store.models import AuditRow, CaseEventRow, CaseRow, TimerRow

__all__ = ["BreachingClock", "CaseCounts", "case_counts", "case_events", "case_timeline",
           "case_timers", "clocks_breaching_within", "list_cases"]


def list_cases(session: Session, *, status: str | None = None, sop: str | None = None,
               level: str | None = None, customer: str | None = None,
               limit: int = 50) -> list[CaseRow]:
    """Cases, most recently updated first, filtered by status, SOP, level and customer."""
    stmt = select(CaseRow)
    if status:
        stmt = stmt.where(CaseRow.status == status)
    if sop:
        stmt = stmt.where(CaseRow.sop_id == sop)
    if level:
        stmt = stmt.where(CaseRow.level == level)
    if customer:
        stmt = stmt.where(CaseRow.customer_id == customer)
    return list(session.scalars(stmt.order_by(CaseRow.updated_at.desc(), CaseRow.id).limit(limit)))


def case_timeline(session: Session, case_id: str) -> list[AuditRow]:
    """The case's audit trail in order (the timeline ``careflow case show`` prints)."""
    return list(session.scalars(select(AuditRow).where(AuditRow.case_id == case_id)
                                .order_by(AuditRow.seq)))


def case_events(session: Session, case_id: str) -> list[CaseEventRow]:
    """Every input of the case: applied (by seq), then rejected and pending (by arrival)."""
    return list(session.scalars(select(CaseEventRow).where(CaseEventRow.case_id == case_id)
                                .order_by(CaseEventRow.id)))


def case_timers(session: Session, case_id: str) -> list[TimerRow]:
    return list(session.scalars(select(TimerRow).where(TimerRow.case_id == case_id)
                                .order_by(TimerRow.due_at)))


@dataclass(frozen=True, slots=True)
class CaseCounts:
    by_status: dict[str, int]
    runnable: int


def case_counts(session: Session) -> CaseCounts:
    rows: list[Any] = session.execute(
        select(CaseRow.status, func.count()).group_by(CaseRow.status)).all()
    runnable = session.scalar(select(func.count()).where(CaseRow.runnable.is_(True))) or 0
    return CaseCounts({r[0]: int(r[1]) for r in rows}, int(runnable))


@dataclass(frozen=True, slots=True)
class BreachingClock:
    """An open SLA clock whose breach is due within a window (or already overdue)."""

    case_id: str
    clock: str
    metric: str
    due_at: Any
    level: str | None
    sop_id: str


def clocks_breaching_within(session: Session, seconds: int, *,
                            now: Any = None) -> list[BreachingClock]:
    """Open clocks not yet breached whose breach is due by ``now + seconds``, soonest first.

    A running clock arms one rung at a time (engine.sla.next_timers), and every rung before
    the breach -- its warnings -- is due before it; so a clock breaching within the window
    has a pending ``sla_warning`` or ``sla_breach`` timer due within it. Those rows (found
    through the (status, due_at) index) are the candidates; the breach instant is the
    clock's own ``due_at``. The cost follows the number of clocks in the window, not the
    number of cases. ``now`` defaults to the wall clock (an operator's query at the edge).
    """
    from datetime import UTC, datetime, timedelta

    at = now or datetime.now(UTC)
    horizon = at + timedelta(seconds=seconds)
    rows = session.execute(
        select(TimerRow.case_id, TimerRow.payload, CaseRow.level, CaseRow.sop_id, CaseRow.state)
        .join(CaseRow, CaseRow.id == TimerRow.case_id)
        .where(TimerRow.status == "pending", TimerRow.kind.in_(("sla_warning", "sla_breach")),
               TimerRow.due_at <= horizon, CaseRow.status == "open")).all()
    found: dict[tuple[str, str], BreachingClock] = {}
    for case_id, payload, level, sop_id, state in rows:
        name = str((payload or {}).get("clock", "?"))
        clock_state = (((state or {}).get("clocks") or {}).get(name) or {}).get("state") or {}
        due_text = clock_state.get("due_at")
        if not due_text or (case_id, name) in found:
            continue
        due_at = datetime.fromisoformat(due_text)
        if due_at <= horizon:
            found[(case_id, name)] = BreachingClock(case_id, name, str(clock_state.get("metric", "")),
                                                    due_at, level, sop_id)
    return sorted(found.values(), key=lambda c: (c.due_at, c.case_id))
