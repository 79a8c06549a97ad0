"""Fixtures of the store tests: ``db`` runs a test on a SQLite file and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from store_helpers import fresh_schema, pg_reachable, sqlite_url, throwaway_pg_database, wipe

from engine.clock import SimulatedClock


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    reason = pg_reachable()
    if reason:
        pytest.skip(reason)
    with throwaway_pg_database("careflow_store") as url:
        yield url


@pytest.fixture(scope="session")
def pg_engine(pg_url: str) -> Iterator[sa.Engine]:
    engine = fresh_schema(pg_url)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path) -> Iterator[sa.Engine]:  # noqa: ANN001
    """A case database with the full schema: a SQLite file, then PostgreSQL."""
    if request.param == "sqlite":
        engine = fresh_schema(sqlite_url(tmp_path))
        yield engine
        engine.dispose()
    else:
        engine = request.getfixturevalue("pg_engine")
        wipe(engine)
        yield engine


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
