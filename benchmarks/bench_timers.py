#!/usr/bin/env python3
"""Timer sweep cost grows with the number DUE, not the number PENDING.

    .venv/bin/python benchmarks/bench_timers.py                  # 100k and 1M pending, 10k due
    .venv/bin/python benchmarks/bench_timers.py --pending 100000 1000000 --due 10000 --db postgres

Builds a ``timers`` table (bulk inserts) with ``pending`` rows of which ``due`` are due at
the sweep instant, then times ``engine.runtime.timers.fire_due`` -- the real sweep: claim
through the (status, due_at) index, mark fired with lateness, queue a TimerFired input per
timer, flag the cases runnable, in durable transactions of 1,000 -- and prints one JSON line
per size plus a table. Also prints the query plan of the claim, which must use the index.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def build(engine, pending: int, due: int, now: datetime) -> None:  # noqa: ANN001
    import sqlalchemy as sa

    from engine.store.models import CaseRow, SopVersionRow, TimerRow

    cases = max(1, pending // 100)
    with engine.begin() as conn:
        conn.execute(sa.insert(SopVersionRow), [{"hash": "bench", "sop_id": "bench", "version": "1",
                                                  "source": "", "created_at": now}])
        conn.execute(sa.insert(CaseRow), [{
            "id": f"B{i:07d}", "sop_id": "bench", "sop_hash": "bench", "sop_version": "1",
            "status": "open", "priority": "normal", "tier": "standard", "seq": 1, "version": 1,
            "runnable": False, "audit_seq": 0, "audit_hash": "", "created_at": now,
            "updated_at": now} for i in range(cases)])
    chunk = 50_000
    for start in range(0, pending, chunk):
        rows = []
        for i in range(start, min(pending, start + chunk)):
            # the first `due` timers are due (spread over the past hour); the rest later
            when = (now - timedelta(seconds=3600 * (due - i) / due) if i < due
                    else now + timedelta(seconds=60 + i))
            rows.append({"id": f"T{i:08d}", "case_id": f"B{i % cases:07d}", "kind": "sla_breach",
                         "due_at": when, "payload": {}, "status": "pending", "created_at": now})
        with engine.begin() as conn:
            conn.execute(sa.insert(TimerRow), rows)


def plan(engine, now: datetime) -> str:  # noqa: ANN001
    import sqlalchemy as sa

    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            rows = conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN SELECT id FROM timers WHERE status = 'pending' AND due_at <= ? "
                "ORDER BY due_at LIMIT 1000", (now.replace(tzinfo=None).isoformat(" "),)).all()
            return "; ".join(str(r[-1]) for r in rows)
        rows = conn.execute(sa.text(
            "EXPLAIN SELECT id FROM timers WHERE status = 'pending' AND due_at <= :now "
            "ORDER BY due_at LIMIT 1000"), {"now": now}).all()
        return "; ".join(r[0].strip() for r in rows)


def run(size: int, due: int, backend: str, tmp: Path) -> dict[str, object]:
    import sqlalchemy as sa

    from engine.clock import SimulatedClock
    from engine.runtime.timers import fire_due
    from engine.store.all_models import load_all
    from engine.store.db import make_engine

    now = datetime(2026, 3, 2, 12, tzinfo=UTC)
    if backend == "sqlite":
        url = f"sqlite:///{tmp / f'timers_{size}.db'}"
        engine = make_engine(url)
        meta = load_all().metadata
        meta.create_all(engine)
    else:
        admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        name = f"careflow_timers_{size}"
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        engine = make_engine(sa.engine.make_url(PG_URL).set(database=name))
        load_all().metadata.create_all(engine)
    t0 = time.perf_counter()
    build(engine, size, due, now)
    build_s = time.perf_counter() - t0
    if backend == "postgres":
        with engine.begin() as conn:
            conn.execute(sa.text("ANALYZE timers"))
    query_plan = plan(engine, now)
    t0 = time.perf_counter()
    report = fire_due(engine, SimulatedClock(now), batch=1000)
    sweep_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    empty = fire_due(engine, SimulatedClock(now), batch=1000)  # nothing left due
    empty_s = time.perf_counter() - t0
    assert report.fired == due and empty.fired == 0, (report, empty)
    engine.dispose()
    if backend == "postgres":
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    return {"bench": "timer_sweep", "db": backend, "pending": size, "due": due,
            "fired": report.fired, "sweep_s": round(sweep_s, 3),
            "us_per_fired_timer": round(sweep_s / due * 1e6, 1),
            "empty_sweep_ms": round(empty_s * 1000, 2), "build_s": round(build_s, 1),
            "max_lateness_s": round(report.max_lateness_s, 1), "plan": query_plan}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pending", type=int, nargs="*", default=[100_000, 1_000_000])
    ap.add_argument("--due", type=int, default=10_000)
    ap.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    args = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="careflow-timers-") as tmp:
        for size in args.pending:
            res = run(size, args.due, args.db, Path(tmp))
            print(json.dumps(res), flush=True)
            results.append(res)
    print("\n| db | pending | due | sweep s | µs per fired timer | empty sweep ms |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['db']} | {r['pending']:,} | {r['due']:,} | {r['sweep_s']} | "
              f"{r['us_per_fired_timer']} | {r['empty_sweep_ms']} |")


if __name__ == "__main__":
    main()
