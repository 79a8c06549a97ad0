"""Helpers of the SLA engine tests: ``Sim`` (a runtime on a SimulatedClock) and its queries.

Everything is real: the SOPs in ``sops/`` (with their own levels, 9-17 calendar and SLA
policies) are loaded by the library loader, cases live in a SQLite file with the full
schema, and ``Sim.run()`` is ``run_until_idle(use_prefect=False)`` -- the timer sweep, the
advance loop and the outbox dispatch -- at the simulated clock's ``now``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from engine.clock import SimulatedClock
from engine.runtime import ops
from engine.runtime.registry import Runtime
from engine.runtime.worker import IdleReport, run_until_idle
from engine.store.models import AuditRow, CaseRow, HumanTaskRow, OutboxRow, TimerRow

SOPS = Path(__file__).resolve().parent / "sops"
#: Monday 2026-03-02 09:00 UTC, the start of a business day of calendar office_9_17
MONDAY_9 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """An instant in March 2026, UTC (2 = Monday, 6 = Friday, 9 = next Monday)."""
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


@dataclass
class Sim:
    """A runtime on a simulated clock plus the queries the tests assert on."""

    rt: Runtime
    clock: SimulatedClock

    def run(self) -> IdleReport:
        return run_until_idle(runtime=self.rt, use_prefect=False)

    def run_at(self, when: datetime) -> IdleReport:
        self.clock.set(when)
        return self.run()

    def start(self, sop: str, priority: str | None = "normal", **data: Any) -> str:
        case_id = ops.start_case(self.rt, sop, data, priority=priority)
        self.run()
        return case_id

    def task(self, case_id: str, node: str) -> HumanTaskRow:
        with Session(self.rt.engine) as s:
            rows = s.scalars(sa.select(HumanTaskRow).where(HumanTaskRow.case_id == case_id,
                                                           HumanTaskRow.node == node)).all()
            open_rows = [r for r in rows if r.status not in ("completed", "cancelled")]
            assert len(open_rows) == 1, f"open tasks of {node}: {[r.status for r in rows]}"
            return open_rows[0]

    def complete(self, case_id: str, node: str, outcome: str, when: datetime) -> None:
        self.clock.set(when)
        ops.complete_task(self.rt, self.task(case_id, node).id, outcome, {}, agent="agent-1")
        self.run()

    def event(self, case_id: str, name: str, when: datetime, **payload: Any) -> None:
        self.clock.set(when)
        ops.send_event(self.rt, case_id, name, payload)
        self.run()

    def case(self, case_id: str) -> CaseRow:
        with Session(self.rt.engine) as s:
            row = s.get(CaseRow, case_id)
            assert row is not None
            return row

    def clock_state(self, case_id: str, name: str) -> dict[str, Any]:
        """The engine.sla JSON of clock ``name`` as stored in the case state."""
        state = self.case(case_id).state
        return dict(state["clocks"][name]["state"])

    def timers(self, case_id: str, status: str | None = None) -> list[TimerRow]:
        with Session(self.rt.engine) as s:
            q = sa.select(TimerRow).where(TimerRow.case_id == case_id)
            if status is not None:
                q = q.where(TimerRow.status == status)
            return list(s.scalars(q.order_by(TimerRow.due_at, TimerRow.id)).all())

    def audit(self, case_id: str, kind: str | None = None) -> list[AuditRow]:
        with Session(self.rt.engine) as s:
            q = sa.select(AuditRow).where(AuditRow.case_id == case_id)
            if kind is not None:
                q = q.where(AuditRow.kind == kind)
            return list(s.scalars(q.order_by(AuditRow.seq)).all())

    def outbox(self, case_id: str) -> list[OutboxRow]:
        with Session(self.rt.engine) as s:
            q = sa.select(OutboxRow).where(OutboxRow.case_id == case_id)
            return list(s.scalars(q.order_by(OutboxRow.created_at, OutboxRow.id)).all())
