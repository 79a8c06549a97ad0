#!/usr/bin/env python3
"""Reliability figures: SQLite lock errors with/without BEGIN IMMEDIATE, and a longer kill -9 soak.

    .venv/bin/python benchmarks/bench_reliability.py                     # R2 + soak 2,000 cases, 30 s of kills
    .venv/bin/python benchmarks/bench_reliability.py --cases 1000 --kill-s 10 --skip-soak

R2: 1 process with 8 threads + 2 processes with 4 threads each run ``--transitions``
read-then-write transitions on one SQLite file (tests/reliability/rel_support.py
``sqlite_transitions``): through careflow's store (BEGIN IMMEDIATE), then over a raw
sqlite3 connection with a deferred BEGIN. Prints committed, "database is locked" inside a
transaction and at BEGIN, per mode, as JSON lines.

R1: runs the soak test (tests/reliability/test_reliability_killsoak.py) with a bigger
load through its environment knobs and prints its figure line (kills, abandoned claims,
deliveries, duplicates). Needs PostgreSQL on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REL = REPO / "tests" / "reliability"
sys.path[:0] = [str(REPO), str(REL), str(REPO / "tests" / "store")]

LAYOUT = (8, 4, 4)
CASES = [f"Q{i:02d}" for i in range(8)]


def _database(folder: Path) -> str:
    from rel_preload import PROVIDER
    from sqlalchemy.orm import Session
    from store_helpers import fresh_schema

    from engine.clock import SimulatedClock
    from engine.store.cases import NewCase, start_cases

    path = folder / "bench.db"
    engine = fresh_schema(f"sqlite:///{path}")
    now = datetime(2026, 3, 2, tzinfo=UTC)
    PROVIDER.register_all(engine, SimulatedClock(now))
    sop = PROVIDER.by_id("rel_auto")
    with Session(engine) as s, s.begin():
        start_cases(s, [NewCase(sop.id, sop.hash, str(sop.version), {}, case_id=c) for c in CASES],
                    now=now)
    engine.dispose()
    return str(path)


def sqlite_figures(mode: str, total: int) -> dict[str, object]:
    from rel_support import sqlite_transitions, sqlite_transitions_main

    per_thread = total // sum(LAYOUT)
    ctx = multiprocessing.get_context("forkserver")
    with tempfile.TemporaryDirectory() as tmp:
        db = _database(Path(tmp))
        out = ctx.Queue()
        kids = [ctx.Process(target=sqlite_transitions_main,
                            args=(db, mode, n, per_thread, CASES, seed, out))
                for seed, n in enumerate(LAYOUT[1:], start=1)]
        started = time.perf_counter()
        for p in kids:
            p.start()
        results = [sqlite_transitions(db, mode, LAYOUT[0], per_thread, CASES, 0)]
        results += [out.get(timeout=600) for _ in kids]
        for p in kids:
            p.join()
        seconds = time.perf_counter() - started
    return {"scenario": "R2", "mode": mode, "attempted": per_thread * sum(LAYOUT),
            "committed": sum(r[0] for r in results),
            "locked_in_transaction": sum(r[1] for r in results),
            "locked_at_begin": sum(r[2] for r in results),
            "other_errors": sum(len(r[3]) for r in results), "seconds": round(seconds, 1)}


def soak(cases: int, kill_s: float, batch: int) -> None:
    env = dict(os.environ, REL_SOAK_CASES=str(cases), REL_SOAK_KILL_S=str(kill_s),
               REL_SOAK_BATCH=str(batch))
    cmd = [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider",
           str(REL / "test_reliability_killsoak.py")]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("R1 soak") or "passed" in ln
             or "failed" in ln or ln.startswith("E ")]
    print("\n".join(lines) or proc.stdout[-3000:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--transitions", type=int, default=10_000)
    ap.add_argument("--cases", type=int, default=2000)
    ap.add_argument("--kill-s", type=float, default=30.0)
    ap.add_argument("--batch", type=int, default=20)
    ap.add_argument("--skip-soak", action="store_true")
    args = ap.parse_args()
    for mode in ("immediate", "deferred"):
        print(json.dumps(sqlite_figures(mode, args.transitions)), flush=True)
    if not args.skip_soak:
        soak(args.cases, args.kill_s, args.batch)


if __name__ == "__main__":
    main()
