"""Human tasks: outcomes, form validation, knowledge, timeouts, manual escalation, levels."""

from __future__ import annotations

from datetime import timedelta

import pytest
from interp_helpers import Driver, sop

from engine.errors import TaskConflict, TransitionNotAllowed
from engine.interpreter import StepContext
from engine.interpreter.types import (
    Audit,
    CancelTask,
    CancelTimer,
    CreateTask,
    ScheduleTimer,
    TaskCompleted,
    TaskEscalated,
)

TASK = """
start: {type: start, next: review}
review:
  type: human_task
  title: Review the claim
  level: L1
  role: agent
  skills: [claims]
  outcomes:
    approve: {next: approved, knowledge: optional}
    reject: {next: rejected}
    solved: {next: approved, knowledge: required}
  form:
    amount: {type: integer, required: true}
    reason: {type: string, enum: [fraud, duplicate, other]}
    urgent: {type: boolean}
  timeout: {after: 2h, next: overdue}
overdue: {type: escalate, to: L2, reason: overdue, next: senior}
senior:
  type: human_task
  level: L2
  outcomes:
    approve: {next: approved}
approved: {type: end, outcome: approved}
rejected: {type: end, outcome: rejected, status: closed}
"""
DATA = """
amount: {type: integer}
reason: {type: string}
urgent: {type: boolean}
"""


@pytest.fixture
def d(org_ctx: StepContext) -> Driver:
    drv = Driver(sop(TASK, data=DATA), org_ctx)
    drv.start()
    return drv


def test_task_is_created_with_level_role_outcomes_and_wall_time_due(d: Driver) -> None:
    (task,) = d.created()
    assert (task.node, task.level, task.title, task.role, task.skills) == (
        "review", "L1", "Review the claim", "agent", ("claims",))
    assert task.outcomes == ("approve", "reject", "solved")
    assert task.due_at == d.now + timedelta(hours=2)
    (timer,) = [c for c in d.commands if isinstance(c, ScheduleTimer)]
    assert (timer.kind, timer.due_at, timer.node) == ("timeout", task.due_at, "review")
    assert d.state.level == "L1"
    assert list(d.state.tasks) == [task.task_id]


def test_completion_writes_fields_cancels_timeout_and_audits(d: Driver) -> None:
    timer = d.timer("timeout")
    task_id = d.task_id("review")
    out = d.send(TaskCompleted(task_id, "approve", {"amount": 12, "urgent": True},
                               actor="ann"))
    assert d.state.data["amount"] == 12
    assert d.state.data["urgent"] is True
    assert CancelTimer(timer.timer_id) in out
    (audit,) = [c for c in out if isinstance(c, Audit) and c.kind == "task_completed"]
    assert audit.actor == "ann"
    assert audit.detail["outcome"] == "approve"
    assert audit.detail["sop_version"] == "1.0.0"
    assert d.state.outcome == "approved"
    assert not d.state.tasks


@pytest.mark.parametrize(("fields", "message"), [
    ({}, "'amount' is required"),
    ({"amount": "12"}, "'amount' must be of type integer"),
    ({"amount": True}, "'amount' must be of type integer"),
    ({"amount": 1, "reason": "boredom"}, "'reason' must be one of"),
    ({"amount": 1, "urgent": "yes"}, "'urgent' must be of type boolean"),
    ({"amount": 1, "colour": "red"}, "no form field 'colour'"),
])
def test_form_is_validated_and_names_the_field(d: Driver, fields: dict[str, object],
                                               message: str) -> None:
    before = d.state
    with pytest.raises(TransitionNotAllowed, match=message):
        d.send(TaskCompleted(d.task_id("review"), "approve", fields))
    assert d.state is before


def test_outcome_must_be_declared(d: Driver) -> None:
    with pytest.raises(TransitionNotAllowed, match=r"'maybe' is not allowed .*approve, reject"):
        d.send(TaskCompleted(d.task_id("review"), "maybe", {"amount": 1}))


@pytest.mark.parametrize(("knowledge", "message"), [
    (None, "requires a knowledge outcome"),
    ({"kind": "guessed"}, "linked, drafted or none"),
    ({"kind": "linked"}, "needs an 'article'"),
    ({"kind": "none"}, "needs a 'reason'"),
])
def test_knowledge_outcome_is_enforced(d: Driver, knowledge: dict[str, str] | None,
                                       message: str) -> None:
    with pytest.raises(TransitionNotAllowed, match=message):
        d.send(TaskCompleted(d.task_id("review"), "solved", {"amount": 1}, knowledge=knowledge))


def test_knowledge_none_with_reason_is_recorded(d: Driver) -> None:
    k = {"kind": "none", "reason": "one-off data error"}
    d.send(TaskCompleted(d.task_id("review"), "solved", {"amount": 1}, knowledge=k))
    assert d.state.knowledge == k


def test_completing_a_task_twice_is_a_conflict(d: Driver) -> None:
    task_id = d.task_id("review")
    d.send(TaskCompleted(task_id, "reject", {"amount": 1}))
    with pytest.raises(TransitionNotAllowed):
        d.send(TaskCompleted(task_id, "reject", {"amount": 1}))


def test_unknown_task_is_a_conflict(d: Driver) -> None:
    with pytest.raises(TaskConflict, match="not open") as info:
        d.send(TaskCompleted("C1:99:1", "reject", {"amount": 1}))
    assert isinstance(info.value, TransitionNotAllowed)


def test_timeout_cancels_task_and_routes_to_escalation(d: Driver) -> None:
    task_id = d.task_id("review")
    out = d.fire(d.timer("timeout"))
    assert CancelTask(task_id, "timeout") in out
    assert d.state.level == "L2"
    assert d.state.escalations == 1
    assert d.at() == ["senior"]
    (senior,) = d.of(CreateTask, out)
    assert senior.level == "L2"
    assert senior.due_at is None


def test_manual_escalation_routes_like_the_timeout_and_counts_once(d: Driver) -> None:
    task_id = d.task_id("review")
    timer = d.timer("timeout")
    out = d.send(TaskEscalated(task_id, "customer is a lawyer", actor="bob"))
    assert CancelTask(task_id, "escalated: customer is a lawyer") in out
    assert CancelTimer(timer.timer_id) in out
    assert d.at() == ["senior"]
    assert d.state.level == "L2"
    # the manual escalation moved the case; the escalate node on the route found it there
    assert d.state.escalations == 1
    (manual, node) = [c for c in out if isinstance(c, Audit) and c.kind == "escalated"]
    assert manual.actor == "bob"
    assert manual.detail["counted"] is True
    assert node.detail["counted"] is False


def test_manual_escalation_to_explicit_level(d: Driver) -> None:
    d.send(TaskEscalated(d.task_id("review"), "vendor bug", to_level="specialist"))
    assert d.state.escalations == 1
    # the escalate node on the route moves it to L2 (shallower): not counted again
    assert d.state.level == "L2"


def test_manual_escalation_to_unknown_level_is_refused(d: Driver) -> None:
    with pytest.raises(TransitionNotAllowed, match="'L9'"):
        d.send(TaskEscalated(d.task_id("review"), "x", to_level="L9"))


def test_task_without_timeout_or_escalate_outcome_cannot_be_escalated(org_ctx: StepContext) -> None:
    flow = """
start: {type: start, next: t}
t: {type: human_task, level: L1, outcomes: {done: {next: e}}}
e: {type: end}
"""
    d = Driver(sop(flow), org_ctx)
    d.start()
    with pytest.raises(TransitionNotAllowed, match="cannot be escalated by hand"):
        d.send(TaskEscalated(d.task_id("t"), "x"))


def test_escalate_outcome_is_used_when_there_is_no_timeout(org_ctx: StepContext) -> None:
    flow = """
start: {type: start, next: t}
t: {type: human_task, level: L1, outcomes: {done: {next: e}, escalate: {next: deeper}}}
deeper: {type: human_task, level: L2, outcomes: {done: {next: e}}}
e: {type: end}
"""
    d = Driver(sop(flow), org_ctx)
    d.start()
    d.send(TaskEscalated(d.task_id("t"), "hard"))
    assert d.at() == ["deeper"]
    assert d.state.level == "L2"
    (second,) = d.created()[1:]
    assert second.level == "L2"


def test_business_time_timeout_uses_the_named_calendar(org_ctx: StepContext) -> None:
    flow = """
start: {type: start, next: t}
t:
  type: human_task
  level: L1
  outcomes: {done: {next: e}}
  timeout: {after: 2h, calendar: office_nl, next: e}
e: {type: end}
"""
    d = Driver(sop(flow), org_ctx)
    d.now = d.now.replace(hour=15)  # Monday 16:00 in Amsterdam: 1.5 h left today
    d.start()
    (task,) = d.created()
    # 1.5 h on Monday (to 17:30) + 0.5 h on Tuesday from 08:00 -> Tuesday 08:30 local
    assert task.due_at is not None
    assert task.due_at.isoformat() == "2026-03-03T07:30:00+00:00"


def test_hand_back_without_required_knowledge_is_flagged(org_ctx: StepContext) -> None:
    flow = """
start: {type: start, next: up}
up: {type: escalate, to: L2, next: back}
back: {type: hand_back, to: L1, knowledge: required, next: e}
e: {type: end}
"""
    d = Driver(sop(flow), org_ctx)
    out = d.start()
    (audit,) = [c for c in out if isinstance(c, Audit) and c.kind == "handed_back"]
    assert audit.detail["knowledge_missing"] is True
    assert (audit.detail["source"], audit.detail["target"]) == ("L2", "L1")
    assert d.state.hand_backs == 1
    assert d.state.level == "L1"
