"""The demo's simulated agents are the staff of the shipped agents document, level by level
(the runtime refuses anyone else, so a drift would stop the demo's queues)."""

from __future__ import annotations

from pathlib import Path

from engine.demo.simulation import DemoConfig
from engine.sop import load_library

ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_acts_as_the_agents_of_the_agents_document() -> None:
    agents = load_library(ROOT / "sop_definitions").agents
    assert agents is not None
    staff = {a.id: a.levels for a in agents.agents}
    demo = {f"{level.lower()}-agent-{n}": (level,)
            for level, count in DemoConfig(db_path=Path("unused.db")).agents.items()
            for n in range(1, count + 1)}
    assert staff == demo
