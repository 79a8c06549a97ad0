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
