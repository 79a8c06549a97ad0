"""Claiming ahead: the commit of a batch leases the next one (engine.runtime.advance).

A flow run that goes on to another batch asks for it, so a busy worker takes the write
lock once per batch. The cases it holds are its own until its next batch runs them, it
gives them back, or their lease ends; the fence keeps a worker whose lease ended out.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from engine.runtime import ops
from engine.runtime.due import has_runnable, has_work
from engine.runtime.registry import unregister_runtime
from engine.runtime.worker import make_runtime, worker_loop
from engine.store.models import CaseEventRow, CaseRow

LOCKED = {"request_text": "I am locked out and have no access to my recovery e-mail",
          "email": "b@example.com"}


@pytest.fixture
def pair(engine, clock, library_sops):  # noqa: ANN001, ANN201
    """Two workers on one case database, 30 new cases (each runs to its L1 task in one step)."""
    rts = [make_runtime(engine, clock, sops=library_sops, worker=name, lease_s=60,
                        artifacts=False) for name in ("wa", "wb")]
    ids = [ops.start_case(rts[0], "password_reset", LOCKED, case_id=f"A{i:02d}") for i in range(30)]
    yield (*rts, ids)
    for rt in rts:
        unregister_runtime(rt.key)


def _leases(engine) -> dict[str, str | None]:  # noqa: ANN001
    with Session(engine) as s:
        return dict(s.execute(select(CaseRow.id, CaseRow.lease_owner)).all())


def _held_by(engine, worker: str) -> list[str]:  # noqa: ANN001
    return sorted(cid for cid, owner in _leases(engine).items() if owner == worker)


@contextlib.contextmanager
def _claim_statements(engine) -> Iterator[list[str]]:  # noqa: ANN001
    """The claim statements run on ``engine`` while the block runs."""
    seen: list[str] = []

    def on_execute(conn, cursor, statement, *_):  # noqa: ANN001, ANN202
        if statement.startswith("UPDATE cases SET lease_owner"):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", on_execute)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)


def _advanced_once(engine, ids: list[str]) -> None:  # noqa: ANN001
    with Session(engine) as s:
        seqs = dict(s.execute(select(CaseRow.id, CaseRow.seq)).all())
        applied = s.execute(select(CaseEventRow.case_id, CaseEventRow.seq)
                            .where(CaseEventRow.seq.is_not(None))).all()
    assert seqs == dict.fromkeys(ids, 1)  # every case advanced ...
    assert len(applied) == len(set(applied)) == len(ids)  # ... exactly once


def test_the_commit_of_a_batch_leases_the_next_and_the_next_batch_runs_them(pair) -> None:  # noqa: ANN001
    a, b, ids = pair
    report = a.advancer.run_batch(10, claim_next=True)
    assert (report.claimed, report.committed) == (10, 10)
    held = _held_by(a.engine, "wa")
    assert len(held) == 10 and a.advancer.holds_cases and has_work(a)
    assert not set(held) & set(ids[:10])  # the committed batch holds no lease

    assert b.advancer.run_batch(30).claimed == 10  # the other worker gets the rest, not those
    assert not has_runnable(b) and not has_work(b)

    with _claim_statements(a.engine) as claims:
        report = a.advancer.run_batch(10)  # runs what it holds, with no claim of its own
    assert claims == []
    assert (report.claimed, report.committed) == (10, 10) and not a.advancer.holds_cases
    assert not _held_by(a.engine, "wa")
    _advanced_once(a.engine, ids)


def test_a_batch_without_claim_next_leaves_nothing_held(pair) -> None:  # noqa: ANN001
    a, _, _ = pair
    with _claim_statements(a.engine) as claims:
        assert a.advancer.run_batch(10).committed == 10
    assert len(claims) == 1  # its own claim, none ahead
    assert not a.advancer.holds_cases and not _held_by(a.engine, "wa")


def test_release_held_gives_the_cases_back_to_every_worker(pair) -> None:  # noqa: ANN001
    a, b, ids = pair
    a.advancer.run_batch(10, claim_next=True)
    assert a.advancer.release_held() == 10
    assert not a.advancer.holds_cases and not _held_by(a.engine, "wa")
    assert a.advancer.release_held() == 0  # nothing left to give back
    assert b.advancer.run_batch(30).committed == 20  # the released ten among them
    _advanced_once(a.engine, ids)


def test_a_worker_asked_to_stop_gives_back_what_it_holds(pair) -> None:  # noqa: ANN001
    a, b, _ = pair
    a.advancer.run_batch(10, claim_next=True)
    stop = threading.Event()
    stop.set()
    worker_loop(a, stop=stop, use_prefect=False)
    assert not a.advancer.holds_cases and not _held_by(a.engine, "wa")
    assert b.advancer.run_batch(30).committed == 20


def test_a_worker_loop_that_fails_gives_back_what_it_holds_and_raises_its_error(
        pair, monkeypatch) -> None:  # noqa: ANN001
    from engine.runtime import worker

    a, b, _ = pair
    a.advancer.run_batch(10, claim_next=True)

    def broken_pass(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise RuntimeError("the SOP provider failed")

    monkeypatch.setattr(worker, "run_pass", broken_pass)
    with pytest.raises(RuntimeError, match="SOP provider failed"):
        worker_loop(a, use_prefect=False)
    assert not a.advancer.holds_cases and not _held_by(a.engine, "wa")
    assert b.advancer.run_batch(30).committed == 20


def test_a_worker_whose_held_leases_ended_is_fenced_out(pair, clock) -> None:  # noqa: ANN001
    """A worker stalls holding cases past their lease (as a dead one would): another takes
    them over; the stalled one's late batch writes nothing and each case advances once."""
    a, b, ids = pair
    a.advancer.run_batch(10, claim_next=True)
    held = _held_by(a.engine, "wa")
    clock.advance(timedelta(seconds=61))  # the leases end
    assert has_runnable(b)
    assert b.advancer.run_batch(30).committed == 20  # the rest and the ten whose lease ended
    report = a.advancer.run_batch(10)  # the stalled worker wakes up with its old claims
    assert (report.claimed, report.committed, report.stale) == (10, 0, 10)
    assert not _held_by(a.engine, "wa") and set(held) <= set(ids)
    _advanced_once(a.engine, ids)


def test_a_failed_commit_leases_nothing_ahead(pair, monkeypatch) -> None:  # noqa: ANN001
    """The next batch is leased in the transaction of the commit: when that fails, neither
    the batch nor the lease ahead is written and the batch's own cases are released."""
    from engine.runtime import advance

    a, b, ids = pair

    def broken(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise RuntimeError("disk full")

    monkeypatch.setattr(advance, "commit_advances", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        a.advancer.run_batch(10, claim_next=True)
    monkeypatch.undo()
    assert not a.advancer.holds_cases and not _held_by(a.engine, "wa")
    assert b.advancer.run_batch(30).committed == 30
    _advanced_once(a.engine, ids)


@pytest.mark.usefixtures("prefect_harness")
def test_a_flow_run_leases_ahead_only_while_it_goes_on(pair) -> None:  # noqa: ANN001
    """Every batch of an advance flow run but its last leases the next: a run that reaches
    its last batch, or whose time budget is spent, ends holding nothing. (A run that yields
    to a due timer may hold a batch: the worker's next run starts with it,
    test_runtime_flows.)"""
    from engine.runtime import flows

    a, _, ids = pair
    with _claim_statements(a.engine) as claims:
        out = flows.advance_batch(a.key, 10, 2)  # two batches, then the run ends
    assert (out["batches"], out["committed"]) == (2, 20)
    assert len(claims) == 2  # the first batch's own claim, the second's in the first commit
    assert not a.advancer.holds_cases and len(_held_by(a.engine, "wa")) == 0

    out = flows.advance_batch(a.key, 5, 10, max_s=1e-9)  # the budget is spent at once
    assert (out["batches"], out["committed"]) == (1, 5) and not a.advancer.holds_cases
    out = flows.advance_batch(a.key, 5, 10)  # the last five, then an empty claim ahead
    assert (out["batches"], out["committed"]) == (1, 5) and not a.advancer.holds_cases
    _advanced_once(a.engine, ids)
