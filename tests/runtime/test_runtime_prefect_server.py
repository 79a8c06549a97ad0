"""The Prefect server careflow starts for several workers: on PostgreSQL when asked
(``careflow serve --prefect-db``), with a real careflow command reporting its flow runs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from engine.runtime.worker import prefect_database_url, start_prefect_server

REPO = Path(__file__).resolve().parents[2]
PREFECT_DB = "careflow_test_prefect"


def test_database_urls_are_given_prefects_async_drivers() -> None:
    assert prefect_database_url("postgresql://u@h:5432/d") == "postgresql+asyncpg://u@h:5432/d"
    assert prefect_database_url("postgresql+psycopg://u@h/d") == "postgresql+asyncpg://u@h/d"
    assert prefect_database_url("sqlite:////tmp/p.db") == "sqlite+aiosqlite:////tmp/p.db"
    with pytest.raises(ValueError, match="PostgreSQL or SQLite, not 'mysql'"):
        prefect_database_url("mysql://u@h/d")
    with pytest.raises(ValueError, match="not a database URL"):
        prefect_database_url("nonsense")


@pytest.fixture
def prefect_pg(pg_admin_url: str) -> str:  # noqa: ANN001
    """A fresh PostgreSQL database for a Prefect server (with pg_trgm, which it needs)."""
    admin = create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {PREFECT_DB} WITH (FORCE)"))
        conn.execute(text(f"CREATE DATABASE {PREFECT_DB}"))
    url = admin.url.set(database=PREFECT_DB)
    admin.dispose()
    eng = create_engine(url, isolation_level="AUTOCOMMIT")
    with eng.connect() as conn:
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    eng.dispose()
    return url.render_as_string(hide_password=False)


@pytest.fixture
def pg_admin_url() -> str:
    url = os.environ.get("CAREFLOW_TEST_PG_ADMIN_URL",
                         "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    probe = create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with probe.connect():
            pass
    except Exception as exc:  # noqa: BLE001 -- the marker says what this test needs
        pytest.fail(f"PostgreSQL at {url} is needed: {exc}")
    finally:
        probe.dispose()
    return url


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.postgres
@pytest.mark.slow
def test_the_engine_reports_its_flow_runs_to_a_prefect_server_on_postgresql(
        prefect_pg: str, tmp_path: Path) -> None:
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect"),
           "CAREFLOW_DATABASE_URL": f"sqlite:///{tmp_path / 'cases.db'}"}
    env.pop("PREFECT_API_URL", None)
    careflow = [sys.executable, str(REPO / "cli.py")]
    sops = ["--sops", str(REPO / "sop_definitions")]
    old = dict(os.environ)
    os.environ["PREFECT_HOME"] = env["PREFECT_HOME"]
    try:
        server, api = start_prefect_server(_free_port(), timeout_s=120, database_url=prefect_pg)
    finally:
        os.environ.clear()
        os.environ.update(old)
    try:
        subprocess.run([*careflow, "db", "upgrade"], env=env, check=True, capture_output=True)
        # with PREFECT_API_URL set, the command advances the case through the server's flows
        started = subprocess.run([*careflow, "case", "start", "password_reset", "-d",
                                  "request_text=I am locked out", *sops],
                                 env={**env, "PREFECT_API_URL": api}, capture_output=True,
                                 text=True, timeout=300)
        assert started.returncode == 0, started.stderr
        assert "open task" in started.stdout and "[L1]" in started.stdout
        runs = httpx.post(f"{api}/flow_runs/filter", json={"limit": 50}, timeout=30).json()
        names = {httpx.get(f"{api}/flows/{r['flow_id']}", timeout=30).json()["name"]
                 for r in runs}
        assert names and names <= {"careflow-advance-batch", "careflow-fire-due-timers",
                                   "careflow-dispatch-outbox"}
        assert all(r["state_type"] == "COMPLETED" for r in runs)
        prefect_db = create_engine(prefect_pg)
        with prefect_db.connect() as conn:  # Prefect's own rows are in PostgreSQL
            assert conn.execute(text("SELECT count(*) FROM flow_run")).scalar() == len(runs)
        prefect_db.dispose()
    finally:
        server.terminate()
        server.wait(timeout=60)
