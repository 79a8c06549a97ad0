"""A real careflow API on 127.0.0.1 (uvicorn in a thread) over a real SQLite file."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

LIBRARY_DIR = Path(__file__).parent.parent / "channels" / "library"
SECRETS = ("whsec-new-2026", "whsec-old-2025")
STATUS_SECRET = "status-link-secret"


@pytest.fixture(scope="session")
def library() -> Any:
    from engine.sop.library import load_library

    return load_library(LIBRARY_DIR)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Engine]:
    from engine.store.all_models import load_all
    from engine.store.db import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'api.db'}")
    load_all().metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def session_factory(db: Engine) -> sessionmaker[Session]:
    from engine.store.db import sessions

    return sessions(db)


@dataclass
class Server:
    url: str
    app: Any
    sf: sessionmaker[Session]
    clock: Any = None  # a SimulatedClock at a whole second: signature windows are exact
    secrets: tuple[str, ...] = SECRETS
    status_secret: str = STATUS_SECRET

    def ts(self) -> int:
        return int(self.clock.now().timestamp())

    def post(self, endpoint: str, body: Any, *, secrets: tuple[str, ...] = (SECRETS[0],),
             ts: int | None = None, delivery: str | None = None, raw: bytes | None = None,
             header: str | None = None, form: bool = False) -> httpx.Response:
        from urllib.parse import urlencode

        from connectors.http.signing import signature_header

        if raw is None:
            raw = urlencode(body).encode() if form else json.dumps(body).encode()
        ts = self.ts() if ts is None else ts
        headers = {
            "Content-Type": "application/x-www-form-urlencoded" if form else "application/json",
            "Careflow-Delivery": delivery or f"d-{uuid.uuid4().hex}",
            "Careflow-Signature": header if header is not None else signature_header(secrets, ts, raw),
        }
        return httpx.post(f"{self.url}/v1/intake/{endpoint}", content=raw, headers=headers,
                          timeout=10)

    def wait_processed(self, timeout: float = 10.0) -> None:
        """Until no inbox row is left 'received' (background processing done)."""
        from engine.store.models import InboxRow

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.sf() as s:
                if s.scalars(select(InboxRow.id).where(InboxRow.status == "received")).first() is None:
                    return
            time.sleep(0.02)
        raise AssertionError("inbox rows still unprocessed")


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def run_server(app: Any) -> tuple[str, Callable[[], None]]:
    """Start uvicorn on a free loopback port in a thread; returns (base url, stop)."""
    import uvicorn

    sock = _free_socket()
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", ws="none", lifespan="on", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()

    return f"http://127.0.0.1:{port}", stop


@pytest.fixture
def server(session_factory: sessionmaker[Session], library: Any) -> Iterator[Server]:
    from datetime import UTC, datetime

    from connectors.http.app import ApiSettings, create_app
    from engine.clock import SimulatedClock

    clock = SimulatedClock(datetime.fromtimestamp(int(time.time()), UTC))
    app = create_app(ApiSettings(session_factory, SECRETS, library=library, clock=clock,
                                 status_secret=STATUS_SECRET, sweep_interval=None))
    url, stop = run_server(app)
    try:
        yield Server(url, app, session_factory, clock)
    finally:
        stop()
