"""By-hand hand-back (``careflow task hand-back``): a deeper level returns a task to a
shallower one, the case goes where the task's ``hand_back`` outcome says."""

from __future__ import annotations

import pytest
from interp_helpers import Driver, sop

from engine.errors import TransitionNotAllowed
from engine.interpreter import StepContext
from engine.interpreter.types import Audit, CancelTask, CreateTask, TaskHandedBack

FLOW = """
start: {type: start, next: front}
front:
  type: human_task
  level: L1
  outcomes:
    done: {next: solved}
    escalate: {next: up}
up: {type: escalate, to: L2, reason: needs a specialist, next: specialist}
specialist:
  type: human_task
  level: L2
  outcomes:
    fixed: {next: solved}
    hand_back: {next: front, knowledge: required}
  timeout: {after: 1d, next: solved}
solved: {type: end, outcome: solved}
"""
ARTICLE = {"kind": "linked", "article": "KB-7"}


@pytest.fixture
def d(org_ctx: StepContext) -> Driver:
    drv = Driver(sop(FLOW), org_ctx)
    drv.start()
    from engine.interpreter.types import TaskCompleted

    drv.send(TaskCompleted(drv.task_id("front"), "escalate"))
    assert drv.state.level == "L2"
    return drv


def test_hand_back_returns_the_case_to_level_1_with_the_article(d: Driver) -> None:
    task = d.task_id("specialist")
    out = d.send(TaskHandedBack(task, "L1 can answer this", actor="bea", knowledge=ARTICLE))
    assert CancelTask(task, "handed back: L1 can answer this") in out
    (again,) = [c for c in out if isinstance(c, CreateTask)]
    assert (again.node, again.level) == ("front", "L1")
    assert (d.state.level, d.state.hand_backs, d.state.escalations) == ("L1", 1, 1)
    assert dict(d.state.knowledge) == ARTICLE
    (audit,) = [c for c in out if isinstance(c, Audit) and c.kind == "handed_back"]
    assert audit.actor == "bea" and audit.node == "specialist"
    assert audit.detail["source"] == "L2" and audit.detail["target"] == "L1"
    assert audit.detail["reason"] == "L1 can answer this" and audit.detail["task"] == task


def test_hand_back_needs_the_knowledge_its_outcome_requires(d: Driver) -> None:
    with pytest.raises(TransitionNotAllowed, match="requires a knowledge outcome"):
        d.send(TaskHandedBack(d.task_id("specialist"), "back"))
    assert d.state.level == "L2" and d.state.hand_backs == 0


def test_hand_back_goes_to_a_shallower_level_only(d: Driver) -> None:
    with pytest.raises(TransitionNotAllowed, match="known, shallower level"):
        d.send(TaskHandedBack(d.task_id("specialist"), "x", to_level="specialist",
                              knowledge=ARTICLE))
    with pytest.raises(TransitionNotAllowed, match="known, shallower level"):
        d.send(TaskHandedBack(d.task_id("specialist"), "x", to_level="L9", knowledge=ARTICLE))


def test_a_task_without_a_hand_back_outcome_cannot_be_handed_back(org_ctx: StepContext) -> None:
    drv = Driver(sop(FLOW), org_ctx)
    drv.start()
    with pytest.raises(TransitionNotAllowed, match="no 'hand_back' outcome"):
        drv.send(TaskHandedBack(drv.task_id("front"), "x", knowledge=ARTICLE))
