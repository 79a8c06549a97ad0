"""Helpers of the reliability tests: worker processes, a journalling receiver, kill switches.

Everything here runs inside worker processes started with ``multiprocessing`` (spawn or
forkserver), so it lives in an importable module rather than in the test files:

- ``JournalConnector`` is the remote end of the ``relmail`` channel: the ordinary
  ``MemoryConnector`` (per-process idempotency) that also appends every delivery's
  idempotency key to a journal file with one ``O_APPEND`` write, which survives the
  sender being killed -- the "fake SMTP server that records every Message-ID".
- ``worker_main`` is one careflow worker: ``make_runtime`` + ``worker_loop`` without
  Prefect, on the real store, with a short lease.
- ``KillSwitchAction`` wraps a built-in action and SIGKILLs its own process the first
  time it runs for a chosen case (an ``O_EXCL`` marker file makes "first time" hold across
  processes), so a kill lands exactly between claim and commit.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from connectors.memory import MemoryConnector

HERE = Path(__file__).resolve().parent
SOP_DIR = HERE / "sops"
CHANNEL = "relmail"


class JournalConnector(MemoryConnector):
    """A MemoryConnector that also journals each delivery (``config['journal']``) to a file."""

    channels = (CHANNEL,)

    def __init__(self, config: Mapping[str, Any] | None = None, **kw: Any) -> None:
        super().__init__(config, **kw)
        self.journal = str((config or {})["journal"])

    def send(self, msg: Any) -> Any:
        fd = os.open(self.journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{msg.idempotency_key}\n".encode())
        finally:
            os.close(fd)
        return super().send(msg)


def read_journal(path: str | Path) -> Counter[str]:
    """Deliveries per idempotency key recorded by every JournalConnector."""
    p = Path(path)
    if not p.exists():
        return Counter()
    return Counter(line for line in p.read_text().splitlines() if line)


def bind_journal(journal: str | Path, kill_after: int | None = None) -> None:
    """Serve the ``relmail`` channel in this process with a JournalConnector."""
    from connectors import registry

    registry.load_connectors()
    factory = JournalConnector if kill_after is None else _killing_factory(kill_after)
    registry.register("rel-journal", factory, replace=True, channels=(CHANNEL,))
    registry.bind_channel(CHANNEL, "rel-journal", {"journal": str(journal)})


def _killing_factory(kill_after: int) -> Any:
    class KillingJournal(JournalConnector):
        """Dies (SIGKILL) right after its ``kill_after``-th delivery: send done, not yet marked."""

        def send(self, msg: Any) -> Any:
            out = super().send(msg)
            if len(self.sent) >= kill_after:
                os.kill(os.getpid(), signal.SIGKILL)
            return out

    return KillingJournal


class KillSwitchAction:
    """Runs ``inner`` but first kills this process once per victim case (marker files)."""

    def __init__(self, inner: Any, victims: Sequence[str], marker_dir: str | Path) -> None:
        self.inner = inner
        self.victims = frozenset(victims)
        self.marker_dir = Path(marker_dir)

    def __call__(self, inputs: Mapping[str, Any], ctx: Any) -> Any:
        case_id = getattr(ctx, "case_id", None)
        if case_id in self.victims:
            try:
                fd = os.open(self.marker_dir / f"killed-{case_id}", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                pass  # killed once already: this time the step runs
            else:
                os.close(fd)
                os.kill(os.getpid(), signal.SIGKILL)
        with open(self.marker_dir / "runs.log", "a") as log:  # noqa: PTH123 -- one append
            log.write(f"{case_id}\n")
        return self.inner(inputs, ctx)


def worker_main(url: str, name: str, lease_s: float, journal: str, batch: int = 50,
                victims: Sequence[str] = (), marker_dir: str | None = None,
                poll_s: float = 0.05) -> None:
    """One careflow worker process: the pure advance loop (no Prefect) until killed."""
    from rel_preload import PROVIDER

    from engine.runtime.worker import make_runtime, worker_loop
    from engine.store.db import make_engine

    bind_journal(journal)
    if marker_dir is not None:  # which worker ran, and whether anything loaded Prefect
        with open(Path(marker_dir) / "workers.log", "a") as log:  # noqa: PTH123 -- one append
            log.write(f"{name} pid={os.getpid()} prefect={'prefect' in sys.modules}\n")
    engine = make_engine(url, pool_size=2, max_overflow=2)
    rt = make_runtime(engine, sops=PROVIDER, worker=name, lease_s=lease_s,
                      artifacts=False, ports={})
    if victims:
        from engine.actions.builtin import ACTIONS
        from engine.actions.registry import ActionRegistry
        from engine.runtime.actions import ActionRunner

        reg = ActionRegistry()
        switch = KillSwitchAction(ACTIONS["classify_request"], victims, marker_dir or ".")
        for action_name, fn in ACTIONS.items():
            reg.register(action_name, switch if action_name == "classify_request" else fn)
        rt.advancer.actions = ActionRunner(reg)
    worker_loop(rt, batch=batch, poll_s=poll_s, use_prefect=False)


def wait_for(predicate: Any, timeout_s: float, every_s: float = 0.2) -> bool:
    """Poll ``predicate()`` until true or ``timeout_s`` passed; returns its last answer."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every_s)
    return bool(predicate())


def outbox_main(url: str, journal: str, kill_after: int) -> None:
    """One dispatch pass whose connector SIGKILLs this process after ``kill_after`` sends."""
    from rel_preload import PROVIDER

    from engine.runtime.worker import make_runtime, worker_loop

    bind_journal(journal, kill_after=kill_after)
    rt = make_runtime(url, sops=PROVIDER, worker="outbox", artifacts=False, ports={})
    worker_loop(rt, once=True, use_prefect=False)


# ---- R2: SQLite contention ----------------------------------------------------------------

LOCKED = "database is locked"


def sqlite_transitions(db_path: str, mode: str, threads: int, per_thread: int,
                       case_ids: Sequence[str], seed: int) -> tuple[int, int, int, list[str]]:
    """``threads`` threads each try ``per_thread`` read-then-write transitions on ``db_path``.

    One transition: read a case's ``seq``, insert its next applied ``case_events`` row, bump
    the case's ``seq`` -- the shape of every careflow commit. ``mode`` ``immediate`` goes
    through the store (``make_engine``: BEGIN IMMEDIATE); ``deferred`` through a raw sqlite3
    connection with ``isolation_level=None`` and a plain ``BEGIN`` (same pragmas).
    Returns (committed, "database is locked" inside a transaction -- after its reads, the
    failure BEGIN IMMEDIATE exists to prevent --, "database is locked" at BEGIN itself -- the
    write lock not obtained within busy_timeout, nothing done yet --, other errors).
    """
    import random
    import sqlite3
    import threading
    from datetime import UTC, datetime

    done = [0] * threads
    locked = [0] * threads
    at_begin = [0] * threads
    other: list[str] = []
    engine = None
    if mode == "immediate":
        from engine.store.db import make_engine

        engine = make_engine(f"sqlite:///{db_path}", sqlite_synchronous="NORMAL",
                             pool_size=threads, max_overflow=0)

    def immediate(k: int, rng: random.Random) -> None:
        from sqlalchemy.exc import OperationalError

        from engine.store.cases import load_case
        from engine.store.db import session_scope
        from engine.store.models import CaseEventRow

        for _ in range(per_thread):
            cid = rng.choice(case_ids)
            try:
                with session_scope(engine) as s:
                    row = load_case(s, cid)
                    s.add(CaseEventRow(case_id=cid, seq=row.seq + 1, kind="Signal", event={},
                                       status="applied", actor=f"t{k}",
                                       recorded_at=datetime.now(UTC)))
                    row.seq = row.seq + 1
                done[k] += 1
            except OperationalError as exc:
                if LOCKED in str(exc) and exc.statement == "BEGIN IMMEDIATE":
                    at_begin[k] += 1  # waited out busy_timeout for the write lock; nothing done
                elif LOCKED in str(exc):
                    locked[k] += 1
                else:
                    other.append(str(exc)[:200])

    def deferred(k: int, rng: random.Random) -> None:
        conn = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
        for pragma in ("journal_mode=WAL", "busy_timeout=5000", "foreign_keys=ON", "synchronous=NORMAL"):
            conn.execute(f"PRAGMA {pragma}")
        for _ in range(per_thread):
            cid = rng.choice(case_ids)
            try:
                try:
                    conn.execute("BEGIN")
                except sqlite3.OperationalError:
                    at_begin[k] += 1
                    continue
                (seq,) = conn.execute("SELECT seq FROM cases WHERE id = ?", (cid,)).fetchone()
                conn.execute("INSERT INTO case_events (case_id, seq, kind, event, status, actor, "
                             "recorded_at) VALUES (?, ?, 'Signal', '{}', 'applied', ?, ?)",
                             (cid, seq + 1, f"t{k}", datetime.now(UTC).isoformat()))
                conn.execute("UPDATE cases SET seq = ? WHERE id = ?", (seq + 1, cid))
                conn.execute("COMMIT")
                done[k] += 1
            except sqlite3.OperationalError as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if LOCKED in str(exc):
                    locked[k] += 1
                else:
                    other.append(str(exc)[:200])
        conn.close()

    body = immediate if mode == "immediate" else deferred
    workers = [threading.Thread(target=body, args=(k, random.Random(seed * 100 + k)))
               for k in range(threads)]
    for th in workers:
        th.start()
    for th in workers:
        th.join()
    if engine is not None:
        engine.dispose()
    return sum(done), sum(locked), sum(at_begin), other


def sqlite_transitions_main(db_path: str, mode: str, threads: int, per_thread: int,
                            case_ids: Sequence[str], seed: int, out: Any) -> None:
    """``sqlite_transitions`` in a child process; puts its result on ``out``."""
    out.put(sqlite_transitions(db_path, mode, threads, per_thread, case_ids, seed))
