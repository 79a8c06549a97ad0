"""Running the engine: until idle (embedded), as a long-lived worker, or against a server.

- ``run_until_idle`` loops the three flows -- fire due timers, advance batches, dispatch
  the outbox -- until nothing is runnable, due or sendable (``careflow run``, the demo,
  tests). With ``use_prefect=False`` it runs the same steps without Prefect (one-shot CLI
  commands, where starting an ephemeral Prefect API would cost seconds).
- ``worker_loop`` is one long-lived process calling the flows in a loop, in-process;
  several can run against PostgreSQL (``careflow worker``).
- ``serve`` points at the Prefect server ``PREFECT_API_URL`` names, or starts
  ``prefect server start --host 127.0.0.1`` and uses it (``careflow serve``).

Prefect is configured here for the life of the process: the flow heartbeat is OFF
(``PREFECT_FLOWS_HEARTBEAT_FREQUENCY=None``: it costs about 1 s per flow run), logging is
quiet (WARNING), and a server started by ``serve`` vacuums flow runs older than the
retention period.
"""

from __future__ import annotations

import contextlib
import gc
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from engine.clock import Clock, SystemClock
from engine.runtime import outbox as ob
from engine.runtime.actions import ActionRunner
from engine.runtime.advance import Advancer
from engine.runtime.due import has_due_outbox, has_due_timers, has_work
from engine.runtime.registry import Runtime, register_runtime, unregister_runtime
from engine.runtime.sops import DEFAULT_SOP_DIR, SopProvider
from engine.runtime.timers import fire_due
from engine.store.db import make_engine

__all__ = ["IdleReport", "make_runtime", "prefect_database_url", "prefect_settings",
           "run_until_idle", "serve", "start_prefect_server", "worker_loop"]

#: an advance flow run goes on taking batches while cases stay runnable, up to this many
#: batches or FLOW_RUN_MAX_S seconds; once it has worked FLOW_RUN_YIELD_AFTER_S seconds it
#: also ends when a timer or message is due (Prefect costs 0.1 s to over 0.3 s per flow
#: run; every batch is still its own transaction and artifact row)
BATCHES_PER_FLOW_RUN = 100
FLOW_RUN_MAX_S = 10.0
FLOW_RUN_YIELD_AFTER_S = 1.0

#: how long a long-lived worker's advance flow run waits for new work once the queue is
#: drained, before it ends (a new flow run costs 0.1 s to over 2 s against a busy server)
WORKER_LINGER_S = 2.0

#: flow runs older than this are deleted by a server careflow starts (Prefect's DB vacuum)
FLOW_RUN_RETENTION_S = 7 * 24 * 3600


def _quiet_env() -> None:
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_LOGGING_SERVER_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "WARNING")
    # the telemetry service writes the API's SQLite database at start-up, racing the
    # first flow run for its lock on a busy machine; careflow does not need it
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # an ephemeral API on a busy 2-core machine can take longer than the default 20 s
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


_SETTINGS_DEPTH = threading.local()


@contextlib.contextmanager
def prefect_settings() -> Iterator[None]:
    """Heartbeat off and quiet logging while the block runs (held by workers for life).

    Re-entrant: an inner block inside an outer one costs nothing. Entering Prefect's
    ``temporary_settings`` anew per pass made every flow run restart its ephemeral API
    client (about 0.1-0.3 s each), so callers that loop (the demo, tests) hold one
    outer block for their whole run.

    The block also holds one Prefect API client (``SyncClientContext``) that every flow run
    in it uses: otherwise each flow run made its own, with a TLS context built from the CA
    bundle even for a plain-HTTP API and a version check (measured: ~38 ms of CPU per flow
    run's start, ~14 ms with the held client).
    """
    depth = getattr(_SETTINGS_DEPTH, "value", 0)
    if depth:
        _SETTINGS_DEPTH.value = depth + 1
        try:
            yield
        finally:
            _SETTINGS_DEPTH.value = depth
        return
    _quiet_env()
    from prefect.context import SyncClientContext
    from prefect.settings import (
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        PREFECT_LOGGING_LEVEL,
        temporary_settings,
    )

    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None,
                                     PREFECT_LOGGING_LEVEL: "WARNING"}), \
            SyncClientContext.get_or_create():
        _SETTINGS_DEPTH.value = 1
        try:
            yield
        finally:
            _SETTINGS_DEPTH.value = 0


_FREEZES = [2]  # start-up heap freezes left in this process


def _freeze_startup_heap() -> None:
    """Move what this process holds now out of the cyclic collector's reach (twice at most).

    A worker's start-up heap -- imports, Prefect's client and ephemeral API, compiled SOPs
    -- lives for the life of the process, yet every older-generation collection walks it
    again: about a sixth of the CPU of the reference benchmark. ``gc.freeze`` parks it in
    the permanent generation; objects made later are collected as before. Called when a
    loop starts and after its first pass (Prefect starts its API on the first flow run),
    then never again, so cyclic garbage of later passes is never frozen.
    """
    if _FREEZES[0] > 0:
        _FREEZES[0] -= 1
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)


#: the cyclic collector's thresholds in a process that runs the engine: a batch allocates
#: millions of short-lived objects (states, commands, rows) and keeps a batch's worth of
#: them alive, so the default (700, 10, 10) walks them again and again; with these the
#: reference benchmark spends about a tenth less CPU (measured: state encoding 117 -> 71
#: us per case). Cyclic garbage is still collected, in larger steps.
GC_THRESHOLDS = (50_000, 20, 100)


def default_ports(engine: Engine) -> dict[str, Any]:
    """The ports every action gets: the knowledge base on the case database, when present."""
    ports: dict[str, Any] = {}
    try:
        from engine.knowledge.port import KnowledgePort
    except ModuleNotFoundError:
        return ports
    from engine.store.db import sessions

    ports["knowledge"] = KnowledgePort(sessions(engine))
    return ports


def make_runtime(engine: Engine | str | None, clock: Clock | None = None, *,
                 sops: SopProvider | str | Path | None = None, worker: str | None = None,
                 lease_s: float = 60.0, artifacts: bool = True,
                 ports: dict[str, Any] | None = None) -> Runtime:
    """Build and register a runtime (engine + clock + SOPs + advancer) for this process.

    ``ports`` are handed to every action (``ctx.ports``); default: ``default_ports``.
    """
    eng = engine if isinstance(engine, Engine) else make_engine(engine)
    clk = clock or SystemClock()
    provider = sops if isinstance(sops, SopProvider) else SopProvider(sops or DEFAULT_SOP_DIR)
    name = worker or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
    provider.register_all(eng, clk)
    runner = ActionRunner(ports=default_ports(eng) if ports is None else ports)
    advancer = Advancer(eng, provider, clk, worker=name, lease_s=lease_s, actions=runner)
    advancer.context()  # calendars, policies, action plugins: loaded now, not by the first batch
    rt = Runtime(key=name, engine=eng, clock=clk, sops=provider, advancer=advancer,
                 worker=name, artifacts=artifacts)
    return register_runtime(rt)


# ---- the loop ---------------------------------------------------------------------------


@dataclass(slots=True)
class IdleReport:
    """Totals of one run_until_idle / worker pass."""

    batches: int = 0
    cases: int = 0
    events: int = 0
    timers_fired: int = 0
    sent: int = 0
    failed: int = 0
    flow_runs: int = 0
    rounds: int = 0
    per_batch: list[dict[str, Any]] = field(default_factory=list)


def _steps(rt: Runtime, use_prefect: bool, batch: int,
           linger_s: float = 0.0) -> tuple[Callable[[], dict[str, Any]], ...]:
    if use_prefect:
        from engine.runtime import flows

        return (lambda: flows.fire_due_timers(rt.key),
                lambda: flows.advance_batch(rt.key, batch, BATCHES_PER_FLOW_RUN, linger_s,
                                            FLOW_RUN_MAX_S, FLOW_RUN_YIELD_AFTER_S),
                lambda: flows.dispatch_outbox(rt.key))

    def timers() -> dict[str, Any]:
        r = fire_due(rt.engine, rt.clock, worker=rt.worker)
        return {"fired": r.fired}

    def advance() -> dict[str, Any]:
        r = rt.advancer.run_batch(batch, claim_next=True)  # run_pass goes on while has_work
        return {"claimed": r.claimed, "committed": r.committed, "events": r.events,
                "batches": 1 if r.claimed else 0}

    def outbox() -> dict[str, Any]:
        rows = ob.claim(rt.engine, rt.clock)
        if not rows:
            return {}
        results = ob.send_rows(rows, record=ob.recorder(rt.engine, rt.clock))
        return ob.finish(rt.engine, rows, results, rt.clock.now(), recorded=True)

    return timers, advance, outbox


def run_pass(rt: Runtime, *, use_prefect: bool = True, batch: int = 500,
             report: IdleReport | None = None, linger_s: float = 0.0) -> IdleReport:
    """One pass: fire due timers, advance every runnable case, dispatch due messages
    (``linger_s``: how long an advance flow run waits for more work; see advance_batch)."""
    rep = report or IdleReport()
    timers, advance, outbox = _steps(rt, use_prefect, batch, linger_s)
    rep.rounds += 1
    if has_due_timers(rt):
        rep.timers_fired += int(timers().get("fired", 0))
        rep.flow_runs += 1
    while has_work(rt):
        out = advance()
        rep.flow_runs += 1
        if not out.get("claimed"):
            break  # runnable cases are leased by another worker
        rep.batches += int(out.get("batches", 1))
        rep.cases += int(out.get("committed", 0))
        rep.events += int(out.get("events", 0))
        rep.per_batch.append(out)
    if has_due_outbox(rt):
        out = outbox()
        rep.flow_runs += 1
        rep.sent += int(out.get("sent", 0))
        rep.failed += int(out.get("failed", 0))
    return rep


def run_until_idle(engine: Engine | str | None = None, clock: Clock | None = None, *,
                   sops: SopProvider | str | Path | None = None, runtime: Runtime | None = None,
                   use_prefect: bool = True, batch: int = 500, max_rounds: int = 1000) -> IdleReport:
    """Loop the three flows until nothing is runnable, due or sendable at ``clock.now()``."""
    rt = runtime or make_runtime(engine, clock, sops=sops)
    rep = IdleReport()
    ctx = prefect_settings() if use_prefect else contextlib.nullcontext()
    try:
        with ctx, _releasing(rt):  # (held cases: max_rounds reached, or an error)
            _freeze_startup_heap()
            for _ in range(max_rounds):
                before = (rep.batches, rep.timers_fired, rep.sent, rep.failed)
                run_pass(rt, use_prefect=use_prefect, batch=batch, report=rep)
                _freeze_startup_heap()
                if (rep.batches, rep.timers_fired, rep.sent, rep.failed) == before:
                    break
    finally:
        if runtime is None:
            unregister_runtime(rt.key)
    return rep


@contextlib.contextmanager
def _releasing(rt: Runtime) -> Iterator[None]:
    """Give back the cases the advancer still holds (claimed ahead) when the block ends.

    When the block ends with an error, a release that fails too (the database is gone) is
    not raised over it: the leases end by themselves."""
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):
            rt.advancer.release_held()
        raise
    rt.advancer.release_held()


def worker_loop(rt: Runtime, *, once: bool = False, batch: int = 500, poll_s: float = 1.0,
                stop: threading.Event | None = None, use_prefect: bool = True,
                on_pass: Callable[[IdleReport], None] | None = None,
                linger_s: float = WORKER_LINGER_S) -> IdleReport:
    """Call the flows in a loop in this process until ``stop`` is set (or one pass).

    An advance flow run that drained the queue waits up to ``linger_s`` for new work
    before it ends (timers and the outbox are served between flow runs, so they wait at
    most that long too)."""
    total = IdleReport()
    stop = stop or threading.Event()
    ctx = prefect_settings() if use_prefect else contextlib.nullcontext()
    with ctx, _releasing(rt):
        _freeze_startup_heap()
        while not stop.is_set():
            rep = run_pass(rt, use_prefect=use_prefect, batch=batch,
                           linger_s=0.0 if once else linger_s)
            _freeze_startup_heap()
            for name in ("batches", "cases", "events", "timers_fired", "sent", "failed",
                         "flow_runs", "rounds"):
                setattr(total, name, getattr(total, name) + getattr(rep, name))
            if on_pass is not None:
                on_pass(rep)
            if once:
                break
            if not rep.batches and not rep.timers_fired and not rep.sent:
                stop.wait(poll_s)
    return total


# ---- serve ------------------------------------------------------------------------------


def _wait_http(url: str, timeout_s: float) -> bool:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2.0).status_code == 200:
                return True
        time.sleep(0.5)
    return False


def prefect_database_url(url: str) -> str:
    """``url`` as the Prefect server takes it: PostgreSQL through asyncpg, SQLite through
    aiosqlite (``postgresql://...`` -> ``postgresql+asyncpg://...``)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"not a database URL: {url!r}")
    base = scheme.split("+", 1)[0]
    driver = {"postgresql": "postgresql+asyncpg", "postgres": "postgresql+asyncpg",
              "sqlite": "sqlite+aiosqlite"}.get(base)
    if driver is None:
        raise ValueError(f"the Prefect server runs on PostgreSQL or SQLite, not {base!r}")
    return f"{driver}://{rest}"


def start_prefect_server(port: int = 4200, timeout_s: float = 60.0, *,
                         database_url: str | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``prefect server start --host 127.0.0.1`` with flow-run retention; returns
    (process, API URL).

    ``database_url``: the Prefect server's own database (default: Prefect's SQLite file in
    PREFECT_HOME). Use PostgreSQL when several workers report to the server: on SQLite,
    two flow runs started at once can make the server answer 503 (SQLITE_BUSY) and the
    Prefect client waits about 2 s before it asks again.
    """
    env = dict(os.environ)
    env.setdefault("PREFECT_SERVER_SERVICES_DB_VACUUM_ENABLED", "events,flow_runs")
    env.setdefault("PREFECT_SERVER_SERVICES_DB_VACUUM_RETENTION_PERIOD", str(FLOW_RUN_RETENTION_S))
    env.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "WARNING")
    if database_url:
        env["PREFECT_API_DATABASE_CONNECTION_URL"] = prefect_database_url(database_url)
    beside = Path(sys.executable).parent / "prefect"  # the venv's script, even off PATH
    exe = str(beside) if beside.exists() else "prefect"
    proc = subprocess.Popen([exe, "server", "start", "--host", "127.0.0.1", "--port",
                             str(port)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    api = f"http://127.0.0.1:{port}/api"
    if not _wait_http(f"{api}/health", timeout_s):
        proc.terminate()
        raise RuntimeError(f"prefect server did not answer on {api} within {timeout_s:.0f} s")
    return proc, api


def _stop_on_signals(stop: threading.Event) -> None:
    """SIGTERM / SIGINT end the loop after the current pass (main thread only), so the
    Prefect server a ``serve`` started is stopped too."""
    import signal

    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())


def serve(engine: Engine | str | None = None, *, sops: str | Path | None = None,
          batch: int = 500, poll_s: float = 1.0, stop: threading.Event | None = None,
          port: int = 4200, prefect_database: str | None = None) -> None:
    """Run a worker loop against a persistent Prefect server (started here, on
    ``prefect_database`` when given, if PREFECT_API_URL names none)."""
    stop = stop or threading.Event()
    _stop_on_signals(stop)
    proc = None
    if not os.environ.get("PREFECT_API_URL"):
        proc, api = start_prefect_server(port, database_url=prefect_database)
        os.environ["PREFECT_API_URL"] = api
    try:
        rt = make_runtime(engine, SystemClock(), sops=sops)
        worker_loop(rt, batch=batch, poll_s=poll_s, stop=stop)
    finally:
        if proc is not None:
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)

