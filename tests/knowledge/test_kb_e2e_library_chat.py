"""The SOP library's general_enquiry_chat.yaml end to end with the knowledge base.

Runs the real library (sop_definitions/) in the engine's advance loop on a SQLite file: the
chat e-level answers from the starter knowledge base and records the attempt's outcome.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from engine.clock import SimulatedClock
from engine.knowledge.port import KnowledgePort
from engine.runtime import ops
from engine.runtime.registry import Runtime, unregister_runtime
from engine.runtime.worker import make_runtime, run_until_idle
from engine.store.cases import load_case
from engine.store.db import sessions

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 3, 10, 0, tzinfo=UTC)  # a Tuesday, office hours


@pytest.fixture
def rt(case_db: Any) -> Iterator[Runtime]:
    engine = case_db
    runtime = make_runtime(engine, SimulatedClock(T0), sops=ROOT / "sop_definitions",
                           artifacts=False)
    runtime.advancer.actions.ports["knowledge"] = KnowledgePort(sessions(engine))
    yield runtime
    unregister_runtime(runtime.key)
    engine.dispose()


def chat(rt: Runtime, question: str, language: str) -> str:
    declared = rt.sops.by_id("general_enquiry_chat").spec.data
    field = next(f for f in ("request_text", "question") if f in declared)  # the intake name
    case_id = ops.start_case(rt, "general_enquiry_chat",
                             {field: question, "language": language}, channel="chat")
    run_until_idle(runtime=rt, use_prefect=False)
    return case_id


def state(rt: Runtime, case_id: str) -> dict[str, Any]:
    with Session(rt.engine) as s:
        row = load_case(s, case_id)
        return {"status": row.status, "outcome": row.outcome, "level": row.level,
                "data": (row.state or {}).get("data", {})}


def attempts(rt: Runtime, case_id: str) -> list[dict[str, Any]]:
    return rt.advancer.actions.ports["knowledge"].attempts(case_id)  # type: ignore[no-any-return]


def test_chat_answered_and_confirmed_at_the_e_level(rt: Runtime) -> None:
    case_id = chat(rt, "Hoe lang duurt een levering naar België en wat zijn de verzendkosten?",
                   "nl")
    data = state(rt, case_id)["data"]
    assert data["kb_confident"] is True and "JA of NEE" in data["kb_reply"]
    ops.send_event(rt, case_id, "customer_replied", {"body": "Ja, bedankt!"})
    run_until_idle(runtime=rt, use_prefect=False)
    assert state(rt, case_id)["outcome"] == "resolved_confirmed"
    [attempt] = attempts(rt, case_id)
    assert (attempt["article_id"], attempt["outcome"]) == ("delivery-times.nl", "confirmed")


def test_written_language_wins_over_the_widget_setting(rt: Runtime) -> None:
    case_id = chat(rt, "Ich habe mein Passwort vergessen, bitte helfen Sie mir", "en")
    assert "JA oder NEIN" in state(rt, case_id)["data"]["kb_reply"]
    rt.clock.advance(timedelta(minutes=20))  # type: ignore[attr-defined]
    run_until_idle(runtime=rt, use_prefect=False)
    assert state(rt, case_id)["outcome"] == "resolved_potential"
    assert attempts(rt, case_id)[0]["outcome"] == "potential"


def test_unknown_question_reaches_level_1_with_suggestions(rt: Runtime) -> None:
    case_id = chat(rt, "Do you have vegan options in the staff canteen of your head office?", "en")
    st = state(rt, case_id)
    assert st["level"] == "L1" and st["data"]["kb_confident"] is False
    assert st["data"]["suggestions"] == attempts(rt, case_id)[0]["suggestions"]
    assert attempts(rt, case_id)[0]["outcome"] == "escalated"
