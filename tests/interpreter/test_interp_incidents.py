"""Incidents and odd inputs: operator retries, bad conditions, unknown levels and calendars."""

from __future__ import annotations

from datetime import timedelta

import pytest
from interp_helpers import Driver, sop

from engine.errors import TransitionNotAllowed
from engine.interpreter import StepContext
from engine.interpreter.types import (
    Audit,
    CaseStarted,
    CreateTask,
    IncidentRetried,
    RaiseIncident,
    Signal,
)

DECIDE = """
start: {type: start, next: route}
route:
  type: decision
  branches: [{when: "amount > 10", next: big}]
  otherwise: small
big: {type: end, outcome: big}
small: {type: end, outcome: small}
"""


def test_operator_fixes_data_then_retries_the_incident() -> None:
    handlers = "- {event: corrected, set: {amount: event.amount}}"
    d = Driver(sop(DECIDE, data="amount: {type: integer, input: true}", handlers=handlers))
    out = d.start()
    (incident,) = [c for c in out if isinstance(c, RaiseIncident)]
    d.send(Signal("corrected", {"amount": 50}))
    assert d.at() == ["route"]
    d.send(IncidentRetried(incident.incident_id or ""))
    assert d.state.outcome == "big"


def test_event_before_the_case_started_is_refused() -> None:
    d = Driver(sop(DECIDE, data="amount: {type: integer, input: true}"))
    with pytest.raises(TransitionNotAllowed, match="not started"):
        d.send(Signal("anything"))


WAIT = """
start: {type: start, next: w}
w:
  type: wait
  on:
    - {event: reply, when: "event.score > 5", next: good}
    - {event: reply, set: {score: event.score}, next: good}
good: {type: end}
"""


def test_failing_wait_condition_counts_as_false_and_failing_set_raises_incident() -> None:
    d = Driver(sop(WAIT, data="score: {type: integer}"))
    d.start()
    out = d.send(Signal("reply", {"other": 1}))
    assert [c.kind for c in out if isinstance(c, Audit)][:1] == ["condition_error"]
    (incident,) = [c for c in out if isinstance(c, RaiseIncident)]
    assert incident.node == "w"
    assert d.at() == ["w"]
    # retrying re-enters the wait: the case waits for the next (better) reply
    d.send(IncidentRetried(incident.incident_id or ""))
    d.send(Signal("reply", {"score": 3}))
    assert d.state.data["score"] == 3
    assert d.state.status == "resolved"


def test_escalation_to_an_unknown_level_raises_incident(org_ctx: StepContext) -> None:
    flow = """
start: {type: start, next: up}
up: {type: escalate, to: L9, next: e}
e: {type: end}
"""
    d = Driver(sop(flow), org_ctx)
    out = d.start()
    (incident,) = [c for c in out if isinstance(c, RaiseIncident)]
    assert "L9" in incident.error
    assert d.at() == ["up"]


def test_unknown_timeout_calendar_falls_back_to_wall_time_and_says_so() -> None:
    flow = """
start: {type: start, next: t}
t:
  type: human_task
  level: L1
  outcomes: {done: {next: e}}
  timeout: {after: 2h, calendar: office_nl, next: e}
e: {type: end}
"""
    d = Driver(sop(flow), StepContext())
    out = d.start()
    (task,) = [c for c in out if isinstance(c, CreateTask)]
    assert task.due_at == d.now + timedelta(hours=2)
    (missing,) = [c for c in out if isinstance(c, Audit) and c.kind == "calendar_missing"]
    assert missing.detail["calendar"] == "office_nl"


def test_manual_escalation_needs_levels_or_a_target(org_ctx: StepContext) -> None:
    from engine.interpreter.types import TaskEscalated

    flow = """
start: {type: start, next: t}
t: {type: human_task, level: L1, outcomes: {done: {next: e}, escalate: {next: e}}}
e: {type: end}
"""
    d = Driver(sop(flow), StepContext())
    d.start()
    with pytest.raises(TransitionNotAllowed, match="cannot escalate"):
        d.send(TaskEscalated(d.task_id("t"), "hard"))
    d.send(TaskEscalated(d.task_id("t"), "hard", to_level="L2"))
    assert d.state.level == "L2"
    assert d.state.escalations == 1


def test_form_types_object_array_duration_timestamp() -> None:
    from engine.interpreter.types import TaskCompleted

    flow = """
start: {type: start, next: t}
t:
  type: human_task
  level: L1
  outcomes: {done: {next: e}}
  form:
    extra: {type: object}
    tags: {type: array}
    spent: {type: duration}
    when: {type: timestamp}
    score: {type: number}
e: {type: end}
"""
    d = Driver(sop(flow, data="spent: {type: duration}\nwhen: {type: timestamp}\n"
                   "extra: {type: object}\ntags: {type: array}\nscore: {type: number}"))
    d.start()
    task_id = d.task_id("t")
    for bad in ({"extra": "x"}, {"tags": "x"}, {"spent": "soon"}, {"when": "yesterday"},
                {"score": "high"}):
        with pytest.raises(TransitionNotAllowed, match=next(iter(bad))):
            d.send(TaskCompleted(task_id, "done", bad))
    d.send(TaskCompleted(task_id, "done", {"extra": {"a": 1}, "tags": ["x"], "spent": "PT1H",
                                           "when": "2026-03-02T10:00:00Z", "score": 2}))
    assert d.state.data["spent"] == timedelta(hours=1)
    assert d.state.status == "resolved"


def test_case_started_sets_case_facts_and_defaults() -> None:
    flow = """
start: {type: start, next: w}
w: {type: wait, on: [{event: go, next: e}]}
e: {type: end}
"""
    d = Driver(sop(flow, data="lang: {type: string, default: en}"))
    d.send(CaseStarted(data={"x": 1}, priority="high", tier="gold", channel="email",
                       customer_id="K1", parent=("P1", "P1:3:1")))
    s = d.state
    assert (s.priority, s.tier, s.channel, s.customer_id) == ("high", "gold", "email", "K1")
    assert s.parent == ("P1", "P1:3:1")
    assert dict(s.data) == {"lang": "en", "x": 1}
