"""Concurrency as executable spec (reliability R3, R4, R7): two agents on one task, four
worker processes on one PostgreSQL, timers after an engine-down window with 4 sweepers."""

from __future__ import annotations

import multiprocessing
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.clock import SimulatedClock
from engine.errors import TaskConflict
from engine.interpreter import codec
from engine.interpreter import types as t
from engine.runtime.registry import unregister_runtime
from engine.runtime.timers import fire_due
from engine.runtime.due import has_work
from engine.runtime.worker import make_runtime, run_until_idle
from engine.store import cases as case_store
from engine.store import tasks as task_store
from engine.store.models import AuditRow, CaseEventRow, CaseRow, HumanTaskRow, TimerRow

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SELF = {"request_text": "I forgot my password, send a reset link", "email": "a@example.com"}
LOCKED = {"request_text": "locked out, no access to my recovery e-mail", "email": "b@example.com"}


def _new_cases(rt, n: int) -> list[str]:  # noqa: ANN001
    compiled = rt.sops.by_id("password_reset")
    started = [codec.event_to_json(t.CaseStarted(data=SELF if i % 10 < 6 else LOCKED))
               for i in range(n)]
    with Session(rt.engine) as s, s.begin():
        return case_store.start_cases(s, [
            case_store.NewCase(compiled.id, compiled.hash, compiled.version, ev,
                               case_id=f"K{i:05d}") for i, ev in enumerate(started)], now=T0)


def test_two_agents_completing_the_same_task_exactly_one_wins_1000_times(rt_pg_url, rt_pg_engine,
                                                                         library_sops) -> None:  # noqa: ANN001
    from store_helpers import wipe

    from engine.store.db import make_engine

    wipe(rt_pg_engine)
    # commits need not wait for the disk here: this is about locking, not durability
    engine = make_engine(rt_pg_url, connect_args={"options": "-c synchronous_commit=off"})
    rt = make_runtime(engine, SimulatedClock(T0), sops=library_sops)
    try:
        _new_cases(rt, 1)
        n = 1000
        with Session(engine) as s, s.begin():
            s.execute(sa.insert(HumanTaskRow), [
                {"id": f"T{i}", "case_id": "K00000", "node": "verify_identity", "level": "L1",
                 "title": "t", "status": "open", "outcomes": ["verified"], "skills": [],
                 "version": 1, "created_at": T0} for i in range(n)])
        barrier = threading.Barrier(2, timeout=30)
        results: dict[str, list[str]] = {"ann": [], "bob": []}
        errors: list[BaseException] = []

        def agent(name: str) -> None:
            try:
                trials(name)
            except BaseException as exc:  # noqa: BLE001 -- reported by the main thread
                errors.append(exc)
                barrier.abort()

        def trials(name: str) -> None:
            for i in range(n):
                barrier.wait()
                try:
                    with Session(engine) as s, s.begin():
                        task_store.complete_task(s, f"T{i}", outcome="verified", fields={},
                                                 agent=name, knowledge=None,
                                                 event_json={"type": "TaskCompleted"}, now=T0)
                    results[name].append("won")
                except TaskConflict as exc:
                    assert f"T{i}" in str(exc)
                    results[name].append("lost")

        threads = [threading.Thread(target=agent, args=(a,)) for a in results]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert not errors, errors
        wins = [a == "won" for a in results["ann"]], [b == "won" for b in results["bob"]]
        assert all(x != y for x, y in zip(*wins, strict=True))  # exactly one winner per trial
        with Session(engine) as s:
            assert set(s.scalars(select(HumanTaskRow.version))) == {2}
            completions = s.scalar(select(func.count()).select_from(CaseEventRow)
                                   .where(CaseEventRow.kind == "TaskCompleted"))
        assert completions == n
    finally:
        unregister_runtime(rt.key)
        engine.dispose()


def _worker_process(url: str, sop_dir: str, name: str, out: multiprocessing.Queue) -> None:
    from engine.runtime.sops import SopProvider

    rt = make_runtime(url, SimulatedClock(T0), sops=SopProvider(sop_dir), worker=name)
    done = 0
    while True:
        report = rt.advancer.run_batch(25, claim_next=True)  # (as a flow run that goes on)
        done += report.committed
        if not report.claimed and not has_work(rt):
            break
    out.put((name, done))
    rt.engine.dispose()


@pytest.mark.slow
def test_four_worker_processes_advance_2000_cases_exactly_once(rt_pg_url, rt_pg_engine,
                                                               library_sops) -> None:  # noqa: ANN001
    from store_helpers import wipe

    wipe(rt_pg_engine)
    rt = make_runtime(rt_pg_engine, SimulatedClock(T0), sops=library_sops)
    try:
        ids = _new_cases(rt, 2000)
    finally:
        unregister_runtime(rt.key)
    rt_pg_engine.dispose()
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    procs = [ctx.Process(target=_worker_process,
                         args=(rt_pg_url, str(library_sops.sop_dir), f"w{i}", out))
             for i in range(4)]
    for p in procs:
        p.start()
    reports = dict(out.get(timeout=240) for _ in procs)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert sum(reports.values()) == 2000
    assert sum(1 for v in reports.values() if v) >= 2  # the work really was shared
    with Session(rt_pg_engine) as s:
        seqs = dict(s.execute(select(CaseRow.id, CaseRow.seq)).all())
        started = Counter(s.scalars(select(AuditRow.case_id).where(AuditRow.kind == "case_started")))
        applied = s.execute(select(CaseEventRow.case_id, CaseEventRow.seq)
                            .where(CaseEventRow.seq.is_not(None))).all()
        waiting = s.scalar(select(func.count()).select_from(CaseRow).where(CaseRow.runnable))
    assert sorted(seqs) == ids and waiting == 0
    assert set(started.values()) == {1} and len(started) == 2000  # each case started once
    assert len(applied) == len(set(applied)) == sum(seqs.values())  # no duplicate, none lost
    # the start runs classify_request and send_reset_link inside its step (pure actions):
    # every case reaches its wait point (confirmation or the L1 task) in one transition
    assert seqs == dict.fromkeys(ids, 1)


def test_timers_due_while_the_engine_was_down_fire_exactly_once_late(rt_pg_engine,
                                                                      library_sops) -> None:  # noqa: ANN001
    from store_helpers import wipe

    engine = rt_pg_engine
    wipe(engine)
    clock = SimulatedClock(T0)
    rt = make_runtime(engine, clock, sops=library_sops)
    try:
        ids = [f"K{i:05d}" for i in range(6, 10)]  # four L1 cases, fully started
        _new_cases(rt, 10)
        run_until_idle(runtime=rt, use_prefect=False)
        with Session(engine) as s, s.begin():
            s.execute(sa.insert(TimerRow), [
                {"id": f"X{i}", "case_id": ids[i % 4], "kind": "sla_breach", "node": None,
                 "payload": {}, "status": "pending", "created_at": T0,
                 "due_at": T0 + timedelta(seconds=5 + i * 55 / 1000)} for i in range(1000)])
        clock.advance(timedelta(seconds=120))  # all workers were down for two minutes
        reports: list[int] = []

        def sweeper(k: int) -> None:
            reports.append(fire_due(engine, clock, batch=100, worker=f"s{k}").fired)

        threads = [threading.Thread(target=sweeper, args=(k,)) for k in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert sum(reports) == 1000
        run_until_idle(runtime=rt, use_prefect=False)
        with Session(engine) as s:
            timers = s.scalars(select(TimerRow).where(TimerRow.id.like("X%"))).all()
            fired_events = Counter(
                ev["timer_id"] for ev in s.scalars(select(CaseEventRow.event)
                                                   .where(CaseEventRow.kind == "TimerFired"))
                if ev["timer_id"].startswith("X"))
            misfires = s.scalars(select(AuditRow.detail).where(AuditRow.kind == "timer_misfire")).all()
        assert all(tm.status == "fired" for tm in timers)
        assert all(60 <= tm.lateness_s <= 115 for tm in timers)
        assert len(fired_events) == 1000 and set(fired_events.values()) == {1}
        assert len([m for m in misfires if m["timer"].startswith("X")]) == 1000
    finally:
        unregister_runtime(rt.key)
