"""Shared set-up of the store and runtime tests: a SQLite file and a throwaway PostgreSQL database."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from engine.store.all_models import load_all
from engine.store.db import make_engine

PG_ADMIN_URL = os.environ.get("CAREFLOW_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def pg_reachable() -> str | None:
    """None when PostgreSQL answers, else the reason."""
    try:
        eng = sa.create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        with eng.connect() as conn:
            conn.execute(sa.text("select 1"))
        eng.dispose()
        return None
    except Exception as exc:  # noqa: BLE001 -- any failure means: skip with the reason
        return f"PostgreSQL at {PG_ADMIN_URL} is unreachable: {type(exc).__name__}: {exc}"


@contextmanager
def throwaway_pg_database(prefix: str = "careflow_t") -> Iterator[str]:
    """Create a fresh database on the PostgreSQL server; yield its URL; drop it afterwards."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def sqlite_url(folder: Path, name: str = "cases.db") -> str:
    return f"sqlite:///{folder / name}"


def fresh_schema(url: str) -> sa.Engine:
    """An engine on ``url`` with every careflow table created (create_all: fast)."""
    engine = make_engine(url)
    load_all().metadata.create_all(engine)
    return engine


def wipe(engine: sa.Engine) -> None:
    """Empty every table (between tests sharing one database)."""
    meta = load_all().metadata
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            names = ", ".join(f'"{t.name}"' for t in meta.sorted_tables)
            conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in reversed(meta.sorted_tables):
                conn.execute(table.delete())
