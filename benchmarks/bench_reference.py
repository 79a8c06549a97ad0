#!/usr/bin/env python3
"""The reference scenario (../shared/peers/REFERENCE.md) through careflow's real path, with
the peer engines run side by side in the same invocation.

    .venv/bin/python benchmarks/bench_reference.py                 # N = 1,000 and 10,000
    .venv/bin/python benchmarks/bench_reference.py --cases 1000 --no-peers

Real path: sop_definitions/password_reset.yaml -> compiled SOP -> case store on a SQLite
FILE (WAL, synchronous=FULL, BEGIN IMMEDIATE) -> the Prefect flows
``fire_due_timers`` / ``advance_batch`` / ``dispatch_outbox``, in two shapes (``--workers``):
0, in this process through ``run_until_idle`` against Prefect's ephemeral API (``careflow
run``); K > 0, K ``worker_loop`` processes (``careflow worker``) against a ``prefect server``
started for the run (on a fresh PostgreSQL database when one answers on 127.0.0.1, as
docs/operations.md advises for several workers; ``--prefect-db sqlite`` keeps Prefect's
own file), the driver waiting until nothing is runnable, leased or due. careflow's case
store is the SQLite file in both shapes.
Same mix and rounds as the peers' bench.py: (1) start all N cases, each runs to its first
wait point; (2) deliver what each open case waits for (the customer_confirmed message or
the L1 task outcome; the driver asks the case store what each case waits for); (3) complete
the L2 task of the escalated cases. Every case's outcome is checked against its path.

Inputs are queued the way an intake / agent desk batches them (``start_cases``/
``post_events``/``complete_tasks``, the bulk form of ``complete_task`` with the same
versioned exactly-one-winner update), 500 per transaction; each transaction is durable. Timing excludes imports, SOP compilation and
Prefect's start-up (one warm-up flow run per process), as the peers' ``seconds`` excludes
imports and BPMN parsing; the workers' CPU is added to the run's, the Prefect server's is
printed beside it.

Prints one JSON line per careflow run and per peer run, then a table with the ratios
(careflow cases/s over peer cases/s, and memory per open case).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
PEERS = Path(os.environ.get("CAREFLOW_PEERS", REPO.parent / "shared" / "peers"))
if not PEERS.exists():
    PEERS = Path("/work/shared/peers")
PEER_VENV = Path(os.environ.get("CAREFLOW_PEERS_VENV", "/tmp/careflow-peers-venv"))
PEER_ENGINES = ("spiff-persist", "spiff", "plain-persist")

TEXT_SELF = "I forgot my password, please send me a reset link"
TEXT_ACCESS = "I am locked out and no longer have access to my recovery e-mail"


def path_for(i: int) -> str:
    r = i % 10
    return "self_service" if r < 6 else "resolved_l1" if r < 9 else "resolved_l2"


def make_cases(n: int) -> list[dict[str, str]]:
    """The peers' inputs (common.make_cases), duplicated so careflow needs no peer import."""
    return [{"case_id": f"C{i:07d}", "request_text": TEXT_SELF if path_for(i) == "self_service"
             else TEXT_ACCESS, "customer_tier": "gold" if i % 7 == 0 else "standard",
             "email": f"user{i}@example.com"} for i in range(n)]


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def _worker_process(index: int, db_url: str, batch: int, api_url: str, ready: Any, stop: Any,
                    out: Any) -> None:
    """One ``careflow worker`` (engine.runtime.worker.worker_loop) in a process of its own,
    against the Prefect server at ``api_url``; reports its CPU seconds and peak RSS."""
    os.environ["PREFECT_API_URL"] = api_url
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    from engine.clock import SimulatedClock
    from engine.runtime import flows
    from engine.runtime.sops import SopProvider
    from engine.runtime.worker import make_runtime, prefect_settings, worker_loop
    from engine.store.db import make_engine

    engine = make_engine(db_url)
    rt = make_runtime(engine, SimulatedClock(START), sops=SopProvider(REPO / "sop_definitions"),
                      worker=f"bench-worker-{index}", artifacts=True)
    with prefect_settings():
        flows.advance_batch(rt.key, 1)  # the first flow run of a process connects to the API
        ready.set()
        cpu0 = time.process_time()
        rep = worker_loop(rt, batch=batch, poll_s=0.02, stop=stop)
    out.put({"worker": index, "cpu_s": time.process_time() - cpu0, "flow_runs": rep.flow_runs,
             "batches": rep.batches,
             "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})


PREFECT_BENCH_DB = "careflow_bench_prefect"


def prefect_database(choice: str) -> str | None:
    """The database URL of the workers' Prefect server for ``--prefect-db``: ``sqlite``
    (None: Prefect's own file), a URL, or ``auto``: a fresh PostgreSQL database
    ``careflow_bench_prefect`` (with pg_trgm, which Prefect needs) on the server that
    $CAREFLOW_BENCH_PG_URL names (default postgres@127.0.0.1:5432), when it answers."""
    if choice == "sqlite":
        return None
    if choice != "auto":
        return choice
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import SQLAlchemyError

    admin = os.environ.get("CAREFLOW_BENCH_PG_URL",
                           "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    try:
        eng = create_engine(admin, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
        with eng.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {PREFECT_BENCH_DB} WITH (FORCE)"))
            conn.execute(text(f"CREATE DATABASE {PREFECT_BENCH_DB}"))
        eng.dispose()
        url = eng.url.set(database=PREFECT_BENCH_DB)
        eng = create_engine(url, isolation_level="AUTOCOMMIT")
        with eng.connect() as conn:
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
        eng.dispose()
    except SQLAlchemyError as exc:
        print(f"bench: no PostgreSQL for the Prefect server ({type(exc).__name__}); "
              "it runs on SQLite", file=sys.stderr)
        return None
    return url.render_as_string(hide_password=False)


class _Workers:
    """``count`` worker processes and the Prefect server they report to."""

    def __init__(self, count: int, db_url: str, batch: int, workdir: Path,
                 prefect_db: str | None = None) -> None:
        import multiprocessing as mp

        from engine.runtime.worker import start_prefect_server

        os.environ.setdefault("PREFECT_HOME", str(workdir / "prefect"))
        self.server, api = start_prefect_server(port=_free_port(), timeout_s=120,
                                                database_url=prefect_db)
        ctx = mp.get_context("spawn")
        self.stop, self.out = ctx.Event(), ctx.Queue()
        ready = [ctx.Event() for _ in range(count)]
        self.procs = [ctx.Process(target=_worker_process, args=(i, db_url, batch, api, ready[i],
                                                                self.stop, self.out))
                      for i in range(count)]
        for proc in self.procs:
            proc.start()
        for event in ready:
            if not event.wait(300):
                self.close()
                raise RuntimeError("a benchmark worker did not start within 300 s")

    def server_cpu_s(self) -> float:
        """CPU seconds the Prefect server process has used so far (Linux /proc)."""
        fields = Path(f"/proc/{self.server.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def close(self) -> list[dict[str, Any]]:
        self.stop.set()
        reports = [self.out.get(timeout=120) for p in self.procs if p.is_alive() or p.exitcode == 0]
        for proc in self.procs:
            proc.join(timeout=60)
        self.server.terminate()
        self.server.wait(timeout=60)
        return reports


@dataclass(frozen=True, slots=True)
class _Waiting:
    id: str
    node: str


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_BUSY_SQL = (
    "SELECT EXISTS (SELECT 1 FROM cases WHERE runnable = 1) "
    "OR EXISTS (SELECT 1 FROM timers WHERE status = 'pending' AND due_at <= ?) "
    "OR EXISTS (SELECT 1 FROM outbox WHERE status = 'pending' AND next_attempt_at <= ?)")


def _busy(engine: Any, now: datetime) -> bool:
    """Anything left for the workers: a runnable case (a claimed case stays runnable until
    its batch commits), a due timer or message. Each test walks an index (through a
    SQLAlchemy connection a poll cost ~180 µs of the driver's CPU, the SELECT itself a few)."""
    from engine.store.bulk import sqlite_time
    from engine.store.db import driver_rows

    at = sqlite_time(now)
    return bool(driver_rows(engine, _BUSY_SQL, (at, at))[0][0])


#: each open case with its open task, if it has one (the task: the L1 or L2 work item)
_WAITING_SQL = ("SELECT c.id, t.id, t.node FROM cases c LEFT OUTER JOIN human_tasks t "
                "ON t.case_id = c.id AND t.status IN ('open', 'claimed') "
                "WHERE c.status = 'open' ORDER BY c.id")


START = datetime(2026, 3, 2, 9, tzinfo=UTC)


def run_careflow(n: int, batch: int, workdir: Path, workers: int = 0,
                 prefect_db: str = "auto") -> dict[str, object]:
    """The scenario on careflow: in this process (``workers=0``: ``run_until_idle``, the
    embedded shape of ``careflow run``, ephemeral Prefect API) or with ``workers`` worker
    processes against a Prefect server (the shape of ``careflow serve`` / ``careflow worker``)."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from engine.clock import SimulatedClock
    from engine.interpreter import codec
    from engine.interpreter import types as t
    from engine.runtime import flows
    from engine.runtime.sops import SopProvider
    from engine.runtime.worker import make_runtime, prefect_settings, run_until_idle
    from engine.store import cases as case_store
    from engine.store import tasks as task_store
    from engine.store.all_models import load_all
    from engine.store.db import driver_rows, make_engine
    from engine.store.models import CaseRow, HumanTaskRow

    db_path = workdir / f"bench_{n}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    engine = make_engine(f"sqlite:///{db_path}")
    load_all().metadata.create_all(engine)
    clock = SimulatedClock(START)
    sops = SopProvider(REPO / "sop_definitions")
    rt = make_runtime(engine, clock, sops=sops, worker="bench", artifacts=True)
    compiled = sops.by_id("password_reset")
    inputs = make_cases(n)
    paths = {c["case_id"]: path_for(i) for i, c in enumerate(inputs)}
    started = [codec.event_to_json(t.CaseStarted(data={k: v for k, v in c.items() if k != "case_id"}))
               for c in inputs]
    confirm = codec.event_to_json(t.Signal("customer_confirmed", {"confirmed": True, "channel": "email"}))
    counts = {"rounds": 0, "flow_runs": 0, "batches": 0}
    server_db = prefect_database(prefect_db) if workers else None
    pool = (_Workers(workers, f"sqlite:///{db_path}", batch, workdir, server_db) if workers
            else None)

    def settle() -> None:
        counts["rounds"] += 1
        if pool is not None:
            while _busy(engine, clock.now()):
                time.sleep(0.005)
            return
        rep = run_until_idle(runtime=rt, use_prefect=True, batch=batch)
        counts["flow_runs"] += rep.flow_runs
        counts["batches"] += rep.batches

    def deliver() -> None:
        """Ask the store what each open case waits for and deliver it (500 per transaction)."""
        waiting = driver_rows(engine, _WAITING_SQL)  # on a pooled driver connection, no lock
        open_ids = [w[0] for w in waiting]
        tasks = {w[0]: _Waiting(w[1], w[2]) for w in waiting if w[1] is not None}
        for start in range(0, len(open_ids), 500):
            with Session(engine, expire_on_commit=False) as s, s.begin():
                signals, done = [], []
                for cid in open_ids[start:start + 500]:
                    task = tasks.get(cid)
                    if task is None:  # waiting for the customer's confirmation
                        signals.append((cid, "Signal", confirm, "customer"))
                        continue
                    if task.node == "verify_identity":
                        outcome = "escalate" if paths[cid] == "resolved_l2" else "verified"
                        fields = {"verify_outcome": outcome}
                        knowledge = None
                    elif task.node == "specialist_fix":
                        outcome, fields = "fixed", {"fix_outcome": "fixed",
                                                    "fix_note": "MFA device re-enrolled"}
                        knowledge = {"kind": "none", "reason": "benchmark"}
                    else:
                        raise RuntimeError(f"case {cid}: unexpected task {task.node}")
                    ev = codec.event_to_json(t.TaskCompleted(task.id, outcome, fields, "agent", knowledge))
                    done.append(task_store.TaskCompletion(task.id, outcome, fields, "agent",
                                                          knowledge, ev))
                task_store.complete_tasks(s, done, now=clock.now())
                case_store.post_events(s, signals, now=clock.now())

    with prefect_settings() if pool is None else contextlib.nullcontext():
        if pool is None:
            flows.advance_batch(rt.key, 1)  # warm-up: Prefect's ephemeral API starts here
        gc.collect()
        rss0 = rss_mb()
        cpu0, t0 = time.process_time(), time.perf_counter()
        server0 = pool.server_cpu_s() if pool is not None else 0.0
        for start in range(0, n, 500):  # round 1: start all N cases
            with Session(engine) as s, s.begin():
                case_store.start_cases(s, [case_store.NewCase(
                    compiled.id, compiled.hash, compiled.version, started[i],
                    case_id=inputs[i]["case_id"]) for i in range(start, min(n, start + 500))],
                    now=clock.now())
        settle()
        rss_open = rss_mb()
        db_bytes_open = sum(Path(f"{db_path}{x}").stat().st_size for x in ("", "-wal")
                            if Path(f"{db_path}{x}").exists())
        deliver()  # round 2
        settle()
        deliver()  # round 3: the L2 tasks
        settle()
        seconds = time.perf_counter() - t0
        cpu_s = time.process_time() - cpu0
    server_cpu = pool.server_cpu_s() - server0 if pool is not None else None
    worker_reports = pool.close() if pool is not None else []
    for rep in worker_reports:
        cpu_s += float(rep["cpu_s"])
        counts["flow_runs"] += int(rep["flow_runs"])
        counts["batches"] += int(rep["batches"])
    peak_rss = max([resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024]
                   + [float(r["peak_rss_mb"]) for r in worker_reports])
    with Session(engine) as s:
        got = dict(s.execute(select(CaseRow.id, CaseRow.outcome)).all())
        still_open = s.scalar(select(CaseRow.id).where(CaseRow.status == "open").limit(1))
        tasks_left = s.scalar(select(HumanTaskRow.id).where(HumanTaskRow.status == "open").limit(1))
    wrong = [cid for cid, p in paths.items() if got.get(cid) != p]
    if wrong or still_open or tasks_left:
        raise RuntimeError(f"{len(wrong)} wrong outcomes (first {wrong[:3]}), open: {still_open}")
    outcomes: dict[str, int] = {}
    for p in paths.values():
        outcomes[p] = outcomes.get(p, 0) + 1
    engine.dispose()
    return {
        "engine": f"careflow ({workers} worker processes)" if workers else "careflow",
        "cases": n, "seconds": round(seconds, 3),
        "cases_per_s": round(n / seconds, 1), "cpu_s": round(cpu_s, 3),
        "cpu_us_per_case": round(cpu_s / n * 1e6, 1),
        "peak_rss_mb": round(peak_rss, 1),
        "rss_before_run_mb": round(rss0, 1),
        # (with worker processes the open cases live in the workers only while they run)
        "rss_growth_per_open_case_kb": (round(max(0.0, rss_open - rss0) * 1024 / n, 3)
                                        if pool is None else None),
        "db_bytes_per_open_case": round(db_bytes_open / n),
        "batch": batch, "outcomes": outcomes, **counts,
        # the Prefect server the workers report to runs beside them on the same cores
        "prefect_server_cpu_s": None if server_cpu is None else round(server_cpu, 3),
        "prefect_server_db": (None if pool is None else
                              "postgresql" if server_db else "sqlite"),
    }


def ensure_peer_venv() -> Path | None:
    py = PEER_VENV / "bin" / "python"
    if py.exists():
        return py
    setup = PEERS / "setup.sh"
    if not setup.exists():
        return None
    subprocess.run(["bash", str(setup)], check=True, env={**os.environ, "VENV": str(PEER_VENV)},
                   stdout=subprocess.DEVNULL)
    return py if py.exists() else None


def run_peer(py: Path, engine: str, n: int) -> dict[str, object]:
    out = subprocess.run([str(py), str(PEERS / "bench.py"), "--engine", engine, "--cases", str(n)],
                         check=True, capture_output=True, text=True, cwd=str(PEERS))
    data = json.loads(out.stdout.strip().splitlines()[-1])
    data["rss_growth_per_open_case_kb"] = round(
        max(0.0, float(data["peak_rss_mb"]) - float(data["rss_before_run_mb"])) * 1024 / n, 3)
    data["cpu_us_per_case"] = round(float(data["cpu_s"]) / n * 1e6, 1)
    return data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, nargs="*", default=[1000, 10000])
    # one process: N=10,000 runs about as fast at 1,000 as at 2,000 or 5,000; two workers
    # need batches of 1,000 to share the 10,000 (and the 1,000 of round 3) evenly
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--workers", type=int, nargs="*", default=[0, 2],
                    help="0: everything in this process (careflow run, ephemeral Prefect API); "
                         "K > 0: K worker processes against a Prefect server (careflow worker)")
    ap.add_argument("--prefect-db", default="auto",
                    help="database of the workers' Prefect server: auto (a fresh PostgreSQL "
                         "database when one answers on 127.0.0.1, else SQLite), sqlite, or a "
                         "URL; careflow's own case store is a SQLite file either way")
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--peers", nargs="*", default=list(PEER_ENGINES))
    args = ap.parse_args()
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    # peers first: a child forked from this process inherits its peak RSS on Linux, so
    # they must run while this process is still small (careflow imports lazily)
    peers: list[dict[str, object]] = []
    py = None if args.no_peers else ensure_peer_venv()
    if py is not None:
        for n in args.cases:
            for eng in args.peers:
                res = run_peer(py, eng, n)
                print(json.dumps(res), flush=True)
                peers.append(res)
    results: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="careflow-bench-") as tmp:
        # a Prefect home of its own: the ephemeral API's database is not shared with
        # whatever else runs Prefect on this machine
        os.environ.setdefault("PREFECT_HOME", str(Path(tmp) / "prefect"))
        for n in args.cases:
            for workers in args.workers:
                res = run_careflow(n, args.batch, Path(tmp), workers, args.prefect_db)
                print(json.dumps(res), flush=True)
                results.append(res)
    print("\n| N | engine | cases/s | CPU µs/case | peak RSS MB | RSS KB/open case | careflow speed-up"
          " (wall) | (CPU) |")
    print("|---|---|---|---|---|---|---|---|")
    for res in results:
        n = res["cases"]
        print(f"| {n} | {res['engine']} | {res['cases_per_s']} | {res['cpu_us_per_case']} | "
              f"{res['peak_rss_mb']} | {res['rss_growth_per_open_case_kb']} | - | - |")
        for p in (p for p in peers if p["cases"] == n):
            ratio = float(res["cases_per_s"]) / float(p["cases_per_s"])
            cpu_ratio = float(p["cpu_us_per_case"]) / float(res["cpu_us_per_case"])
            print(f"| {n} | {p['engine']} | {p['cases_per_s']} | {p['cpu_us_per_case']} | "
                  f"{p['peak_rss_mb']} | {p['rss_growth_per_open_case_kb']} | {ratio:.2f}x | "
                  f"{cpu_ratio:.2f}x |")


if __name__ == "__main__":
    main()
