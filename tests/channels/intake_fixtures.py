"""Fixtures shared by the channel/intake and CRM tests: a real SQLite case database, the
small SOP library in tests/channels/library, a simulated clock. Their conftests import them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from engine.clock import SimulatedClock

LIBRARY_DIR = Path(__file__).parent / "library"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def library() -> Any:
    from engine.sop.library import load_library

    return load_library(LIBRARY_DIR)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Engine]:
    from engine.store.all_models import load_all
    from engine.store.db import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'careflow.db'}")
    load_all().metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def session(db: Engine) -> Iterator[Session]:
    with Session(db, expire_on_commit=False) as s, s.begin():
        yield s


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(T0)
