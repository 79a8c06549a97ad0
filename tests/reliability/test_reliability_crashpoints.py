"""R20-style crash points: kill -9 exactly between claim and commit (20 times), and between
an outbound send and its mark -- deterministic kills, so each test proves one window.

Kill switches live in the worker (tests/reliability/rel_support.py): an action that SIGKILLs
its own process the first time it runs for a victim case, and a connector that does so
right after its n-th delivery. No Prefect anywhere: the workers run ``worker_loop`` with
``use_prefect=False`` and record that Prefect was never imported, so recovery rests only
on the case database's leases.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rel_support import SOP_DIR, bind_journal, outbox_main, read_journal, wait_for, worker_main
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.clock import SimulatedClock, SystemClock
from engine.interpreter import codec
from engine.interpreter import types as t
from engine.runtime.registry import unregister_runtime
from engine.runtime.sops import SopProvider
from engine.runtime.worker import make_runtime, run_until_idle
from engine.store import cases as case_store
from engine.store.models import AuditRow, CaseEventRow, CaseRow, OutboxRow

LEASE_S = 1.0
N_CASES = 200
KILLS = 20


def _start(rt, n: int, prefix: str) -> list[str]:  # noqa: ANN001
    compiled = rt.sops.by_id("rel_auto")
    ev = codec.event_to_json(t.CaseStarted(data={"request_text": "locked out", "email": "d@example.com"}))
    with Session(rt.engine) as s, s.begin():
        return case_store.start_cases(s, [
            case_store.NewCase(compiled.id, compiled.hash, compiled.version, ev, case_id=f"{prefix}{i:04d}")
            for i in range(n)], now=rt.clock.now())


def _terminal(engine) -> int:  # noqa: ANN001
    with Session(engine) as s:
        return s.scalar(select(func.count()).select_from(CaseRow).where(CaseRow.ended_at.is_not(None)))


@pytest.mark.slow
def test_kill9_between_claim_and_commit_20_times_each_case_completes_once(
        rel_pg_url, rel_pg_engine, worker_context, tmp_path: Path) -> None:  # noqa: ANN001
    from store_helpers import wipe

    wipe(rel_pg_engine)
    rt = make_runtime(rel_pg_engine, SystemClock(), sops=SopProvider(SOP_DIR), worker="setup",
                      artifacts=False, ports={})
    journal = tmp_path / "deliveries.log"
    try:
        ids = _start(rt, N_CASES, "V")
    finally:
        unregister_runtime(rt.key)
    victims = ids[5::N_CASES // KILLS][:KILLS]  # spread over the batches
    procs: list = []
    deaths = 0
    serial = iter(range(1000))

    def spawn() -> None:
        p = worker_context.Process(target=worker_main, daemon=True, args=(
            rel_pg_url, f"v{next(serial)}", LEASE_S, str(journal), 20, victims, str(tmp_path)))
        p.start()
        procs.append(p)

    started = time.monotonic()
    try:
        for _ in range(2):
            spawn()
        deadline = started + 120
        last_death = started
        while _terminal(rel_pg_engine) < N_CASES and time.monotonic() < deadline:
            for p in [p for p in procs if not p.is_alive()]:
                p.join()
                assert p.exitcode == -9, f"a worker ended with {p.exitcode}, not by its kill switch"
                procs.remove(p)
                deaths += 1
                last_death = time.monotonic()
                spawn()
            time.sleep(0.1)
        recovered_s = time.monotonic() - last_death
        assert wait_for(lambda: not _outbox_due(rel_pg_engine), 20, 0.2)
    finally:
        for p in procs:
            p.kill()
            p.join(timeout=10)
    elapsed = time.monotonic() - started

    with Session(rel_pg_engine) as s:
        cases = s.execute(select(CaseRow.id, CaseRow.status, CaseRow.seq)).all()
        applied = Counter(s.execute(select(CaseEventRow.case_id, CaseEventRow.seq)
                                    .where(CaseEventRow.seq.is_not(None))).all())
        started_once = Counter(s.scalars(select(AuditRow.case_id).where(AuditRow.kind == "case_started")))
        outbox = s.execute(select(OutboxRow.case_id, OutboxRow.idempotency_key)).all()
    runs = Counter((tmp_path / "runs.log").read_text().split())
    workers = (tmp_path / "workers.log").read_text().splitlines()
    killed = sorted(p.name.removeprefix("killed-") for p in tmp_path.glob("killed-*"))
    print(f"\nR20: {deaths} workers killed between claim and commit; {N_CASES} cases done in "
          f"{elapsed:.1f} s ({recovered_s:.1f} s after the last kill); classify ran "
          f"{sum(runs.values())} times for {N_CASES} cases (re-executed: "
          f"{sum(v - 1 for v in runs.values())}); {len(workers)} worker processes, none with Prefect")

    assert deaths == KILLS and killed == sorted(victims)
    assert {c.status for c in cases} == {"resolved"} and sorted(c.id for c in cases) == ids
    assert set(applied.values()) == {1}  # no transition twice
    assert all(sorted(seq for (cid, seq) in applied if cid == c.id) == list(range(1, c.seq + 1))
               for c in cases)  # none lost
    assert set(started_once.values()) == {1} and len(started_once) == N_CASES
    assert len(outbox) == N_CASES and {o.case_id for o in outbox} == set(ids)
    assert all(runs[v] >= 1 for v in ids)  # every step ran at least once ...
    assert all(runs[v] >= 1 for v in victims)  # ... the victims again after the kill (marker)
    assert all("prefect=False" in w for w in workers)  # correctness never needed Prefect
    assert set(read_journal(journal)) == {o.idempotency_key for o in outbox}


def _outbox_due(engine) -> bool:  # noqa: ANN001
    """Messages not yet sent -- including rows a live worker has claimed and is sending
    (a claim moves next_attempt_at to the end of its lease, so "due" alone is not "done")."""
    with Session(engine) as s:
        return bool(s.scalar(select(func.count()).select_from(OutboxRow).where(
            OutboxRow.status == "pending")))


def test_one_kill_between_send_and_mark_duplicates_at_most_one_message(
        rel_pg_url, rel_pg_engine, worker_context, tmp_path: Path) -> None:  # noqa: ANN001
    from store_helpers import wipe

    wipe(rel_pg_engine)
    clock = SimulatedClock(datetime.now(UTC))
    rt = make_runtime(rel_pg_engine, clock, sops=SopProvider(SOP_DIR), worker="setup",
                      artifacts=False, ports={})
    journal = tmp_path / "deliveries.log"
    try:
        _start(rt, 30, "M")
        assert rt.advancer.run_batch(100).committed == 30  # 30 outbox rows, none sent yet
        p = worker_context.Process(target=outbox_main, args=(rel_pg_url, str(journal), 10))
        p.start()
        p.join(timeout=60)
        assert p.exitcode == -9  # killed right after its 10th delivery, before any mark
        assert sum(read_journal(journal).values()) == 10
        bind_journal(journal)
        clock.set(clock.now() + timedelta(seconds=120))  # past the outbox lease
        run_until_idle(runtime=rt, use_prefect=False)
    finally:
        unregister_runtime(rt.key)
    deliveries = read_journal(journal)
    with Session(rel_pg_engine) as s:
        keys = set(s.scalars(select(OutboxRow.idempotency_key).where(OutboxRow.status == "sent")))
    assert set(deliveries) == keys and len(keys) == 30  # at least once: holds
    duplicates = sum(deliveries.values()) - len(deliveries)
    assert duplicates <= 1, f"{duplicates} duplicate deliveries after 1 kill"
