"""E-level self-service through the registered actions and the KnowledgePort (real SQLite file)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from engine.actions.registry import ActionContext, load_actions
from engine.errors import ActionFailed
from engine.interpreter.types import ActionCompleted, ActionFailedEvent, RunAction
from engine.knowledge.elevel import classify_feedback, elevel_stats
from engine.knowledge.port import KnowledgePort
from engine.store.db import sessions

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def ctx(port: KnowledgePort | None, case_id: str = "C-1", key: str | None = None,
        now: datetime = T0) -> ActionContext:
    ports = {"knowledge": port} if port is not None else {}
    return ActionContext(case_id, "try_kb", 1, key or f"{case_id}:try_kb:1", now, ports)


@pytest.fixture
def port(shared_starter: Engine) -> KnowledgePort:
    return KnowledgePort(sessions(shared_starter))


def test_the_knowledge_plugin_registers_its_actions() -> None:
    registry = load_actions()
    for name in ("kb_answer", "kb_suggest", "kb_outcome", "kb_lookup"):
        assert registry.plugin_of(name) == "knowledge"


def test_confident_answer_in_the_customers_language(port: KnowledgePort) -> None:
    actions = load_actions()
    result = actions.get("kb_answer")(
        {"query": "Ik ben mijn wachtwoord vergeten, hoe krijg ik een nieuw?", "threshold": 0.6},
        ctx(port))
    assert result["confident"] is True and result["article_id"] == "password-reset.nl"
    assert result["language"] == "nl"
    assert "Wachtwoord vergeten?" in result["answer_text"]
    assert result["reply_text"].endswith("Bij NEE neemt een collega het van ons over.")
    assert "**" not in result["answer_text"]  # plain text for chat and SMS
    assert port.attempts("C-1")[0]["outcome"] == "pending"


def test_low_confidence_escalates_with_suggestions(port: KnowledgePort) -> None:
    result = load_actions().get("kb_answer")(
        {"query": "My smart fridge shows error F7 since the power cut last night, "
                  "the ice maker is leaking water", "threshold": 0.6}, ctx(port, "C-2"))
    assert result["confident"] is False and result["article_id"] is None
    assert result["answer_text"] == "" and len(result["suggestions"]) >= 1
    attempt = port.attempts("C-2")[0]
    assert (attempt["outcome"], attempt["reason"]) == ("escalated", "low_confidence")


def test_threshold_is_per_call(port: KnowledgePort) -> None:
    query = {"query": "What are your opening hours on Saturday?"}
    kb_answer = load_actions().get("kb_answer")
    strict = kb_answer({**query, "threshold": 1.0}, ctx(port, "C-3", "k3"))
    lenient = kb_answer({**query, "threshold": 0.3}, ctx(port, "C-4", "k4"))
    assert strict["confident"] is False and lenient["confident"] is True
    assert lenient["article_id"] == "opening-hours-contact.en"


def test_a_retried_action_records_one_attempt(port: KnowledgePort) -> None:
    kb_answer = load_actions().get("kb_answer")
    for _ in range(3):
        kb_answer({"query": "Where is my order?"}, ctx(port, "C-5", "C-5:try_kb:1"))
    assert len(port.attempts("C-5")) == 1


@pytest.mark.parametrize(("reply", "outcome"), [
    ("Yes, thank you!", "confirmed"), ("Ja, opgelost", "confirmed"),
    ("Hat leider nicht geklappt", "escalated"), ("no", "escalated"),
])
def test_feedback_decides_the_attempt(port: KnowledgePort, reply: str, outcome: str) -> None:
    actions = load_actions()
    case = f"C-6-{reply}"
    actions.get("kb_answer")({"query": "How do I reset my password?"}, ctx(port, case, case))
    result = actions.get("kb_outcome")({"reply": reply}, ctx(port, case, case + "b",
                                                              T0 + timedelta(minutes=3)))
    assert result["outcome"] == outcome and result["solved"] is (outcome == "confirmed")
    assert port.attempts(case)[0]["outcome"] == outcome


def test_containment_and_deflection_are_counted(port: KnowledgePort,
                                                shared_starter: Engine) -> None:
    actions = load_actions()
    kb_answer, kb_outcome = actions.get("kb_answer"), actions.get("kb_outcome")
    later = T0 + timedelta(days=30)  # a window no other test writes into
    for case, verdict in (("A", "confirmed"), ("B", "potential"), ("C", "escalated")):
        result = kb_answer({"query": "What are the shipping costs to Belgium?"},
                           ctx(port, case, case, later))
        assert result["confident"] is True
        kb_outcome({"outcome": verdict}, ctx(port, case, case + "o", later))
    kb_answer({"query": "zzz qqq"}, ctx(port, "D", "D", later))  # not confident: escalated
    with sessions(shared_starter)() as s:
        st = elevel_stats(s, since=later)
    assert (st.total, st.confirmed, st.potential, st.escalated) == (4, 1, 1, 2)
    assert st.containment == pytest.approx(0.25) and st.deflection == pytest.approx(0.5)


def test_without_a_port_the_action_fails_for_good() -> None:
    registry = load_actions()
    cmd = RunAction("act-1", "try_kb", "kb_answer", {"query": "password"}, 1, "k")
    event = registry.execute(cmd, case_id="C-9", now=T0, ports={})
    assert isinstance(event, ActionFailedEvent) and event.retryable is False
    assert "no knowledge port" in event.error
    with pytest.raises(ActionFailed) as info:
        registry.get("kb_answer")({"query": "x"}, ctx(None))
    assert info.value.case_id == "C-1" and info.value.node_id == "try_kb"


@pytest.mark.parametrize("inputs", [
    {"query": "password", "threshold": 7}, {"query": "password", "threshold": "high"},
    {"query": 42}, {"outcome": "maybe"},
])
def test_bad_inputs_are_clear_non_retryable_errors(port: KnowledgePort,
                                                   inputs: dict[str, object]) -> None:
    name = "kb_outcome" if "outcome" in inputs else "kb_answer"
    cmd = RunAction("act-2", "n", name, inputs, 1, "k2")
    event = load_actions().execute(cmd, case_id="C-10", now=T0, ports={"knowledge": port})
    assert isinstance(event, ActionFailedEvent) and event.retryable is False
    assert name in event.error


def test_a_100000_character_concern_is_handled(port: KnowledgePort) -> None:
    cmd = RunAction("act-3", "n", "kb_answer", {"query": "reset password " * 8000}, 1, "k3")
    event = load_actions().execute(cmd, case_id="C-11", now=T0, ports={"knowledge": port})
    assert isinstance(event, ActionCompleted)
    assert event.result["truncated"] is True
    assert event.result["suggestions"][0] == "password-reset.en"


def test_kb_lookup_keeps_the_shape_general_enquiry_chat_uses(port: KnowledgePort) -> None:
    result = load_actions().get("kb_lookup")(
        {"query": "Wat zijn jullie openingstijden op zaterdag?", "language": "nl"},
        ctx(port, "C-12", "C-12"))
    assert result["found"] is True and result["article_id"] == "opening-hours-contact.nl"
    assert 0 < result["confidence"] <= 1 and result["answer"].startswith("Openingstijden")
    assert result["articles"][0]["article_id"] == "opening-hours-contact.nl"
    assert port.attempts("C-12") == []  # a lookup is not an e-level attempt


def test_classify_feedback_negation_wins() -> None:
    assert classify_feedback("No, still not working") == "no"
    assert classify_feedback("Nee, het werkt niet") == "no"
    assert classify_feedback("Ja danke, hat funktioniert") == "yes"
    assert classify_feedback("???") == "unclear"


def test_the_port_creates_a_missing_search_index(tmp_path: object) -> None:
    from pathlib import Path

    from engine.store.all_models import load_all
    from engine.store.db import make_engine

    engine = make_engine(f"sqlite:///{Path(str(tmp_path)) / 'bare.db'}")
    meta = load_all().metadata
    meta.create_all(engine, tables=[t for t in meta.sorted_tables if t.name.startswith("kb_")])
    result = KnowledgePort(sessions(engine)).answer("password", at=T0, idempotency_key="bare")
    engine.dispose()
    assert result.confident is False and result.suggestions == ()
