"""Fixtures of the SLA engine tests: a runtime on a SQLite file, a SimulatedClock, test SOPs.

The SOPs in ``sops/`` (with their own levels, 9-17 calendar and SLA policies) are loaded
once per session by the real library loader; every test gets a fresh SQLite file with the
full schema and a runtime on ``SimulatedClock(MONDAY_9)`` (sla_engine_helpers.Sim).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sla_engine_helpers import MONDAY_9, SOPS, Sim  # noqa: E402 -- needs the path above

from engine.clock import SimulatedClock  # noqa: E402
from engine.runtime.registry import unregister_runtime  # noqa: E402
from engine.runtime.sops import SopProvider  # noqa: E402
from engine.runtime.worker import make_runtime  # noqa: E402
from engine.store.all_models import load_all  # noqa: E402
from engine.store.db import make_engine  # noqa: E402


@pytest.fixture(scope="session")
def sla_sops() -> SopProvider:
    provider = SopProvider(SOPS)
    provider.library  # noqa: B018 -- load and compile once per session
    return provider


@pytest.fixture
def sim(tmp_path: Path, sla_sops: SopProvider) -> Iterator[Sim]:
    engine = make_engine(f"sqlite:///{tmp_path / 'cases.db'}")
    load_all().metadata.create_all(engine)
    clock = SimulatedClock(MONDAY_9)
    rt = make_runtime(engine, clock, sops=sla_sops, worker="sla-engine-test", ports={})
    try:
        yield Sim(rt, clock)
    finally:
        unregister_runtime(rt.key)
        engine.dispose()
