"""Action nodes: RunAction, results into data, retry/backoff schedule, on_error, incidents."""

from __future__ import annotations

from datetime import timedelta

import pytest
from interp_helpers import T0, Driver, sop

from engine.errors import TransitionNotAllowed
from engine.interpreter.types import (
    ActionCompleted,
    ActionFailedEvent,
    CaseEnded,
    IncidentRetried,
    RaiseIncident,
    RunAction,
    ScheduleTimer,
    SendMessage,
)

FLOW = """
start: {type: start, next: act}
act:
  type: action
  action: classify_request
  inputs: {text: "${ text }", fixed: 7}
  set: {intent: result.intent}
  retry: {max_attempts: 4, delay: 10s, backoff: 3.0, max_delay: 60s}
  next: done
done: {type: end, outcome: ok}
"""
DATA = """
text: {type: string, input: true}
intent: {type: string}
"""


def test_action_emits_run_action_and_waits_for_its_result() -> None:
    d = Driver(sop(FLOW, data=DATA))
    out = d.start(text="I forgot it")
    (run,) = d.of(RunAction, out)
    assert run.action == "classify_request"
    assert dict(run.inputs) == {"text": "I forgot it", "fixed": 7}
    assert run.attempt == 1
    assert run.idempotency_key == "C1:act:1:1"
    assert run.action_id == "C1:1:2"
    assert d.at() == ["act"]
    out = d.send(ActionCompleted(run.action_id, {"intent": "self_service_reset"}))
    assert d.state.data["intent"] == "self_service_reset"
    assert d.of(CaseEnded, out) == [CaseEnded("ok", "resolved", None)]
    assert d.state.status == "resolved"
    assert d.state.seq == 2


def test_retry_backoff_schedule_is_exact_and_capped() -> None:
    d = Driver(sop(FLOW, data=DATA))
    d.start(text="x")
    dues = []
    for attempt in (1, 2, 3):
        run = d.action("act")
        assert run.attempt == attempt
        out = d.send(ActionFailedEvent(run.action_id, "boom"))
        (timer,) = d.of(ScheduleTimer, out)
        assert timer.kind == "retry"
        dues.append(timer.due_at - d.now)
        assert not d.of(RunAction, out)
        out = d.fire(timer)
        (again,) = d.of(RunAction, out)
        assert again.attempt == attempt + 1
        assert again.idempotency_key == f"C1:act:1:{attempt + 1}"
    # 10s, 10*3 = 30s, 10*9 = 90s capped at 60s
    assert dues == [timedelta(seconds=10), timedelta(seconds=30), timedelta(seconds=60)]


def test_failure_after_last_attempt_raises_incident_and_token_waits() -> None:
    d = Driver(sop(FLOW, data=DATA))
    d.start(text="x")
    for _ in range(3):
        d.send(ActionFailedEvent(d.action("act").action_id, "boom"))
        d.fire(d.timer("retry"))
    last = d.action("act")
    out = d.send(ActionFailedEvent(last.action_id, "still broken"))
    (incident,) = d.of(RaiseIncident, out)
    assert (incident.node, incident.error, incident.attempt) == ("act", "still broken", 4)
    assert incident.incident_id == last.action_id
    assert d.at() == ["act"]
    assert d.state.status == "open"
    # the operator retries: the action runs again with the next attempt
    out = d.send(IncidentRetried(incident.incident_id))
    (run,) = d.of(RunAction, out)
    assert run.attempt == 5
    d.send(ActionCompleted(run.action_id, {"intent": "x"}))
    assert d.state.outcome == "ok"


def test_unknown_incident_is_refused() -> None:
    d = Driver(sop(FLOW, data=DATA))
    d.start(text="x")
    with pytest.raises(TransitionNotAllowed, match="no open incident"):
        d.send(IncidentRetried("nope"))


def test_non_retryable_failure_goes_to_on_error_at_once() -> None:
    flow = FLOW.replace("next: done\ndone:", "on_error: fallback\n  next: done\ndone:") + \
        "fallback: {type: end, outcome: fell_back}\n"
    d = Driver(sop(flow, data=DATA))
    d.start(text="x")
    out = d.send(ActionFailedEvent(d.action("act").action_id, "bad input", retryable=False))
    assert not d.of(ScheduleTimer, out)
    assert d.state.outcome == "fell_back"


def test_stale_and_duplicate_results_are_no_ops() -> None:
    d = Driver(sop(FLOW, data=DATA))
    d.start(text="x")
    first = d.action("act")
    d.send(ActionFailedEvent(first.action_id, "boom"))
    before = d.state
    # a late result of attempt 1 arrives after the retry was scheduled
    new_state, out = d.state, d.send(ActionCompleted(first.action_id, {"intent": "late"}))
    assert out == ()
    assert d.state is before
    assert new_state.seq == before.seq


def test_result_that_is_not_a_map_is_seen_as_value() -> None:
    flow = FLOW.replace("set: {intent: result.intent}", "set: {intent: result.value}")
    d = Driver(sop(flow, data=DATA))
    d.start(text="x")
    d.finish_action("act", "plain")
    assert d.state.data["intent"] == "plain"


def test_expression_failure_in_set_raises_incident() -> None:
    d = Driver(sop(FLOW, data=DATA))
    d.start(text="x")
    out = d.finish_action("act", {"other": 1})
    (incident,) = d.of(RaiseIncident, out)
    assert "intent" in incident.error
    assert d.at() == ["act"]


def test_send_message_action_becomes_a_send_message_command() -> None:
    flow = """
start: {type: start, next: msg}
msg:
  type: action
  action: send_message
  inputs:
    channel: email
    template: ack
    subject: "Got it"
    body: "${ 'Hi ' + name }"
    to: "${ email }"
  set: {sent_id: result.message_id}
  next: done
done: {type: end}
"""
    data = ("name: {type: string, input: true}\nemail: {type: string, input: true}\n"
            "sent_id: {type: string}")
    d = Driver(sop(flow, data=data))
    out = d.start(name="Ann", email="ann@example.com")
    (msg,) = d.of(SendMessage, out)
    assert (msg.channel, msg.template, msg.subject, msg.body, msg.to) == (
        "email", "ack", "Got it", "Hi Ann", "ann@example.com")
    assert msg.idempotency_key == msg.message_id
    assert not d.of(RunAction, out)
    assert d.state.data["sent_id"] == msg.message_id
    assert d.state.status == "resolved"


def test_now_in_cel_is_the_injected_instant() -> None:
    flow = """
start: {type: start, next: s}
s: {type: set, set: {at: now}, next: done}
done: {type: end}
"""
    d = Driver(sop(flow, data="at: {type: timestamp}"))
    d.start()
    assert d.state.data["at"] == T0


def test_registry_execute_answers_with_the_event_to_feed_back() -> None:
    from types import MappingProxyType

    from engine.actions.registry import ActionContext, ActionRegistry
    from engine.errors import ActionFailed

    seen: list[ActionContext] = []

    def ok(inputs: object, ctx: ActionContext) -> dict[str, object]:
        seen.append(ctx)
        return {"echo": dict(inputs)}  # type: ignore[call-overload]

    def refuse(inputs: object, ctx: ActionContext) -> None:
        raise ActionFailed("no such account", retryable=False)

    def crash(inputs: object, ctx: ActionContext) -> None:
        raise KeyError("boom")

    registry = ActionRegistry()
    for name, fn in (("ok", ok), ("refuse", refuse), ("crash", crash)):
        registry.register(name, fn)

    def run(action: str, **kw: object) -> object:
        command = RunAction("A1", "n", action, {"x": 1}, 2, "C:n:1:2")
        return registry.execute(command, case_id="C", now=T0, **kw)  # type: ignore[arg-type]

    assert run("ok") == ActionCompleted("A1", {"echo": {"x": 1}})
    assert run("refuse") == ActionFailedEvent("A1", "no such account", False)
    assert run("crash") == ActionFailedEvent("A1", "KeyError: 'boom'", True)
    assert run("missing") == ActionFailedEvent("A1", "unknown action 'missing'", False)
    run("ok", ports={"kb": "port"})
    first, second = seen
    assert (first.case_id, first.node, first.attempt, first.idempotency_key, first.now) == (
        "C", "n", 2, "C:n:1:2", T0)
    assert dict(first.ports) == {}
    assert dict(second.ports) == {"kb": "port"}
    assert isinstance(second.ports, MappingProxyType)
