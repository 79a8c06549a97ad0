"""The reference scenario (password_reset.yaml), all three paths, driven through the registry."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from interp_helpers import Driver, run_reference_case

from engine.actions import load_actions
from engine.interpreter import StepContext
from engine.interpreter.types import (
    Audit,
    CancelTimer,
    CaseEnded,
    CreateTask,
    RunAction,
    ScheduleTimer,
)
from engine.sop import CompiledSop

sys.path.insert(0, str(Path("/work/shared/peers")))
try:  # the peers' shared business logic, when the reference kit is present
    import common  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover
    common = None


@pytest.mark.parametrize("i", [0, 6, 9, 7, 14])
def test_reference_paths_end_with_the_expected_outcome(password_reset: CompiledSop,
                                                        org_ctx: StepContext, i: int) -> None:
    d = run_reference_case(password_reset, org_ctx, i)
    data = d.state.data
    if common is not None:
        expected = common.path_for(i)
        assert common.outcome_from_data(dict(data)) == expected
        intent, priority = common.classify(data["request_text"], data["customer_tier"])
        assert (data["intent"], data["priority"]) == (intent, priority)
    assert not d.state.tokens
    assert not d.state.tasks
    assert not d.state.timers


def test_self_service_path_commands(password_reset: CompiledSop, org_ctx: StepContext) -> None:
    d = run_reference_case(password_reset, org_ctx, 1)
    runs = [c for c in d.commands if isinstance(c, RunAction)]
    assert [r.action for r in runs] == ["classify_request", "send_reset_link"]
    assert d.state.data["reset_link"] == {"sent": True, "link_id": "L-C0000001",
                                          "to": "user1@example.com"}
    assert d.state.data["confirmation"] == {"confirmed": True, "channel": "email"}
    (wait_timer,) = [c for c in d.commands if isinstance(c, ScheduleTimer)]
    assert wait_timer.kind == "wait_timeout"
    assert CancelTimer(wait_timer.timer_id) in d.commands
    assert d.state.level == "e"
    assert [c for c in d.commands if isinstance(c, CaseEnded)] == [
        CaseEnded("self_service", "resolved", "e")]


def test_l1_path_runs_an_sla_clock_and_a_business_time_timeout(
        password_reset: CompiledSop, org_ctx: StepContext) -> None:
    d = run_reference_case(password_reset, org_ctx, 6)
    (task,) = d.created()
    assert (task.node, task.level, task.role) == ("verify_identity", "L1", "service_desk_agent")
    assert task.outcomes == ("verified", "escalate")
    # 4 business hours of office_nl from Monday 09:00 UTC (10:00 Amsterdam) -> 15:00 local
    assert task.due_at is not None
    assert task.due_at.isoformat() == "2026-03-02T14:00:00+00:00"
    kinds = sorted(c.kind for c in d.commands if isinstance(c, ScheduleTimer))
    assert kinds == ["sla_warning", "timeout"]  # the task's timeout and the clock's first rung
    # every scheduled timer was cancelled again by the end
    scheduled = {c.timer_id for c in d.commands if isinstance(c, ScheduleTimer)}
    cancelled = {c.timer_id for c in d.commands if isinstance(c, CancelTimer)}
    assert scheduled == cancelled
    clock = d.state.clocks["first_response"]
    assert clock.state["state"] == "completed"
    assert not clock.timers
    audits = [c.kind for c in d.commands if isinstance(c, Audit)]
    assert "sla_started" in audits
    assert "task_completed" in audits


def test_l2_path_escalates_and_hands_knowledge_back(password_reset: CompiledSop,
                                                    org_ctx: StepContext) -> None:
    d = run_reference_case(password_reset, org_ctx, 9)
    assert [t.node for t in d.created()] == ["verify_identity", "specialist_fix"]
    assert d.state.escalations == 1
    assert d.state.hand_backs == 1
    assert d.state.level == "L1"
    assert d.state.knowledge == {"kind": "linked", "article": "KB-42"}
    (hand_back,) = [c for c in d.commands if isinstance(c, Audit) and c.kind == "handed_back"]
    assert hand_back.detail["knowledge_missing"] is False
    assert [c for c in d.commands if isinstance(c, CreateTask)][1].level == "L2"


def test_classification_failure_routes_to_human_verification(password_reset: CompiledSop,
                                                             org_ctx: StepContext) -> None:
    from engine.interpreter.types import ActionFailedEvent

    d = Driver(password_reset, org_ctx)
    d.start(request_text="I forgot it", customer_tier="standard", email="a@example.com")
    d.send(ActionFailedEvent(d.action("classify").action_id, "classifier down", retryable=False))
    assert d.at() == ["verify_identity"]
    assert d.state.clocks["first_response"].state["state"] == "running"


def test_withdrawn_cancels_the_case_anywhere(password_reset: CompiledSop,
                                             org_ctx: StepContext) -> None:
    d = Driver(password_reset, org_ctx, registry=load_actions(), auto_actions=True)
    d.start(request_text="locked out", customer_tier="gold", email="a@example.com")
    task_id = d.task_id("verify_identity")
    out = d.signal("withdrawn")
    assert (d.state.status, d.state.outcome) == ("cancelled", "withdrawn")
    assert any(getattr(c, "task_id", None) == task_id and type(c).__name__ == "CancelTask"
               for c in out)
    assert d.state.clocks["first_response"].state["state"] == "cancelled"
