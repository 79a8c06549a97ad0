"""Pure actions run inside the step (StepContext.inline_actions): same data, audit and route
as through RunAction / ActionCompleted, no command and no extra event; a pure action that
raises goes out as RunAction, so its retries and on_error apply."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from interp_helpers import Driver, sop

from engine.actions import load_actions
from engine.actions.registry import ActionContext, ActionRegistry, pure_action
from engine.interpreter import StepContext, initial_state, step
from engine.interpreter.types import ActionCompleted, Audit, CaseEnded, RunAction

FLOW = """
start: {type: start, next: act}
act:
  type: action
  action: classify_request
  inputs: {text: "${ text }", tier: "gold"}
  set: {intent: result.intent, priority: result.priority}
  retry: {max_attempts: 3, delay: 10s}
  on_error: failed
  next: route
route:
  type: decision
  branches: [{when: 'intent == "self_service_reset"', next: done}]
  otherwise: human
human: {type: human_task, level: L1, outcomes: {ok: {next: done}}}
done: {type: end, outcome: ok}
failed: {type: end, outcome: failed}
"""
DATA = """
text: {type: string, input: true}
intent: {type: string}
priority: {type: string}
"""


def _ctx(actions: Mapping[str, Any]) -> StepContext:
    return StepContext(inline_actions=actions)


def test_builtin_pure_actions_are_marked_and_port_users_are_not() -> None:
    pure = load_actions().pure()
    assert {"classify_request", "send_reset_link", "set_fields"} <= set(pure)
    assert "kb_lookup" not in pure and "send_message" not in pure


def test_a_pure_action_runs_inside_the_step_with_the_same_effect() -> None:
    out_of_step = Driver(sop(FLOW, data=DATA), auto_actions=True)
    out_of_step.start(text="I forgot my password")
    inline = Driver(sop(FLOW, data=DATA), _ctx(load_actions().pure()))
    out = inline.start(text="I forgot my password")
    assert not inline.of(RunAction, out)
    assert inline.state.seq == 1  # one event, where the RunAction path needs two
    assert out_of_step.state.seq == 2
    assert inline.state.data == out_of_step.state.data
    assert inline.state.data["intent"] == "self_service_reset"
    assert inline.state.data["priority"] == "high"
    assert inline.of(CaseEnded, out) == [CaseEnded("ok", "resolved", None)]
    (done,) = [c for c in out if isinstance(c, Audit) and c.kind == "action_completed"]
    assert (done.node, dict(done.detail)) == ("act", {"action": "classify_request", "attempt": 1})


def test_the_action_sees_the_case_node_and_idempotency_key() -> None:
    seen: list[ActionContext] = []

    @pure_action
    def probe(inputs: Mapping[str, Any], ctx: ActionContext) -> dict[str, str]:
        seen.append(ctx)
        return {"intent": "other", "priority": "normal"}

    registry = ActionRegistry()
    registry.register("classify_request", probe)
    d = Driver(sop(FLOW, data=DATA), _ctx(registry.pure()))
    d.start(text="locked out")
    (ctx,) = seen
    assert (ctx.case_id, ctx.node, ctx.attempt, ctx.idempotency_key) == ("C1", "act", 1, "C1:act:1:1")
    assert d.at() == ["human"]


def test_a_pure_action_that_raises_goes_out_as_run_action_with_its_retries() -> None:
    def broken(inputs: Mapping[str, Any], ctx: ActionContext) -> Any:
        raise ValueError("no classifier today")

    d = Driver(sop(FLOW, data=DATA), _ctx({"classify_request": broken}))
    out = d.start(text="x")
    (run,) = d.of(RunAction, out)
    assert (run.action, run.attempt) == ("classify_request", 1)
    assert d.at() == ["act"]
    d.send(ActionCompleted(run.action_id, {"intent": "self_service_reset", "priority": "low"}))
    assert d.state.outcome == "ok"


def test_a_set_that_cannot_use_the_result_raises_an_incident_at_the_node() -> None:
    def wrong(inputs: Mapping[str, Any], ctx: ActionContext) -> Any:
        return {"unexpected": True}

    d = Driver(sop(FLOW, data=DATA), _ctx({"classify_request": wrong}))
    d.start(text="x")
    assert [c.node for c in d.state.tokens] == ["act"]
    assert any(c.kind == "incident" for c in d.commands if isinstance(c, Audit))


def test_replaying_the_event_log_with_the_same_actions_reproduces_the_state() -> None:
    ctx = _ctx(load_actions().pure())
    d = Driver(sop(FLOW, data=DATA), ctx)
    d.start(text="I am locked out")
    d.complete("human", "ok")
    state = initial_state(d.compiled, d.case_id)
    for event, now in d.events:
        state, _ = step(d.compiled, state, event, now, ctx)
    assert state == d.state
