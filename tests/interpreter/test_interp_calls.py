"""Sub-cases (call nodes) and the action registry (built-ins, plugins, execution)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from interp_helpers import T0, Driver, sop

from engine.actions import ActionContext, ActionRegistry, PluginValidationError, known_actions
from engine.actions.builtin import ACTIONS, classify_text, kb_lookup
from engine.errors import ActionFailed
from engine.interpreter.types import (
    ActionCompleted,
    ActionFailedEvent,
    CancelTimer,
    RunAction,
    ScheduleTimer,
    StartSubCase,
    SubCaseEnded,
)

CALL = """
start: {type: start, next: sub}
sub:
  type: call
  sop: identity_check
  inputs: {who: "${ email }", strict: true}
  set: {verified: "result.outcome == 'verified'", score: result.score}
  timeout: {after: 1d, next: gave_up}
  next: done
done: {type: end, outcome: done}
gave_up: {type: end, outcome: gave_up, status: closed}
"""
DATA = """
email: {type: string, input: true}
verified: {type: boolean}
score: {type: integer}
"""


def test_call_starts_a_sub_case_and_continues_with_its_result() -> None:
    d = Driver(sop(CALL, data=DATA))
    out = d.start(email="a@example.com")
    (start,) = d.of(StartSubCase, out)
    assert start.sop == "identity_check"
    assert dict(start.data) == {"who": "a@example.com", "strict": True}
    (timer,) = d.of(ScheduleTimer, out)
    assert timer.due_at == T0 + timedelta(days=1)
    out = d.send(SubCaseEnded(start.call_id, "verified", "resolved", {"score": 7}))
    assert CancelTimer(timer.timer_id) in out
    assert d.state.data["verified"] is True
    assert d.state.data["score"] == 7
    assert d.state.outcome == "done"


def test_call_timeout_and_late_sub_case_result() -> None:
    d = Driver(sop(CALL, data=DATA))
    out = d.start(email="a@example.com")
    (start,) = d.of(StartSubCase, out)
    d.fire(d.timer("timeout"))
    assert d.state.outcome == "gave_up"
    ended = d.state
    assert d.send(SubCaseEnded(start.call_id, "verified", "resolved", {})) == ()
    assert d.state is ended


# ---- registry -----------------------------------------------------------------------------


def _ctx(**kw: Any) -> ActionContext:
    base = {"case_id": "C7", "node": "n", "attempt": 1, "idempotency_key": "k", "now": T0}
    return ActionContext(**{**base, **kw})


@pytest.mark.parametrize(("text", "tier", "expected"), [
    ("I forgot my password, please send me a reset link", "gold",
     {"intent": "self_service_reset", "category": "access", "priority": "high"}),
    ("I am locked out and no longer have access to my recovery e-mail", "standard",
     {"intent": "access_problem", "category": "access", "priority": "normal"}),
    ("Why is there a double charge on my invoice?", None,
     {"intent": "billing_question", "category": "billing", "priority": "normal"}),
    ("This is unacceptable, I want to complain", "silver",
     {"intent": "complaint", "category": "complaint", "priority": "normal"}),
    ("My kettle is broken, is it under warranty? urgent", None,
     {"intent": "warranty_claim", "category": "warranty", "priority": "high"}),
    ("Hello there", None,
     {"intent": "access_problem", "category": "general", "priority": "normal"}),
])
def test_classifier(text: str, tier: str | None, expected: dict[str, str]) -> None:
    assert classify_text(text, tier) == expected
    assert ACTIONS["classify_request"]({"text": text, "tier": tier}, _ctx()) == expected


def test_builtin_actions_are_deterministic() -> None:
    assert ACTIONS["send_reset_link"]({"to": "x@example.com"}, _ctx()) == {
        "sent": True, "link_id": "L-C7", "to": "x@example.com"}
    assert ACTIONS["set_fields"]({"a": 1}, _ctx()) == {"a": 1}
    assert ACTIONS["send_message"]({"channel": "email", "body": "hi"}, _ctx()) == {
        "channel": "email", "template": None, "subject": None, "body": "hi", "to": None}


def test_kb_lookup_uses_the_knowledge_port_when_present() -> None:
    class FakeKnowledge:
        def search(self, query: str, limit: int = 3) -> list[dict[str, str]]:
            return [{"id": "KB-1", "title": query}][:limit]

    assert kb_lookup({"query": "reset"}, _ctx()) == {"found": False, "articles": []}
    found = kb_lookup({"query": "reset"}, _ctx(ports={"knowledge": FakeKnowledge()}))
    assert found == {"found": True, "articles": [{"id": "KB-1", "title": "reset"}]}


def test_registration_checks_names_and_duplicates() -> None:
    reg = ActionRegistry()
    with pytest.raises(PluginValidationError, match="'acme'.*must match") as info:
        reg.register("Bad-Name", lambda i, c: None, plugin="acme")
    assert info.value.plugin == "acme"
    with pytest.raises(PluginValidationError, match="not callable"):
        reg.register("ok", "nope", plugin="acme")  # type: ignore[arg-type]
    reg.register("mine", lambda i, c: 1, plugin="acme")
    with pytest.raises(PluginValidationError, match="already registered by plugin 'acme'"):
        reg.register("mine", lambda i, c: 2, plugin="other")


def test_a_plugin_may_replace_a_builtin_but_not_the_reverse() -> None:
    reg = ActionRegistry()
    reg.register_all(ACTIONS, plugin="builtin")

    def better(inputs: Any, ctx: Any) -> str:
        return "better"

    reg.register("kb_lookup", better, plugin="knowledge")
    reg.register_all(ACTIONS, plugin="builtin")
    assert reg.get("kb_lookup") is better
    assert reg.plugin_of("kb_lookup") == "knowledge"


def test_known_actions_include_builtins_and_plugins() -> None:
    names = known_actions()
    assert set(ACTIONS) <= names


def test_execute_turns_results_and_errors_into_events() -> None:
    reg = ActionRegistry()

    def flaky(inputs: Any, ctx: ActionContext) -> Any:
        if inputs.get("mode") == "fatal":
            raise ActionFailed("bad account", retryable=False)
        if inputs.get("mode") == "crash":
            raise ConnectionError("reset by peer")
        return {"attempt": ctx.attempt, "key": ctx.idempotency_key}

    reg.register("flaky", flaky)
    cmd = RunAction("a1", "n", "flaky", {}, 2, "C:n:1:2")
    assert reg.execute(cmd, case_id="C", now=T0) == ActionCompleted(
        "a1", {"attempt": 2, "key": "C:n:1:2"})
    fatal = reg.execute(RunAction("a2", "n", "flaky", {"mode": "fatal"}, 1, "k"),
                        case_id="C", now=T0)
    assert fatal == ActionFailedEvent("a2", "bad account", False)
    crash = reg.execute(RunAction("a3", "n", "flaky", {"mode": "crash"}, 1, "k"),
                        case_id="C", now=T0)
    assert crash == ActionFailedEvent("a3", "ConnectionError: reset by peer", True)
    unknown = reg.execute(RunAction("a4", "n", "nope", {}, 1, "k"), case_id="C", now=T0)
    assert unknown.retryable is False
    assert "unknown action 'nope'" in unknown.error


def test_static_names_read_literal_mappings_without_importing(tmp_path: Any,
                                                              monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    import sys

    from engine.actions.registry import static_names

    (tmp_path / "heavy_plugin.py").write_text(
        "raise RuntimeError('importing me is expensive')\n"
        "ACTIONS = {'alpha': None, 'beta': None}\n")
    (tmp_path / "dynamic_plugin.py").write_text("ACTIONS = dict(alpha=None)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert static_names("heavy_plugin", "ACTIONS") == {"alpha", "beta"}
    assert "heavy_plugin" not in sys.modules
    assert static_names("dynamic_plugin", "ACTIONS") is None
    assert static_names("no_such_plugin_module", "ACTIONS") is None
    assert static_names("engine.actions.builtin", "ACTIONS") == set(ACTIONS)


def test_known_actions_equal_the_loaded_registry() -> None:
    from engine.actions import load_actions

    known_actions.cache_clear()
    assert known_actions() == load_actions().names()
