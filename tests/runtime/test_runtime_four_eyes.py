"""Executable spec of four eyes through engine.runtime.ops (SQLite file and PostgreSQL): the
first completion is a proposal, a second allowed agent confirms it (the case moves on and
the audit trail names both) or rejects it (the task is open again)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from agents_fixtures import (
    case_row,
    open_task,
    pending_inputs,
    refund_rt,  # noqa: F401 -- the ``rt`` fixture
    refund_runtime,
    settle,
    task_row,
    write_library,
)
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import RunError, TaskConflict
from engine.runtime import ops
from engine.store import audit
from engine.store.models import AuditRow


def _pay(rt) -> tuple[str, str]:  # noqa: ANN001
    """A refund case waiting at its four-eyes pay-out task: (case id, task id)."""
    case_id = ops.start_case(rt, "refund", {"amount": 20.0})
    settle(rt)
    ops.complete_task(rt, open_task(rt, case_id).id, "approve", {}, agent="sam")
    settle(rt)
    task = open_task(rt, case_id)
    assert task.node == "pay"
    return case_id, task.id


def _trail(rt, case_id: str) -> list[AuditRow]:  # noqa: ANN001
    with Session(rt.engine) as s:
        return list(s.scalars(select(AuditRow).where(AuditRow.case_id == case_id)
                              .order_by(AuditRow.seq)))


def test_completing_a_four_eyes_task_proposes_and_the_case_waits(rt) -> None:  # noqa: ANN001
    case_id, task_id = _pay(rt)
    row = ops.complete_task(rt, task_id, "paid", {"note": "IBAN checked"}, agent="tara",
                            knowledge={"kind": "none", "reason": "routine"})
    assert (row.status, row.proposed_by, row.proposed_outcome) == ("proposed", "tara", "paid")
    assert pending_inputs(rt, case_id) == 0
    settle(rt)
    assert case_row(rt, case_id).status == "open"
    assert task_row(rt, task_id).status == "proposed"


def test_a_second_agent_confirms_and_the_trail_names_both(rt) -> None:  # noqa: ANN001
    case_id, task_id = _pay(rt)
    ops.complete_task(rt, task_id, "paid", {"note": "IBAN checked"}, agent="tara")
    row = ops.confirm_task(rt, task_id, agent="tom")
    assert (row.status, row.completed_by, row.confirmed_by) == ("completed", "tara", "tom")
    settle(rt)
    case = case_row(rt, case_id)
    assert (case.status, case.outcome) == ("resolved", "paid")
    assert case.state["data"]["note"] == "IBAN checked"  # the proposal's fields
    trail = _trail(rt, case_id)
    (done,) = [a for a in trail if a.kind == "task_completed" and a.node == "pay"]
    assert done.actor == "tara" and done.detail["confirmed_by"] == "tom"
    assert done.detail["outcome"] == "paid"
    with Session(rt.engine) as s:
        assert list(audit.check_trails(s, [case_id])) == []


def test_the_proposer_cannot_confirm_or_reject_their_own_proposal(rt) -> None:  # noqa: ANN001
    case_id, task_id = _pay(rt)
    ops.complete_task(rt, task_id, "paid", {}, agent="tara")
    with pytest.raises(RunError, match=rf"tara proposed the outcome of task {task_id} \(pay\) "
                                       "and cannot confirm it too: four eyes means a second "
                                       "agent decides"):
        ops.confirm_task(rt, task_id, agent="tara")
    with pytest.raises(RunError, match="tara proposed .* cannot reject it too"):
        ops.reject_task(rt, task_id, agent="tara", reason="changed my mind")
    assert (task_row(rt, task_id).status, pending_inputs(rt, case_id)) == ("proposed", 0)


def test_the_confirmer_must_be_allowed_on_the_task(rt) -> None:  # noqa: ANN001
    case_id, task_id = _pay(rt)
    ops.complete_task(rt, task_id, "paid", {}, agent="tara")
    with pytest.raises(RunError, match="lou may not confirm task .*needs role 'treasurer'"):
        ops.confirm_task(rt, task_id, agent="lou")
    with pytest.raises(RunError, match="sam may not confirm task .*level L2 task and sam works "
                                       "at L1"):
        ops.confirm_task(rt, task_id, agent="sam")
    with pytest.raises(RunError, match="unknown agent 'tomm' \\(did you mean 'tom'\\?\\)"):
        ops.confirm_task(rt, task_id, agent="tomm")
    with pytest.raises(RunError, match="lou may not reject task"):
        ops.reject_task(rt, task_id, agent="lou", reason="no")
    assert (task_row(rt, task_id).status, pending_inputs(rt, case_id)) == ("proposed", 0)


def test_a_rejection_sends_the_task_back_to_open(rt) -> None:  # noqa: ANN001
    case_id, task_id = _pay(rt)
    ops.complete_task(rt, task_id, "paid", {"note": "wrong IBAN"}, agent="tara")
    with pytest.raises(RunError, match="needs a reason"):
        ops.reject_task(rt, task_id, agent="tom", reason="  ")
    row = ops.reject_task(rt, task_id, agent="tom", reason="the IBAN does not match")
    assert (row.status, row.proposed_outcome, row.assignee) == ("open", None, None)
    assert row.rejection["by"] == "tom" and row.rejection["reason"] == "the IBAN does not match"
    assert pending_inputs(rt, case_id) == 0
    with pytest.raises(TaskConflict, match="holds no proposed outcome .*rejected by tom"):
        ops.confirm_task(rt, task_id, agent="tom")
    # now tom proposes and tara confirms
    ops.complete_task(rt, task_id, "paid", {"note": "IBAN fixed"}, agent="tom")
    ops.confirm_task(rt, task_id, agent="tara")
    settle(rt)
    assert case_row(rt, case_id).outcome == "paid"


def test_a_proposed_task_cannot_be_completed_escalated_or_handed_back(rt) -> None:  # noqa: ANN001
    _, task_id = _pay(rt)
    ops.complete_task(rt, task_id, "paid", {}, agent="tara")
    for call in (lambda: ops.complete_task(rt, task_id, "paid", {}, agent="tom"),
                 lambda: ops.claim_task(rt, task_id, "tom"),
                 lambda: ops.escalate_task(rt, task_id, "x", agent="tom"),
                 lambda: ops.hand_back_task(rt, task_id, "x", agent="tom",
                                            knowledge={"kind": "none", "reason": "x"})):
        with pytest.raises(TaskConflict, match="already proposed by tara"):
            call()


def test_confirming_a_task_without_a_proposal_is_a_conflict(rt) -> None:  # noqa: ANN001
    _, task_id = _pay(rt)
    with pytest.raises(TaskConflict, match="it is open and holds no proposed outcome"):
        ops.confirm_task(rt, task_id, agent="tom")


def test_a_proposal_the_case_no_longer_waits_for_cannot_be_confirmed(rt, clock) -> None:  # noqa: ANN001
    case_id, task_id = _pay(rt)
    ops.complete_task(rt, task_id, "paid", {}, agent="tara")
    clock.advance(timedelta(days=1, minutes=1))  # the pay-out task's timeout fires
    settle(rt)
    assert case_row(rt, case_id).status == "resolved"
    assert task_row(rt, task_id).status == "cancelled"  # the timeout cancelled the proposal
    with pytest.raises(RunError, match=f"task {task_id}"):
        ops.confirm_task(rt, task_id, agent="tom")
    row = task_row(rt, task_id)
    assert row.status == "cancelled" and row.confirmed_by is None
    assert pending_inputs(rt, case_id) == 0


def test_without_an_agents_document_four_eyes_still_needs_a_second_person(
        engine, clock, tmp_path: Path) -> None:  # noqa: ANN001
    with refund_runtime(engine, clock, write_library(tmp_path / "lib", agents=False)) as rt:
        case_id, task_id = _pay(rt)
        ops.complete_task(rt, task_id, "paid", {}, agent="anybody")
        with pytest.raises(RunError, match="anybody proposed the outcome"):
            ops.confirm_task(rt, task_id, agent="anybody")
        ops.confirm_task(rt, task_id, agent="somebody else")
        settle(rt)
        assert case_row(rt, case_id).outcome == "paid"
