"""The organisation documents under sop_definitions/org/, and the YAML examples in docs/sla.md."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from engine.sla.clock import start_clock
from engine.sla.org import iter_org_documents, load_calendar, load_calendars, load_policies
from engine.sla.policy import select_policy
from engine.sla.timers import due_timers
from engine.sop import load_document
from engine.sop.model import CalendarSpec, LevelsDoc, SlaPolicyDoc

ROOT = Path(__file__).resolve().parents[2]
ORG = ROOT / "sop_definitions" / "org"
AMS = ZoneInfo("Europe/Amsterdam")


@pytest.fixture(scope="module")
def docs() -> list[object]:
    return list(iter_org_documents(ORG))


def test_levels(docs: list[object]) -> None:
    (levels,) = [d for d in docs if isinstance(d, LevelsDoc)]
    ranks = {lvl.id: lvl.rank for lvl in levels.levels}
    assert ranks == {"e": 0, "L1": 1, "L2": 2, "specialist": 3}
    policies = {p.id: p for p in load_policies(ORG)}  # type: ignore[attr-defined]
    for lvl in levels.levels:
        assert lvl.description
        assert lvl.ola in policies
        assert "ola" in policies[lvl.ola].metrics
    assert [lvl.automated for lvl in levels.levels] == [True, False, False, False]


def test_calendars_build(docs: list[object]) -> None:
    cals = load_calendars(ORG)
    assert {"office_nl", "always_open", "support_de", "night_desk"} <= set(cals)
    assert all(isinstance(d.id, str) for d in docs if isinstance(d, CalendarSpec))
    office = cals["office_nl"]
    assert office.add(datetime(2026, 1, 5, 11, 30, tzinfo=AMS), 3600) == datetime(
        2026, 1, 5, 13, 30, tzinfo=AMS
    )
    assert not office.is_open(datetime(2026, 4, 27, 10, tzinfo=AMS))  # King's Day (NL)
    assert not office.is_open(datetime(2027, 12, 24, 10, tzinfo=AMS))  # recurring 12-24
    de = cals["support_de"]
    assert de.is_open(datetime(2026, 1, 10, 10, tzinfo=ZoneInfo("Europe/Berlin")))  # Saturday
    assert not de.is_open(datetime(2026, 10, 3, 10, tzinfo=ZoneInfo("Europe/Berlin")))  # Unity Day


def test_every_policy_names_a_known_calendar() -> None:
    cals = load_calendars(ORG)
    for p in load_policies(ORG):
        assert isinstance(p, SlaPolicyDoc)
        assert p.calendar in cals, p.id


def test_gold_and_default_policies() -> None:
    policies = load_policies(ORG)
    gold = select_policy(policies, "first_response", {"tier": "gold", "priority": "normal"})  # type: ignore[arg-type]
    default = select_policy(policies, "first_response", {"tier": "standard"})  # type: ignore[arg-type]
    assert gold is not None
    assert (gold.id, gold.order) == ("sla_gold", 10)
    assert default is not None
    assert (default.id, default.order, default.when) == ("sla_default", 100, None)
    for p in (gold, default):
        assert {"first_response", "next_reply", "periodic_update", "resolution_total"} <= set(
            p.metrics
        )
        fr = p.metrics["first_response"]
        assert [(w.percent, w.minutes_before) for w in fr.warnings] == [(75, None), (None, 15)]
        assert [(s.after.seconds, s.to_level, s.notify) for s in fr.escalation] == [
            (0, "L2", None),
            (7200, None, "supervisor"),
            (14400, None, "head_of_department"),
        ]


def test_org_policy_drives_a_clock() -> None:
    policies = load_policies(ORG)
    cal = load_calendar("office_nl", ORG)
    pol = select_policy(policies, "first_response", {"tier": "silver", "priority": "low"})  # type: ignore[arg-type]
    assert pol is not None
    clock = start_clock(
        "fr",
        "first_response",
        pol,
        pol.metrics["first_response"],
        cal,
        datetime(2026, 1, 5, 9, tzinfo=AMS),
        priority="low",
        tier="silver",
    )
    assert clock.target_seconds == 2 * 3600  # the silver tier target beats the low priority one
    assert [t.kind for t in due_timers(clock, None, cal)][:3] == [
        "sla_warning",
        "sla_warning",
        "sla_breach",
    ]


def test_password_reset_references_exist() -> None:
    text = (ROOT / "sop_definitions" / "password_reset.yaml").read_text()
    assert set(re.findall(r"calendar: (\w+)", text)) <= set(load_calendars(ORG))
    (levels,) = [d for d in iter_org_documents(ORG) if isinstance(d, LevelsDoc)]
    used = set(re.findall(r"\blevel: (\w+)", text)) | set(re.findall(r"\bto: (\w+)", text))
    assert used <= {lvl.id for lvl in levels.levels}


def _doc_examples() -> list[str]:
    text = (ROOT / "docs" / "sla.md").read_text()
    return [b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if "kind:" in b]


@pytest.mark.parametrize("index", range(len(_doc_examples())))
def test_docs_yaml_examples_validate(index: int, tmp_path: Path) -> None:
    path = tmp_path / f"example_{index}.yaml"
    path.write_text(_doc_examples()[index])
    doc = load_document(path)
    if isinstance(doc, CalendarSpec):
        from engine.sla.calendar import BusinessCalendar

        BusinessCalendar.from_spec(doc)


def test_docs_have_examples() -> None:
    assert len(_doc_examples()) >= 4
