"""R5: every item delivered 3x, concurrently, by 4 workers -> exactly one inbox row and one
case per item (SQLite file; each worker its own connection and transactions)."""

from __future__ import annotations

import random
import threading
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from connectors.base import ChannelEvent, ThreadRefs
from engine.clock import SimulatedClock
from engine.intake.pipeline import IntakeStatus, ingest
from engine.store.models import CaseEventRow, CaseRow, InboxRow

ITEMS = 12
COPIES = 3
WORKERS = 4


def test_concurrent_redelivery_is_processed_exactly_once(db: Engine, library: Any,
                                                         clock: SimulatedClock) -> None:
    events = [ChannelEvent(channel="email", external_id=f"<item-{i}@x>", direction="inbound",
                           occurred_at=clock.now(), customer={"email": f"p{i}@example.org"},
                           thread=ThreadRefs(message_id=f"<item-{i}@x>"), subject="Help",
                           body=f"item {i}") for i in range(ITEMS)]
    work = [e for e in events for _ in range(COPIES)]
    random.Random(7).shuffle(work)
    chunks = [work[w::WORKERS] for w in range(WORKERS)]
    results: list[Any] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(WORKERS)

    def worker(items: list[ChannelEvent]) -> None:
        try:
            barrier.wait()
            for ev in items:
                with Session(db, expire_on_commit=False) as s, s.begin():
                    results.append(ingest(s, ev, library=library, clock=clock))
        except BaseException as exc:  # noqa: BLE001 -- reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(c,)) for c in chunks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    statuses = [r.status for r in results]
    assert statuses.count(IntakeStatus.STARTED) == ITEMS
    assert statuses.count(IntakeStatus.DUPLICATE) == ITEMS * (COPIES - 1)
    with Session(db) as s:
        assert s.scalar(select(func.count()).select_from(InboxRow)) == ITEMS
        assert s.scalar(select(func.count()).select_from(CaseRow)) == ITEMS
        assert s.scalar(select(func.count()).select_from(CaseEventRow)) == ITEMS
