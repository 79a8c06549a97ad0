"""Fixtures of the reliability tests: a throwaway PostgreSQL database, worker contexts."""

from __future__ import annotations

import multiprocessing
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "store"))
sys.path.insert(0, str(HERE))

from store_helpers import fresh_schema, pg_reachable, throwaway_pg_database  # noqa: E402


@pytest.fixture(scope="module")
def rel_pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database (CREATE DATABASE careflow_rel_*), dropped afterwards."""
    reason = pg_reachable()
    if reason:
        pytest.skip(reason)
    with throwaway_pg_database("careflow_rel") as url:
        yield url


@pytest.fixture(scope="module")
def rel_pg_engine(rel_pg_url: str) -> Iterator[sa.Engine]:
    engine = fresh_schema(rel_pg_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def worker_context() -> multiprocessing.context.BaseContext:
    """Clean worker processes, fast to respawn: a forkserver that preloaded careflow.

    Each child is forked from a fresh server process (not from pytest, which holds
    connections and threads), like ``spawn``; ``spawn`` itself costs ~2.4 s per process on
    this loaded 2-core machine, longer than the 0.3-0.5 s between kills.
    """
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["rel_support", "rel_preload", "engine.runtime.worker", "engine.runtime.sops",
                                "engine.interpreter.step", "engine.actions.builtin",
                                "sqlalchemy.dialects.postgresql.psycopg", "psycopg"])
    return ctx
