"""Executable spec of four-eyes proposals in the store (SQLite file and PostgreSQL): a
proposal waits on the task row, one confirmation completes it and queues the case input,
a rejection opens it again, and of concurrent decisions exactly one wins."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.errors import TaskConflict
from engine.store import cases, tasks
from engine.store.models import CaseEventRow, HumanTaskRow, SopVersionRow

HASH = "f" * 64


def _setup(engine: sa.Engine, now, n: int = 1) -> None:  # noqa: ANN001
    with Session(engine) as s, s.begin():
        s.add(SopVersionRow(hash=HASH, sop_id="refund", version="1.0.0", source="kind: sop",
                            created_at=now))
        s.flush()
        cases.start_cases(s, [cases.NewCase("refund", HASH, "1.0.0", {"type": "CaseStarted"},
                                            case_id="C0")], now=now)
        s.add_all(HumanTaskRow(id=f"K{i}", case_id="C0", node="pay", level="L2", title="Pay",
                               status="open", outcomes=["paid"], skills=[], created_at=now)
                  for i in range(n))


def _propose(engine: sa.Engine, task_id: str, now, agent: str = "tara") -> None:  # noqa: ANN001
    with Session(engine) as s, s.begin():
        tasks.propose_task(s, task_id, outcome="paid", fields={"note": "ok"}, agent=agent,
                           knowledge={"kind": "none", "reason": "routine"}, now=now)


def _row(engine: sa.Engine, task_id: str) -> HumanTaskRow:
    with Session(engine) as s:
        row = s.get(HumanTaskRow, task_id)
        assert row is not None
        return row


def _completions(engine: sa.Engine) -> list[tuple[str | None, dict]]:
    with Session(engine) as s:
        return [(r.actor, r.event) for r in s.scalars(
            select(CaseEventRow).where(CaseEventRow.kind == "TaskCompleted")
            .order_by(CaseEventRow.id))]


def test_a_proposal_waits_on_the_row_and_does_not_reach_the_case(db, clock) -> None:  # noqa: ANN001
    now = clock.now()
    _setup(db, now)
    _propose(db, "K0", now)
    row = _row(db, "K0")
    assert (row.status, row.proposed_outcome, row.proposed_by, row.assignee) == (
        "proposed", "paid", "tara", "tara")
    assert row.proposed_fields == {"note": "ok"}
    assert row.proposed_knowledge == {"kind": "none", "reason": "routine"}
    assert row.proposed_at == now and row.outcome is None and row.version == 2
    assert _completions(db) == []


def test_a_confirmation_completes_the_task_with_the_proposal(db, clock) -> None:  # noqa: ANN001
    now = clock.now()
    _setup(db, now)
    _propose(db, "K0", now)
    with Session(db) as s, s.begin():
        tasks.confirm_proposal(s, "K0", agent="tom", event_json={"type": "TaskCompleted",
                                                                 "confirmed_by": "tom"}, now=now)
    row = _row(db, "K0")
    assert (row.status, row.outcome, row.completed_by, row.confirmed_by) == (
        "completed", "paid", "tara", "tom")
    assert row.fields == {"note": "ok"} and row.knowledge == {"kind": "none", "reason": "routine"}
    assert _completions(db) == [("tom", {"type": "TaskCompleted", "confirmed_by": "tom"})]
    with Session(db) as s, s.begin(), pytest.raises(TaskConflict,
                                                    match="already completed by tara, confirmed by tom"):
        tasks.confirm_proposal(s, "K0", agent="tim", event_json={}, now=now)


def test_a_rejection_opens_the_task_again_and_keeps_what_was_rejected(db, clock) -> None:  # noqa: ANN001
    now = clock.now()
    _setup(db, now)
    _propose(db, "K0", now)
    with Session(db) as s, s.begin():
        tasks.reject_proposal(s, "K0", agent="tom", reason="wrong account", now=now)
    row = _row(db, "K0")
    assert (row.status, row.assignee, row.proposed_outcome, row.proposed_by) == (
        "open", None, None, None)
    assert row.proposed_fields is None and row.proposed_at is None
    assert row.rejection == {"outcome": "paid", "proposed_by": "tara", "by": "tom",
                             "at": now.isoformat(), "reason": "wrong account"}
    with Session(db) as s, s.begin(), pytest.raises(
            TaskConflict, match="is open and holds no proposed outcome .*rejected by tom"):
        tasks.confirm_proposal(s, "K0", agent="tim", event_json={}, now=now)
    _propose(db, "K0", now, agent="tim")  # anyone allowed may propose again
    assert _row(db, "K0").proposed_by == "tim"
    assert _completions(db) == []


@pytest.mark.parametrize("act", [
    lambda s, now: tasks.complete_task(s, "K0", outcome="paid", fields={}, agent="tim",
                                       knowledge=None, event_json={}, now=now),
    lambda s, now: tasks.claim_task(s, "K0", "tim", now=now),
    lambda s, now: tasks.propose_task(s, "K0", outcome="paid", fields={}, agent="tim",
                                      knowledge=None, now=now),
    lambda s, now: tasks.mark_escalated(s, "K0", "tim", {}, now=now),
], ids=["complete", "claim", "propose", "escalate"])
def test_a_proposed_task_waits_for_its_decision(db, clock, act: Callable) -> None:  # noqa: ANN001
    now = clock.now()
    _setup(db, now)
    _propose(db, "K0", now)
    with Session(db) as s, s.begin(), pytest.raises(TaskConflict, match="already proposed by tara"):
        act(s, now)


def test_proposed_tasks_are_in_the_queue(db, clock) -> None:  # noqa: ANN001
    now = clock.now()
    _setup(db, now, 2)
    _propose(db, "K1", now)
    with Session(db) as s:
        assert sorted(r.id for r in tasks.list_tasks(s)) == ["K0", "K1"]
        assert [r.id for r in tasks.list_tasks(s, status="proposed")] == ["K1"]


def _race(engine: sa.Engine, n: int, deciders: dict[str, Callable[[Session, str], object]]
          ) -> dict[str, list[str]]:
    """Each decider acts on task K<i> at the same moment, n times; who won each round."""
    barrier = threading.Barrier(len(deciders), timeout=30)
    results: dict[str, list[str]] = {name: [] for name in deciders}
    errors: list[BaseException] = []

    def run(name: str) -> None:
        try:
            for i in range(n):
                barrier.wait()
                try:
                    with Session(engine) as s, s.begin():
                        deciders[name](s, f"K{i}")
                    results[name].append("won")
                except TaskConflict as exc:
                    assert f"K{i}" in str(exc)
                    results[name].append("lost")
        except BaseException as exc:  # noqa: BLE001 -- reported by the main thread
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(name,)) for name in deciders]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors
    return results


N = 40


def test_of_two_concurrent_confirmations_exactly_one_wins(db, clock) -> None:  # noqa: ANN001
    now = clock.now()
    _setup(db, now, N)
    for i in range(N):
        _propose(db, f"K{i}", now)

    def confirm(agent: str) -> Callable[[Session, str], object]:
        return lambda s, task_id: tasks.confirm_proposal(
            s, task_id, agent=agent, event_json={"type": "TaskCompleted", "by": agent}, now=now)

    results = _race(db, N, {"tom": confirm("tom"), "tim": confirm("tim")})
    assert all((a == "won") != (b == "won") for a, b in zip(results["tom"], results["tim"],
                                                            strict=True))
    with Session(db) as s:
        rows = {r.id: r for r in s.scalars(select(HumanTaskRow))}
        queued = s.scalar(select(func.count()).select_from(CaseEventRow)
                          .where(CaseEventRow.kind == "TaskCompleted"))
    assert queued == N  # one case input per task, never two
    for i in range(N):
        winner = "tom" if results["tom"][i] == "won" else "tim"
        assert (rows[f"K{i}"].status, rows[f"K{i}"].confirmed_by) == ("completed", winner)
        assert rows[f"K{i}"].version == 3  # proposed, then confirmed once


def test_a_confirmation_and_a_rejection_at_the_same_time_one_wins(db, clock) -> None:  # noqa: ANN001
    now = clock.now()
    _setup(db, now, N)
    for i in range(N):
        _propose(db, f"K{i}", now)
    results = _race(db, N, {
        "tom": lambda s, task_id: tasks.confirm_proposal(
            s, task_id, agent="tom", event_json={"type": "TaskCompleted"}, now=now),
        "tim": lambda s, task_id: tasks.reject_proposal(s, task_id, agent="tim", reason="no",
                                                        now=now)})
    with Session(db) as s:
        rows = {r.id: r for r in s.scalars(select(HumanTaskRow))}
        queued = s.scalar(select(func.count()).select_from(CaseEventRow)
                          .where(CaseEventRow.kind == "TaskCompleted"))
    confirmed = [i for i in range(N) if results["tom"][i] == "won"]
    assert all((results["tom"][i] == "won") != (results["tim"][i] == "won") for i in range(N))
    assert queued == len(confirmed)
    for i in range(N):
        assert rows[f"K{i}"].status == ("completed" if i in confirmed else "open")
