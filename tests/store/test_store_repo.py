"""Executable spec of the case store: pending inputs, claims and leases, fencing, timers,
tasks with optimistic locking, the outbox key, the audit hash chain (SQLite file and PG)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.errors import RunError, TaskConflict
from engine.interpreter import types as t
from engine.store import audit, cases, claims, tasks
from engine.store.apply import AppliedEvent, CaseAdvance, commit_advances
from engine.store.models import (
    AuditRecordRow,
    AuditRow,
    CaseEventRow,
    CaseRow,
    CaseStateRow,
    HumanTaskRow,
    OutboxRow,
    SopVersionRow,
    TimerRow,
)

HASH = "h" * 64


class _Codec:
    """The codec port of commit_advances, reduced to what these rows need."""

    @staticmethod
    def command_to_json(cmd: object) -> dict[str, object]:
        return {"type": type(cmd).__name__, "body": getattr(cmd, "body", "")}

    @staticmethod
    def event_to_json(ev: object) -> dict[str, object]:
        return {"type": type(ev).__name__}


def _sop(session: Session, now) -> None:  # noqa: ANN001
    session.add(SopVersionRow(hash=HASH, sop_id="demo", version="1.0.0", source="kind: sop",
                              created_at=now))
    session.flush()


def _start(engine: sa.Engine, now, n: int = 3) -> list[str]:  # noqa: ANN001
    with Session(engine) as s, s.begin():
        _sop(s, now)
        return cases.start_cases(s, [cases.NewCase("demo", HASH, "1.0.0", {"type": "CaseStarted"},
                                                   case_id=f"C{i}") for i in range(n)], now=now)


def _advance(claimed: claims.ClaimedCase, pending: list, commands: tuple = ()) -> CaseAdvance:  # noqa: ANN001
    state = t.CaseState(case_id=claimed.id, sop_id="demo", sop_version="1.0.0", sop_hash=HASH,
                        seq=claimed.seq + len(pending), level="L1")
    events = tuple(AppliedEvent(p.id, claimed.seq + i + 1, p.kind, p.event, p.actor)
                   for i, p in enumerate(pending))
    return CaseAdvance(claimed.id, claimed.version, state, {"seq": state.seq}, events, commands,
                       tuple(state.seq for _ in commands), claimed.audit_seq, claimed.audit_hash)


def test_pending_inputs_are_claimed_once_and_applied_in_order(db, clock) -> None:  # noqa: ANN001
    now = clock.now()
    ids = _start(db, now)
    with Session(db) as s, s.begin():
        cases.post_event(s, "C1", "Signal", {"type": "Signal", "n": 1}, now=now, actor="x")
        cases.post_event(s, "C1", "Signal", {"type": "Signal", "n": 2}, now=now, actor="x")
    with Session(db) as s, s.begin():
        got = claims.claim_runnable_cases(s, "w1", 10, 30, now)
        pending = cases.pending_events(s, [c.id for c in got])
    assert sorted(c.id for c in got) == ids
    assert [p.kind for p in pending["C1"]] == ["CaseStarted", "Signal", "Signal"]
    assert [p.event.get("n") for p in pending["C1"]] == [None, 1, 2]
    with Session(db) as s, s.begin():  # leased: a second worker gets nothing
        assert claims.claim_runnable_cases(s, "w2", 10, 30, now) == []
    with Session(db) as s, s.begin():
        result = commit_advances(s, [_advance(c, pending[c.id]) for c in got], "w1", now, _Codec)
    assert sorted(result.committed) == ids
    with Session(db) as s:
        rows = s.execute(select(CaseEventRow.case_id, CaseEventRow.seq, CaseEventRow.status)
                         .order_by(CaseEventRow.id)).all()
        assert all(r.status == "applied" for r in rows)
        assert sorted(r.seq for r in rows if r.case_id == "C1") == [1, 2, 3]
        case = s.get(CaseRow, "C1")
        assert (case.seq, case.runnable, case.lease_owner) == (3, False, None)


def test_a_claim_without_states_reads_them_afterwards_without_the_write_lock(db, clock) -> None:  # noqa: ANN001
    from engine.store.db import read_session

    now = clock.now()
    ids = _start(db, now)
    with Session(db) as s, s.begin():  # give one case a state to read back
        s.add(CaseStateRow(case_id="C1", state={"seq": 7, "x": [1]}))
    with Session(db) as s, s.begin():
        leased = claims.claim_runnable_cases(s, "w1", 10, 30, now, with_state=False)
    assert sorted(c.id for c in leased) == ids and all(c.state is None for c in leased)
    with read_session(db) as s, s.begin():
        claimed = claims.with_states(s, leased)
    assert [c.id for c in claimed] == [c.id for c in leased]
    assert {c.id: c.state for c in claimed}["C1"] == {"seq": 7, "x": [1]}
    assert [c.version for c in claimed] == [c.version for c in leased]  # the lease's version
    with Session(db) as s, s.begin():  # leased all the same
        assert claims.claim_runnable_cases(s, "w2", 10, 30, now) == []


def test_an_expired_lease_is_reclaimed_and_the_old_owner_is_fenced_off(db, clock) -> None:  # noqa: ANN001
    now = clock.now()
    _start(db, now, 1)
    with Session(db) as s, s.begin():
        first = claims.claim_runnable_cases(s, "slow", 10, 5, now)
        pending = cases.pending_events(s, ["C0"])
    later = now + timedelta(seconds=6)
    with Session(db) as s, s.begin():
        second = claims.claim_runnable_cases(s, "fast", 10, 5, later)
    assert [c.id for c in second] == ["C0"] and second[0].version == first[0].version + 1
    with Session(db) as s, s.begin():  # the slow worker's commit is skipped, not applied twice
        stale = commit_advances(s, [_advance(first[0], pending["C0"])], "slow", later, _Codec)
    assert stale.stale == ("C0",) and stale.committed == ()
    with Session(db) as s, s.begin():
        done = commit_advances(s, [_advance(second[0], pending["C0"])], "fast", later, _Codec)
    assert done.committed == ("C0",)
    with Session(db) as s:
        assert s.scalar(select(func.count()).select_from(CaseEventRow)
                        .where(CaseEventRow.seq.is_not(None))) == 1


def test_an_input_queued_while_a_worker_runs_the_case_keeps_it_runnable(db, clock) -> None:  # noqa: ANN001
    now = clock.now()
    _start(db, now, 1)
    with Session(db) as s, s.begin():
        got = claims.claim_runnable_cases(s, "w", 10, 30, now)
        pending = cases.pending_events(s, ["C0"])
    lease_end = now + timedelta(seconds=30)
    with Session(db) as s, s.begin():
        cases.post_event(s, "C0", "Signal", {"type": "Signal"}, now=now)
    with Session(db) as s:  # runnable, but due when the lease ends: no other worker takes it
        case = s.get(CaseRow, "C0")
        assert (case.runnable, case.next_run_at) == (True, lease_end)
    with Session(db) as s, s.begin():
        assert claims.claim_runnable_cases(s, "other", 10, 30, now + timedelta(seconds=29)) == []
    with Session(db) as s, s.begin():
        commit_advances(s, [_advance(got[0], pending["C0"])], "w", now, _Codec)
    with Session(db) as s:  # the holder's commit makes it due at once
        case = s.get(CaseRow, "C0")
        assert (case.runnable, case.next_run_at, case.lease_until) == (True, now, None)
        assert len(cases.pending_events(s, ["C0"])["C0"]) == 1


def test_a_claim_moves_the_case_out_of_the_due_range_until_its_lease_ends(db, clock) -> None:  # noqa: ANN001
    """A leased case's next_run_at is its lease's end, so claims and has_runnable never
    walk past other workers' batches; a case whose worker died is due when the lease ends."""
    from engine.runtime.due import _RUNNABLE

    now = clock.now()
    _start(db, now, 3)
    with Session(db) as s, s.begin():
        got = claims.claim_runnable_cases(s, "w", 2, 30, now)
    with Session(db) as s:
        due = dict(s.execute(select(CaseRow.id, CaseRow.next_run_at)).all())
        assert due == {"C0": now + timedelta(seconds=30), "C1": now + timedelta(seconds=30),
                       "C2": now} and [c.id for c in got] == ["C0", "C1"]
    with Session(db) as s, s.begin():
        assert [c.id for c in claims.claim_runnable_cases(s, "w2", 10, 30, now)] == ["C2"]
    later = now + timedelta(seconds=31)  # both workers died: their cases are due again
    with Session(db) as s:
        assert s.execute(_RUNNABLE, {"now": now}).scalar() is False
        assert s.execute(_RUNNABLE, {"now": later}).scalar() is True
    with Session(db) as s, s.begin():
        assert ([c.id for c in claims.claim_runnable_cases(s, "w3", 10, 30, later)]
                == ["C0", "C1", "C2"])


def test_commands_become_rows_in_one_transaction(db, clock) -> None:  # noqa: ANN001
    now = clock.now()
    _start(db, now, 1)
    with Session(db) as s, s.begin():
        got = claims.claim_runnable_cases(s, "w", 10, 30, now)
        pending = cases.pending_events(s, ["C0"])
    cmds = (
        t.Audit("entered", "a", "system", {"x": 1}),
        t.CreateTask("C0:1:1", "verify", "L1", "Verify", outcomes=("ok", "no")),
        t.ScheduleTimer("C0:1:2", "timeout", now + timedelta(hours=4), node="verify"),
        t.ScheduleTimer("C0:1:3", "retry", now + timedelta(hours=1)),
        t.CancelTimer("C0:1:3"),
        t.SendMessage("C0:1:4", "email", None, "hello", to="c@x", idempotency_key="k-1"),
        t.RaiseIncident("send", "boom", 3, "C0:1:5", "C0:1:5"),
        t.Audit("task_created", "verify", "system", {"task": "C0:1:1"}),
    )
    with Session(db) as s, s.begin():
        result = commit_advances(s, [_advance(got[0], pending["C0"], cmds)], "w", now, _Codec)
    assert result.counts["tasks"] == 1 and result.counts["outbox"] == 1
    with Session(db) as s:
        assert s.get(HumanTaskRow, "C0:1:1").outcomes == ["ok", "no"]
        assert {tm.id: tm.status for tm in s.scalars(select(TimerRow))} == {
            "C0:1:2": "pending", "C0:1:3": "cancelled"}
        assert s.scalar(select(OutboxRow.idempotency_key)) == "k-1"
        trail = list(s.scalars(select(AuditRow).order_by(AuditRow.seq)))  # entry by entry
        assert [(a.seq, a.kind, a.detail) for a in trail] == [
            (1, "entered", {"x": 1}), (2, "task_created", {"task": "C0:1:1"})]
        records = list(s.scalars(select(AuditRecordRow).order_by(AuditRecordRow.seq)))
        assert [(r.first_seq, r.seq, r.form) for r in records] == [(1, 2, 1)]  # one step
        assert audit.verify_chain(records) is None
        assert s.get(CaseRow, "C0").audit_hash == records[-1].hash


def test_an_ended_case_leaves_no_pending_timer_or_open_task_and_touches_no_other_case(
        db, clock) -> None:  # noqa: ANN001
    """The store's sweep at a case's end, behind the interpreter's own cancellations; on
    SQLite it searches the ended cases' timers by case (not every pending timer)."""
    now = clock.now()
    _start(db, now, 2)
    with Session(db) as s, s.begin():
        got = {c.id: c for c in claims.claim_runnable_cases(s, "w", 10, 30, now)}
        pending = cases.pending_events(s, ["C0", "C1"])
    def left(c: str) -> tuple[object, ...]:  # a task and a timer the case still has
        return (t.CreateTask(f"{c}:1:1", "verify", "L1", "Verify", outcomes=("ok",)),
                t.ScheduleTimer(f"{c}:1:2", "timeout", now + timedelta(hours=4), node="verify"))

    with Session(db) as s, s.begin():
        commit_advances(s, [_advance(got[c], pending[c], left(c)) for c in ("C0", "C1")], "w",
                        now, _Codec)
    with Session(db) as s, s.begin():
        (c0,) = claims.claim_runnable_cases(s, "w", 10, 30, now, with_state=False) or [None]
    assert c0 is None  # nothing runnable: end C0 through a new lease
    with Session(db) as s, s.begin():
        cases.post_events(s, [("C0", "Signal", {"type": "Signal"}, "customer")], now=now)
        (c0,) = claims.claim_runnable_cases(s, "w", 10, 30, now)
        pending = cases.pending_events(s, ["C0"])
    ended = _advance(c0, pending["C0"], (t.CaseEnded("done", "resolved", "L1"),))
    ended = dataclasses.replace(ended, state=dataclasses.replace(
        ended.state, status=t.CaseStatus.RESOLVED, outcome="done"))
    with Session(db) as s, s.begin():
        commit_advances(s, [ended], "w", now, _Codec)
    with Session(db) as s:
        assert {tm.id: tm.status for tm in s.scalars(select(TimerRow))} == {
            "C0:1:2": "cancelled", "C1:1:2": "pending"}
        assert {tk.id: tk.status for tk in s.scalars(select(HumanTaskRow))} == {
            "C0:1:1": "cancelled", "C1:1:1": "open"}
    if db.dialect.name == "sqlite":
        from engine.store.apply import _statements

        with db.connect() as conn:
            plan = [r[3] for r in conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN " + _statements("sqlite")["end_timers"].format(ids="?, ?"),
                ("C0", "C1"))]
        assert plan == ["SEARCH timers USING INDEX ix_timers_case_id (case_id=?)"]


def test_tampering_with_the_audit_trail_breaks_the_chain(db, clock) -> None:  # noqa: ANN001
    now = clock.now()
    _start(db, now, 1)
    with Session(db) as s, s.begin():
        got = claims.claim_runnable_cases(s, "w", 10, 30, now)
        pending = cases.pending_events(s, ["C0"])
        cmds = tuple(t.Audit("step", f"n{i}", "system", {"i": i}) for i in range(4))
        commit_advances(s, [_advance(got[0], pending["C0"], cmds)], "w", now, _Codec)
    with Session(db) as s, s.begin():
        (record,) = s.scalars(select(AuditRecordRow))
        entries = [dict(e) for e in record.entries]
        entries[2]["detail"] = {"i": 99}  # the third entry of the step's record
        s.execute(sa.update(AuditRecordRow).values(entries=entries))
    with Session(db) as s:
        assert s.scalar(select(AuditRow.detail).where(AuditRow.seq == 3)) == {"i": 99}
        records = s.scalars(select(AuditRecordRow).order_by(AuditRecordRow.seq))
        assert audit.verify_chain(records) == 1


def test_due_timers_fire_exactly_once_with_their_lateness(db, clock) -> None:  # noqa: ANN001
    now = clock.now()
    _start(db, now, 1)
    with Session(db) as s, s.begin():
        s.add_all([TimerRow(id=f"T{i}", case_id="C0", kind="timeout", status="pending",
                            due_at=now + timedelta(minutes=i), created_at=now, payload={})
                   for i in range(10)])
    at = now + timedelta(minutes=4, seconds=30)

    def ev(tid, due, fired):  # noqa: ANN001, ANN202
        return {"type": "TimerFired", "timer_id": tid}

    with Session(db) as s, s.begin():
        fired = claims.claim_due_timers(s, at, 100, worker="w", event_json=ev)
    with Session(db) as s, s.begin():
        again = claims.claim_due_timers(s, at, 100, worker="w", event_json=ev)
    assert [f.id for f in fired] == ["T0", "T1", "T2", "T3", "T4"] and again == []
    assert fired[0].lateness_s == 270.0 and fired[4].lateness_s == 30.0
    with Session(db) as s:
        assert s.get(CaseRow, "C0").runnable
        assert s.get(TimerRow, "T4").lateness_s == 30.0
        pending = cases.pending_events(s, ["C0"])["C0"]
        assert [p.event.get("timer_id") for p in pending if p.kind == "TimerFired"] == [
            f"T{i}" for i in range(5)]


def _task(engine: sa.Engine, now) -> None:  # noqa: ANN001
    _start(engine, now, 1)
    with Session(engine) as s, s.begin():
        s.add(HumanTaskRow(id="K1", case_id="C0", node="verify", level="L1", title="Verify",
                           status="open", outcomes=["ok"], skills=[], created_at=now))


def test_completing_a_completed_task_is_a_conflict_naming_the_winner(db, clock) -> None:  # noqa: ANN001
    now = clock.now()
    _task(db, now)
    with Session(db) as s, s.begin():
        tasks.complete_task(s, "K1", outcome="ok", fields={}, agent="ann", knowledge=None,
                            event_json={"type": "TaskCompleted"}, now=now)
    with Session(db) as s, s.begin(), pytest.raises(TaskConflict, match="already completed by ann"):
        tasks.complete_task(s, "K1", outcome="ok", fields={}, agent="bob", knowledge=None,
                            event_json={"type": "TaskCompleted"}, now=now)
    with Session(db) as s:
        assert s.get(HumanTaskRow, "K1").version == 2


def test_a_claimed_task_belongs_to_its_agent(db, clock) -> None:  # noqa: ANN001
    now = clock.now()
    _task(db, now)
    with Session(db) as s, s.begin():
        tasks.claim_task(s, "K1", "ann", now=now)
    with Session(db) as s, s.begin(), pytest.raises(TaskConflict, match="claimed by ann"):
        tasks.complete_task(s, "K1", outcome="ok", fields={}, agent="bob", knowledge=None,
                            event_json={}, now=now)


def test_unknown_case_and_task_are_clear_errors(db, clock) -> None:  # noqa: ANN001
    with Session(db) as s, pytest.raises(RunError, match="no such case"):
        cases.post_event(s, "nope", "Signal", {}, now=clock.now())
    with Session(db) as s, pytest.raises(RunError, match="no such task 'nope'"):
        tasks.get_task(s, "nope")


def test_outbox_rows_are_deduplicated_by_idempotency_key(db, clock) -> None:  # noqa: ANN001
    now = clock.now()
    _start(db, now, 2)
    with Session(db) as s, s.begin():
        got = claims.claim_runnable_cases(s, "w", 10, 30, now)
        pending = cases.pending_events(s, [c.id for c in got])
        advs = [_advance(c, pending[c.id], (t.SendMessage(f"m-{c.id}", "email", None, "b",
                                                          idempotency_key="same"),)) for c in got]
        commit_advances(s, advs, "w", now, _Codec)
    with Session(db) as s:
        assert s.scalar(select(func.count()).select_from(OutboxRow)) == 1


def test_a_commit_writes_exactly_the_metadata_that_changed(db, clock) -> None:  # noqa: ANN001
    now = clock.now()
    _start(db, now, 2)
    with Session(db) as s, s.begin():
        got = {c.id: c for c in claims.claim_runnable_cases(s, "w", 10, 30, now)}
        pending = cases.pending_events(s, list(got))
    first = _advance(got["C0"], pending["C0"])  # level None -> L1: the first commit sets it all
    ended = _advance(got["C1"], pending["C1"])
    ended = dataclasses.replace(ended, state=dataclasses.replace(
        ended.state, status=t.CaseStatus.RESOLVED, outcome="done"))
    with Session(db) as s, s.begin():
        commit_advances(s, [first, ended], "w", now, _Codec)
    with Session(db) as s, s.begin():  # C0 again: only its priority changes
        cases.post_event(s, "C0", "Signal", {"type": "Signal"}, now=now, actor="x")
    with Session(db) as s, s.begin():
        (again,) = claims.claim_runnable_cases(s, "w", 10, 30, now)
        later = _advance(again, cases.pending_events(s, ["C0"])["C0"])
    assert again.meta == ("open", "L1", "normal", "standard", None, None)
    later = dataclasses.replace(later, state=dataclasses.replace(later.state, priority="high"),
                                claimed_meta=again.meta)
    with Session(db) as s, s.begin():
        commit_advances(s, [later], "w", now, _Codec)
    with Session(db) as s:
        c0, c1 = s.get(CaseRow, "C0"), s.get(CaseRow, "C1")
        assert (c0.status, c0.level, c0.priority, c0.outcome, c0.ended_at) == (
            "open", "L1", "high", None, None)
        assert (c1.status, c1.level, c1.outcome, c1.ended_at) == ("resolved", "L1", "done", now)
        assert not c0.runnable and c0.lease_owner is None and c0.seq == later.state.seq


def test_every_command_type_is_written_or_carried_out_by_the_runtime() -> None:
    import typing

    from engine.store import apply

    runtime_only = {t.RunAction, t.StartSubCase, t.Audit}  # (audit rows have their own path)
    assert apply._ROW_COMMANDS | runtime_only == set(typing.get_args(t.Command))
