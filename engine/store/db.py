"""Connections to the case database: engine factory, SQLite durability settings, sessions.

``make_engine(url)`` is the one way to open the case database. SQLite gets WAL,
``busy_timeout`` 5000 ms, foreign keys, ``synchronous=FULL`` (a commit is on disk when it
returns) and ``BEGIN IMMEDIATE`` for every transaction: deferred ``BEGIN`` turns
read-then-write transactions into "database is locked" errors under several writers
(measured: 65 in 3,000 jobs; IMMEDIATE: 0 in 13,000). PostgreSQL goes through psycopg 3;
claims there use ``SELECT ... FOR UPDATE SKIP LOCKED`` (engine.store.claims).

The recipe is SQLAlchemy's documented one for pysqlite: turn the driver's own
transaction handling off (``isolation_level=None``) and emit ``BEGIN IMMEDIATE`` in the
engine's ``begin`` event.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from engine.errors import StoreError
from engine.store import bulk

__all__ = [
    "DEFAULT_URL",
    "ENV_URL",
    "driver_rows",
    "is_postgres",
    "is_sqlite",
    "make_engine",
    "read_session",
    "resolve_url",
    "session_scope",
    "sessions",
]

ENV_URL = "CAREFLOW_DATABASE_URL"
#: execution option of a connection that only reads (SQLite: deferred BEGIN, no write lock)
READ_ONLY = "careflow_read_only"
DEFAULT_URL = "sqlite:///careflow.db"
#: filesystems on which SQLite's WAL locking is unsafe (several hosts, no shared memory)
NETWORK_FILESYSTEMS = frozenset({"nfs", "nfs4", "cifs", "smbfs", "smb3", "sshfs", "fuse.sshfs",
                                 "9p", "afs", "glusterfs", "ceph", "lustre", "gpfs"})


def resolve_url(url: str | None = None) -> str:
    """The database URL: ``url``, else ``$CAREFLOW_DATABASE_URL``, else ./careflow.db."""
    return url or os.environ.get(ENV_URL) or DEFAULT_URL


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def _filesystem_type(path: Path) -> str | None:
    """The mount type holding ``path`` (Linux /proc/mounts), None when unknown."""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return None
    target = str(path.resolve())
    best, best_type = "", None
    for line in mounts:
        parts = line.split()
        if len(parts) >= 3 and (target == parts[1] or target.startswith(parts[1].rstrip("/") + "/")):
            if len(parts[1]) > len(best):
                best, best_type = parts[1], parts[2]
    return best_type


def _check_sqlite_path(database: str | None) -> None:
    if not database or database == ":memory:":
        return
    folder = Path(database).resolve().parent
    if not folder.is_dir():
        raise StoreError(f"no folder {str(folder)!r} for the SQLite database {database!r}: "
                         f"create it, or point CAREFLOW_DATABASE_URL / --db elsewhere")
    fs = _filesystem_type(folder)
    if fs in NETWORK_FILESYSTEMS:
        raise StoreError(
            f"refusing SQLite database {database!r} on a network filesystem ({fs}): WAL locking "
            "needs every process on one host; use PostgreSQL (CAREFLOW_DATABASE_URL) instead"
        )


def _null(value: None) -> None:
    return value


# The sqlite3 module binds None through its adapter protocol, and on Python 3.11 a miss
# there formats an AttributeError it then discards (~2 µs per NULL parameter; a case's
# batch binds about 25). An adapter for None itself makes it a dictionary hit; None is
# still bound as NULL.
sqlite3.register_adapter(type(None), _null)


#: SQLite ``synchronous`` levels careflow accepts: FULL (default, every commit durable) or NORMAL
#: (WAL stays consistent after a crash, but the last commits may be lost on power failure;
#: for simulations and throwaway databases such as the demo's)
SQLITE_SYNCHRONOUS = ("FULL", "NORMAL")


#: how long a write transaction waits for SQLite's write lock before it gives up
BEGIN_WAIT_S = 60.0


def _install_sqlite_pragmas(engine: Engine, synchronous: str = "FULL") -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        if conn.get_execution_options().get(READ_ONLY):
            conn.exec_driver_sql("BEGIN")  # a pure read: no write lock, sees a snapshot
        else:
            _begin_immediate(conn)


#: SQLite's busy_timeout for every statement but BEGIN IMMEDIATE (milliseconds)
BUSY_TIMEOUT_MS = 5000

#: the first and the longest pause between two tries of BEGIN IMMEDIATE (seconds)
BEGIN_PAUSE_S = (0.0005, 0.004)


def _begin_immediate(conn: Any) -> None:
    """Take the write lock, waiting out writers that hold it longer than busy_timeout.

    BEGIN IMMEDIATE is tried with SQLite's busy handler off and retried here every few
    milliseconds: SQLite's own handler sleeps up to 100 ms between tries, so a worker
    waiting for another's commit (a few hundred ms for a batch) lost tens of
    milliseconds after every release; here it starts within ~4 ms. Nothing has been read
    or written when BEGIN IMMEDIATE fails, so trying again is safe; a writer holding the
    lock for more than ``BEGIN_WAIT_S`` is an incident, not contention.
    """
    raw = conn.connection.driver_connection
    deadline = time.monotonic() + BEGIN_WAIT_S
    pause, longest = BEGIN_PAUSE_S
    raw.execute("PRAGMA busy_timeout=0")
    try:
        while True:
            try:
                raw.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise OperationalError("BEGIN IMMEDIATE", None, exc) from exc
                time.sleep(pause)
                pause = min(pause * 2, longest)
    finally:
        raw.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")


def make_engine(url: str | None = None, *, sqlite_synchronous: str = "FULL",
                **kwargs: Any) -> Engine:
    """Open the case database named by ``url`` (see resolve_url) with careflow's settings.

    ``sqlite_synchronous`` is FULL (durable commits, the default) or NORMAL (see
    SQLITE_SYNCHRONOUS); it does not apply to PostgreSQL.

    Raises:
        StoreError: a SQLite file on a network filesystem, or an unknown synchronous level.
    """
    if sqlite_synchronous not in SQLITE_SYNCHRONOUS:
        raise StoreError(f"sqlite_synchronous must be one of {', '.join(SQLITE_SYNCHRONOUS)}, "
                         f"not {sqlite_synchronous!r}")
    resolved = make_url(resolve_url(url))
    backend = resolved.get_backend_name()
    kwargs.setdefault("json_serializer", bulk.dumps)  # every JSON column: orjson both ways
    kwargs.setdefault("json_deserializer", bulk.loads)
    if backend == "sqlite":
        _check_sqlite_path(resolved.database)
        kwargs.setdefault("connect_args", {}).setdefault("check_same_thread", False)
        engine = create_engine(resolved, **kwargs)
        _install_sqlite_pragmas(engine, sqlite_synchronous)
        return engine
    if backend == "postgresql" and resolved.drivername == "postgresql":
        resolved = resolved.set(drivername="postgresql+psycopg")
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(resolved, **kwargs)


def driver_rows(engine: Engine, sql: str, params: Any = ()) -> list[Any]:
    """The rows of the read-only ``sql`` (driver placeholders and values) on a pooled driver
    connection: no SQLAlchemy Connection, transaction or result object around it, which cost
    ~95 µs of CPU per query, more than a probe's SELECT itself by twenty times. On SQLite the
    SELECT runs outside any transaction, so it never takes the write lock."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        try:
            cursor.execute(sql, params)
            return cursor.fetchall()
        finally:
            cursor.close()
    finally:
        raw.close()  # back to the pool, rolled back (PostgreSQL opened a transaction)


def sessions(engine: Engine) -> sessionmaker[Session]:
    """A session factory for ``engine``; objects stay readable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


def read_session(engine: Engine) -> Session:
    """A session for reads only: on SQLite its transactions take no write lock, so a
    report or ``careflow case show`` never blocks (or is blocked by) a worker's commit
    for longer than SQLite's own snapshot rules. Never write through it."""
    return Session(engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One transaction: commit on success, roll back on error."""
    with Session(engine, expire_on_commit=False) as session, session.begin():
        yield session
