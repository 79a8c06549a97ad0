"""Fixtures of the SOP-pipeline tests: the canonical example and a small organisation library."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "sop_definitions" / "password_reset.yaml"

LEVELS = """\
kind: levels
levels:
  - {id: e, name: e-level, rank: 0, automated: true}
  - {id: L1, name: Level 1, rank: 1, ola: ola_l1}
  - {id: L2, name: Level 2, rank: 2}
  - {id: specialist, name: Specialists, rank: 3}
"""
CALENDAR = """\
kind: calendar
id: office_nl
timezone: Europe/Amsterdam
week:
  mon: ["08:00-17:00"]
  tue: [["08:00", "12:00"], ["13:00", "17:00"]]
recurring_holidays: ["12-25"]
closures: ["2026-04-27"]
"""
POLICY = """\
kind: sla_policy
id: ola_l1
order: 10
calendar: office_nl
when: case.priority == "high"
reopen_window: P7D
metrics:
  first_response:
    target: 4h
    by_priority: {critical: 1h}
    warnings: [{percent: 80}]
    escalation: [{after: 0h, to_level: L2}]
"""
ROUTING = """\
kind: routing
fallback: password_reset
rules:
  - sop: password_reset
    channels: [email, web]
    when: subject.contains("password")
    priority: normal
"""


@pytest.fixture()
def example_text() -> str:
    """The canonical example SOP as text."""
    return EXAMPLE.read_text(encoding="utf-8")


@pytest.fixture()
def org_library(tmp_path: Path, example_text: str) -> Path:
    """A folder with the example SOP plus levels, a calendar, a policy and routing."""
    (tmp_path / "org").mkdir()
    (tmp_path / "password_reset.yaml").write_text(example_text, encoding="utf-8")
    for name, text in (("levels", LEVELS), ("calendar", CALENDAR), ("policy", POLICY),
                       ("routing", ROUTING)):
        (tmp_path / "org" / f"{name}.yaml").write_text(text, encoding="utf-8")
    return tmp_path
