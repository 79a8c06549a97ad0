"""R3: exactly-once claim matrix on PostgreSQL (pgqueuer/procrastinate style).

Workers in {1, 2, 4} (threads, each its own runtime and worker name, claiming with
``FOR UPDATE SKIP LOCKED``) x cases in {1, 32, 500}: every case's first step runs exactly
once (``sorted(processed) == expected``) and every transition is committed once. Plus two
workers on the same case: 200 signals posted while they run are applied one at a time, in
order (before-1, after-1, before-2, after-2, ...), never interleaved.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest
from rel_preload import PROVIDER
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.actions.builtin import ACTIONS
from engine.actions.registry import ActionRegistry
from engine.clock import SystemClock
from engine.interpreter import codec
from engine.interpreter import types as t
from engine.runtime import ops
from engine.runtime.actions import ActionRunner
from engine.runtime.registry import unregister_runtime
from engine.runtime.due import has_work
from engine.runtime.worker import make_runtime
from engine.store import cases as case_store
from engine.store.models import CaseEventRow, CaseRow


class Recorder:
    """Wraps an action: logs (case, phase, worker, input n, action) before and after it runs."""

    def __init__(self, name: str, inner: Any, worker: str, log: list[tuple[Any, ...]]) -> None:
        self.name, self.inner, self.worker, self.log = name, inner, worker, log

    def __call__(self, inputs: Any, ctx: Any) -> Any:
        self.log.append((ctx.case_id, "before", self.worker, inputs.get("n"), self.name))
        try:
            return self.inner(inputs, ctx)
        finally:
            self.log.append((ctx.case_id, "after", self.worker, inputs.get("n"), self.name))


def _runtimes(engine, n: int, log: list) -> list:  # noqa: ANN001
    out = []
    for i in range(n):
        rt = make_runtime(engine, SystemClock(), sops=PROVIDER, worker=f"m{i}", lease_s=30,
                          artifacts=False, ports={})
        reg = ActionRegistry()
        for name, fn in ACTIONS.items():
            reg.register(name, Recorder(name, fn, rt.worker, log)
                         if name in ("classify_request", "set_fields") else fn)
        rt.advancer.actions = ActionRunner(reg)
        out.append(rt)
    return out


def _drain(rts: list, batch: int, stop: threading.Event | None = None) -> dict[str, int]:
    """Run every runtime in its own thread until nothing is runnable or held (and ``stop``
    is set)."""
    committed: dict[str, int] = {}
    errors: list[BaseException] = []

    def work(rt, ahead: bool) -> None:  # noqa: ANN001
        try:
            done = 0
            while True:
                rep = rt.advancer.run_batch(batch, claim_next=ahead)
                done += rep.committed
                if not rep.claimed and not has_work(rt) and (stop is None or stop.is_set()):
                    break
            committed[rt.worker] = done
        except BaseException as exc:  # noqa: BLE001 -- reported below
            errors.append(exc)

    # every other worker leases its next batch in the commit of the one before (as a flow
    # run that goes on does): both ways of claiming race each other
    threads = [threading.Thread(target=work, args=(rt, i % 2 == 0)) for i, rt in enumerate(rts)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=240)
    assert not errors, errors
    return committed


@pytest.mark.parametrize("n_cases", [1, 32, 500])
@pytest.mark.parametrize("n_workers", [1, 2, 4])
def test_every_case_advanced_exactly_once(rel_pg_engine, n_workers: int, n_cases: int) -> None:  # noqa: ANN001
    from store_helpers import wipe

    wipe(rel_pg_engine)
    log: list[tuple[Any, ...]] = []
    rts = _runtimes(rel_pg_engine, n_workers, log)
    try:
        sop = PROVIDER.by_id("rel_auto")
        ev = codec.event_to_json(t.CaseStarted(data={"request_text": "hi", "email": "e@example.com"}))
        with Session(rel_pg_engine) as s, s.begin():
            expected = case_store.start_cases(s, [
                case_store.NewCase(sop.id, sop.hash, str(sop.version), ev, case_id=f"J{i:05d}")
                for i in range(n_cases)], now=rts[0].clock.now())
        committed = _drain(rts, batch=25)
        processed = [e[0] for e in log if e[1] == "before" and e[4] == "classify_request"]
        assert sorted(processed) == sorted(expected)  # classify ran once per case
        assert sum(committed.values()) == n_cases  # each case committed by exactly one worker
        with Session(rel_pg_engine) as s:
            statuses = Counter(s.scalars(select(CaseRow.status)))
            applied = Counter(s.execute(select(CaseEventRow.case_id, CaseEventRow.seq)
                                        .where(CaseEventRow.seq.is_not(None))).all())
        assert statuses == {"resolved": n_cases}
        assert set(applied.values()) == {1}
        for cid in expected:  # per case: before, after (classify), before, after (stamp)
            assert [e[1] for e in log if e[0] == cid] == ["before", "after"] * 2
    finally:
        for rt in rts:
            unregister_runtime(rt.key)


def test_two_workers_on_one_case_apply_its_200_signals_one_at_a_time(rel_pg_engine) -> None:  # noqa: ANN001
    from store_helpers import wipe

    wipe(rel_pg_engine)
    log: list[tuple[Any, ...]] = []
    rts = _runtimes(rel_pg_engine, 2, log)
    try:
        cid = ops.start_case(rts[0], "rel_counter", {}, case_id="ONE")
        stop = threading.Event()

        def poster() -> None:
            for _ in range(200):
                ops.send_event(rts[0], cid, "tick", {})
            ops.send_event(rts[0], cid, "stop", {})
            stop.set()

        post = threading.Thread(target=poster)
        post.start()
        committed = _drain(rts, batch=5, stop=stop)
        post.join()
        with Session(rel_pg_engine) as s:
            case = s.get(CaseRow, cid)
            seqs = sorted(s.scalars(select(CaseEventRow.seq).where(CaseEventRow.case_id == cid,
                                                                   CaseEventRow.seq.is_not(None))))
        print(f"\nR3 same case: commits per worker {committed}")
        assert case.status == "resolved" and case.state["data"]["counter"] == 200
        assert seqs == list(range(1, case.seq + 1))
        phases = [(e[1], e[3]) for e in log if e[0] == cid]
        expected = [(p, n) for n in range(1, 201) for p in ("before", "after")]
        assert phases == expected  # before-1, after-1, before-2, after-2, ... never interleaved
    finally:
        for rt in rts:
            unregister_runtime(rt.key)
