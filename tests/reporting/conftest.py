"""Shared fixtures of the reporting tests: hand-made case facts and one small demo case store."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from engine.reporting.context import ReportContext
from engine.reporting.facts import CaseFacts, ClockFact, LevelMove, TaskFact

ROOT = Path(__file__).resolve().parents[2]
SOPS = ROOT / "sop_definitions"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def case(cid: str, created: datetime, *, ended: datetime | None = None, status: str | None = None,
         **kw: Any) -> CaseFacts:
    """A case fact with defaults (web, e-level, normal, standard, SOP s1)."""
    defaults: dict[str, Any] = {"sop": "s1", "channel": "web", "level": "e", "priority": "normal",
                                "tier": "standard", "outcome": None, "customer": None}
    defaults.update(kw)
    st = status or ("resolved" if ended else "open")
    return CaseFacts(id=cid, status=st, created_at=created, ended_at=ended, **defaults)


def clock(metric: str, state: str = "completed", *, breached: bool = False, started: datetime | None = None,
          completed: datetime | None = None, business: float | None = None,
          breached_at: datetime | None = None) -> ClockFact:
    return ClockFact(metric, metric, state, breached, started, completed, business, breached_at)


def move(kind: str, source: str, target: str, at: datetime) -> LevelMove:
    return LevelMove(kind, source, target, at)


def task(level: str, created: datetime, status: str = "completed", article: str | None = None) -> TaskFact:
    return TaskFact("work", level, status, created, created if status == "completed" else None, article)


@pytest.fixture(scope="session")
def office_nl() -> Any:
    from engine.sla.org import load_calendar

    return load_calendar("office_nl", SOPS / "org")


@pytest.fixture
def make_ctx(office_nl: Any) -> Any:
    def make(now: datetime = utc(2026, 12, 1), period: str = "month") -> ReportContext:
        return ReportContext(calendar=office_nl, tz="Europe/Amsterdam", now=now, period=period)
    return make


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real case store from the demo (60 contacts, no Prefect): built once per session."""
    from engine.demo.simulation import DemoConfig, Simulation

    path = tmp_path_factory.mktemp("demo") / "demo.db"
    Simulation(DemoConfig(db_path=path, sop_dir=SOPS, limit=60, follow_days=1, use_prefect=False)).execute()
    return path


@pytest.fixture
def demo_copy(demo_db: Path, tmp_path: Path) -> Path:
    """A private copy of the demo store a test may write to."""
    target = tmp_path / "copy.db"
    shutil.copy(demo_db, target)
    return target
