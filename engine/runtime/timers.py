"""The timer sweep (pure Python, no Prefect): due timers become TimerFired inputs.

``fire_due(engine, clock)`` claims timers due at ``clock.now()`` in batches through the
``(status, due_at)`` index -- the cost grows with the number due, not the number pending --
and turns each into a pending ``TimerFired`` input of its case in the same transaction
(exactly once, even with several sweepers: SKIP LOCKED on PostgreSQL, BEGIN IMMEDIATE on
SQLite). Misfire policy: a timer that was due while no worker ran fires once on catch-up,
late, with ``lateness_s`` recorded on the timer row and, from one second on, a
``timer_misfire`` entry on the case's audit trail (engine.store.claims.MISFIRE_POLICY).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from engine.clock import Clock
from engine.interpreter import codec
from engine.interpreter.types import TimerFired
from engine.store.claims import claim_due_timers

__all__ = ["SweepReport", "fire_due", "timer_fired_json"]


def timer_fired_json(timer_id: str, due_at: datetime, fired_at: datetime) -> object:
    return codec.event_to_json(TimerFired(timer_id=timer_id, due_at=due_at, fired_at=fired_at))


@dataclass(frozen=True, slots=True)
class SweepReport:
    fired: int
    max_lateness_s: float
    batches: int


def fire_due(engine: Engine, clock: Clock, *, batch: int = 1000, worker: str = "sweeper",
             max_batches: int | None = None) -> SweepReport:
    """Fire every timer due now (in batches of ``batch``, each its own transaction)."""
    now = clock.now()
    fired = batches = 0
    late = 0.0
    while max_batches is None or batches < max_batches:
        with Session(engine) as session, session.begin():
            got = claim_due_timers(session, now, batch, worker=worker, event_json=timer_fired_json)
        if not got:
            break
        batches += 1
        fired += len(got)
        late = max(late, max(f.lateness_s for f in got))
        if len(got) < batch:
            break
    return SweepReport(fired, late, batches)
