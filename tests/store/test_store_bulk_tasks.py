"""Executable spec of ``complete_tasks``: many completions in a few statements, with the
same refusals and the same exactly-one-winner rule as ``complete_task`` (SQLite file and PG)."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import RunError, TaskConflict
from engine.store import cases, tasks
from engine.store.models import CaseEventRow, CaseRow, HumanTaskRow, SopVersionRow

HASH = "b" * 64


def _tasks(engine: sa.Engine, now, n: int) -> list[str]:  # noqa: ANN001
    with Session(engine) as s, s.begin():
        s.add(SopVersionRow(hash=HASH, sop_id="demo", version="1.0.0", source="kind: sop",
                            created_at=now))
        s.flush()
        cases.start_cases(s, [cases.NewCase("demo", HASH, "1.0.0", {"type": "CaseStarted"},
                                            case_id=f"C{i}") for i in range(n)], now=now)
        s.execute(sa.update(CaseRow).values(runnable=False))
        for i in range(n):
            s.add(HumanTaskRow(id=f"K{i}", case_id=f"C{i}", node="verify", level="L1",
                               title="Verify", status="open", outcomes=["ok"], skills=[],
                               created_at=now))
    return [f"K{i}" for i in range(n)]


def _done(task_id: str, agent: str = "ann") -> tasks.TaskCompletion:
    return tasks.TaskCompletion(task_id, "ok", {"note": task_id}, agent, None,
                                {"type": "TaskCompleted", "task_id": task_id})


def test_bulk_completion_completes_every_task_and_queues_its_input(db, clock) -> None:  # noqa: ANN001
    now = clock.now()
    ids = _tasks(db, now, 3)
    with Session(db) as s, s.begin():
        assert tasks.complete_tasks(s, [_done(i) for i in ids], now=now) == ["C0", "C1", "C2"]
    with Session(db) as s:
        rows = s.scalars(select(HumanTaskRow).order_by(HumanTaskRow.id)).all()
        assert [(r.status, r.outcome, r.fields, r.completed_by, r.assignee, r.version)
                for r in rows] == [("completed", "ok", {"note": i}, "ann", "ann", 2) for i in ids]
        assert all(r.completed_at == now for r in rows)
        events = s.scalars(select(CaseEventRow).where(CaseEventRow.kind == "TaskCompleted")
                           .order_by(CaseEventRow.id)).all()
        assert [(e.case_id, e.event["task_id"], e.actor, e.status) for e in events] == [
            (f"C{i}", f"K{i}", "ann", "pending") for i in range(3)]
        assert all(s.scalars(select(CaseRow.runnable)).all())


def test_one_refusal_applies_none_of_the_batch(db, clock) -> None:  # noqa: ANN001
    now = clock.now()
    ids = _tasks(db, now, 3)
    with Session(db) as s, s.begin():
        tasks.complete_task(s, "K1", outcome="ok", fields={}, agent="bob", knowledge=None,
                            event_json={"type": "TaskCompleted"}, now=now)
    with Session(db) as s, s.begin(), pytest.raises(TaskConflict, match="already completed by bob"):
        tasks.complete_tasks(s, [_done(i) for i in ids], now=now)
    with Session(db) as s, s.begin():
        tasks.claim_task(s, "K2", "cid", now=now)
    with Session(db) as s, s.begin(), pytest.raises(TaskConflict, match="claimed by cid"):
        tasks.complete_tasks(s, [_done("K0"), _done("K2")], now=now)
    with Session(db) as s, s.begin(), pytest.raises(TaskConflict, match="twice"):
        tasks.complete_tasks(s, [_done("K0"), _done("K0")], now=now)
    with Session(db) as s, s.begin(), pytest.raises(RunError, match="no such task 'nope'"):
        tasks.complete_tasks(s, [_done("K0"), _done("nope")], now=now)
    with Session(db) as s:
        assert s.get(HumanTaskRow, "K0").status == "open"
        assert s.get(HumanTaskRow, "K0").version == 1
        assert s.scalar(select(sa.func.count()).select_from(CaseEventRow)
                        .where(CaseEventRow.kind == "TaskCompleted")) == 1


def test_a_concurrent_winner_makes_the_bulk_completion_a_conflict(db, clock, request) -> None:  # noqa: ANN001
    if "sqlite" in request.node.name:
        pytest.skip("SQLite serialises writers with BEGIN IMMEDIATE: no interleaving to race")
    now = clock.now()
    ids = _tasks(db, now, 2)
    seen, errors = threading.Event(), []

    def bulk() -> None:
        try:
            with Session(db) as s, s.begin():
                seen.wait(10)
                tasks.complete_tasks(s, [_done(i) for i in ids], now=now)
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    with Session(db) as s, s.begin():
        tasks.complete_task(s, "K1", outcome="ok", fields={}, agent="bob", knowledge=None,
                            event_json={"type": "TaskCompleted"}, now=now)
        worker = threading.Thread(target=bulk)
        worker.start()
        # the bulk's SELECT sees K1 still open (bob has not committed); its UPDATE then
        # waits for bob's row lock and, once bob commits, matches no row for K1
        seen.set()
        time.sleep(1.0)
    worker.join(20)
    assert len(errors) == 1 and isinstance(errors[0], TaskConflict)
    assert "K1" in str(errors[0]) and "K0" not in str(errors[0])
    with Session(db) as s:
        assert s.get(HumanTaskRow, "K0").status == "open"
        assert s.get(HumanTaskRow, "K1").completed_by == "bob"
