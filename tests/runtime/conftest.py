"""Fixtures of the runtime tests: ONE Prefect test harness per session, SOPs, databases."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "store"))

from store_helpers import (  # noqa: E402 -- needs the path above
    fresh_schema,
    pg_reachable,
    sqlite_url,
    throwaway_pg_database,
    wipe,
)

from engine.clock import SimulatedClock  # noqa: E402
from engine.runtime.sops import SopProvider  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """A temporary Prefect API for the whole session (it costs seconds to start)."""
    from engine.runtime.worker import _quiet_env, prefect_settings

    _quiet_env()  # before Prefect reads its settings
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120), prefect_settings():
        yield


#: the people of these tests, added to a copy of the library's agents document
TEST_STAFF = """\
  - {id: ann, name: Ann, levels: [L1], roles: [service_desk_agent]}
  - {id: cem, name: Cem, levels: [L1], roles: [service_desk_agent]}
  - {id: bob, name: Bob, levels: [L2], roles: [identity_specialist]}
  - {id: bea, name: Bea, levels: [L2], roles: [billing_specialist]}
"""


@pytest.fixture(scope="session")
def library_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the repository's SOP library whose agents document also lists the test
    staff (ann, cem, bob, bea): the library's documents as shipped, roles enforced."""
    folder = tmp_path_factory.mktemp("library") / "sop_definitions"
    shutil.copytree(REPO / "sop_definitions", folder)
    agents = folder / "org" / "agents.yaml"
    agents.write_text(agents.read_text() + TEST_STAFF)
    return folder


@pytest.fixture(scope="session")
def library_sops(library_dir: Path) -> SopProvider:
    """The repository's SOP library (with the test staff), loaded once."""
    provider = SopProvider(library_dir)
    provider.library  # noqa: B018 -- load now, once
    return provider


@pytest.fixture(scope="session")
def rt_pg_url() -> Iterator[str]:
    reason = pg_reachable()
    if reason:
        pytest.skip(reason)
    with throwaway_pg_database("careflow_rt") as url:
        yield url


@pytest.fixture(scope="session")
def rt_pg_engine(rt_pg_url: str) -> Iterator[sa.Engine]:
    engine = fresh_schema(rt_pg_url)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    """A case database with the full schema: a SQLite file, then PostgreSQL."""
    if request.param == "sqlite":
        eng = fresh_schema(sqlite_url(tmp_path))
        yield eng
        eng.dispose()
    else:
        eng = request.getfixturevalue("rt_pg_engine")
        wipe(eng)
        yield eng


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))  # a Monday, office hours
