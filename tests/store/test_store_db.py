"""Executable spec of the database settings and migrations: durable SQLite, BEGIN IMMEDIATE,
no SQLite on network filesystems, and Alembic's upgrade equals the models on SQLite and PG."""

from __future__ import annotations

import sqlite3

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session
from store_helpers import pg_reachable, sqlite_url, throwaway_pg_database

from engine.errors import StoreError
from engine.store import db as dbmod
from engine.store import migrate


def test_sqlite_is_durable_wal_with_foreign_keys(tmp_path) -> None:  # noqa: ANN001
    engine = dbmod.make_engine(sqlite_url(tmp_path))
    with engine.connect() as conn:
        pragma = {name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                  for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")}
    assert pragma == {"journal_mode": "wal", "synchronous": 2, "foreign_keys": 1,
                      "busy_timeout": 5000}


def test_every_sqlite_transaction_takes_the_write_lock_at_begin(tmp_path) -> None:  # noqa: ANN001
    """A transaction that has only read still holds the write lock (BEGIN IMMEDIATE), so a
    read-then-write transaction can never fail half way with "database is locked"."""
    path = tmp_path / "lock.db"
    engine = dbmod.make_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    other = sqlite3.connect(path, timeout=0.05, isolation_level=None)
    with Session(engine) as session, session.begin():
        session.execute(sa.text("SELECT count(*) FROM t"))  # a read only
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
    other.execute("BEGIN IMMEDIATE")  # free again after commit
    other.execute("ROLLBACK")
    other.close()


def test_a_sqlite_file_on_a_network_filesystem_is_refused(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(dbmod, "_filesystem_type", lambda path: "nfs4")
    with pytest.raises(StoreError, match="network filesystem \\(nfs4\\).*PostgreSQL"):
        dbmod.make_engine(sqlite_url(tmp_path))


def test_a_sqlite_file_in_a_missing_folder_is_refused_with_what_to_do(tmp_path) -> None:  # noqa: ANN001
    with pytest.raises(StoreError, match="no folder .*nope.*CAREFLOW_DATABASE_URL"):
        dbmod.make_engine(f"sqlite:///{tmp_path / 'nope' / 'x.db'}")


def test_default_url_comes_from_the_environment(monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv(dbmod.ENV_URL, "postgresql+psycopg://u@h/db")
    assert dbmod.resolve_url() == "postgresql+psycopg://u@h/db"
    monkeypatch.delenv(dbmod.ENV_URL)
    assert dbmod.resolve_url() == "sqlite:///careflow.db"


def test_alembic_upgrade_matches_the_models_on_sqlite_and_postgres(tmp_path) -> None:  # noqa: ANN001
    url = sqlite_url(tmp_path, "migrated.db")
    migrate.upgrade(url)
    assert migrate.compare(url) == []
    reason = pg_reachable()
    if reason:
        pytest.skip(reason)
    with throwaway_pg_database("careflow_mig") as pg_url:
        migrate.upgrade(pg_url)
        assert migrate.compare(pg_url) == []
