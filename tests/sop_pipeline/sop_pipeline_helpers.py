"""Shared constants of the SOP-pipeline tests (a uniquely named module, importable from tests)."""

from __future__ import annotations

from pathlib import Path

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
