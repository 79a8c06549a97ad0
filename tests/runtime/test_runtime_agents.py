"""Executable spec of who may work on and decide human tasks (the agents document), through
engine.runtime.ops on a SQLite file and PostgreSQL: every refusal is a RunError that says
what is missing, and nothing changes."""

from __future__ import annotations

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

from engine.errors import RunError
from engine.runtime import ops


def _review(rt) -> tuple[str, str]:  # noqa: ANN001
    """A new refund case waiting at its level 1 review: (case id, task id)."""
    case_id = ops.start_case(rt, "refund", {"amount": 20.0})
    settle(rt)
    return case_id, open_task(rt, case_id).id


def _refused(rt, case_id: str, task_id: str, call, match: str) -> None:  # noqa: ANN001
    """``call`` raises a RunError matching ``match``, and the task and the case are as before."""
    before = task_row(rt, task_id)
    with pytest.raises(RunError, match=match):
        call()
    after = task_row(rt, task_id)
    assert (after.status, after.version, after.assignee) == (before.status, before.version,
                                                             before.assignee)
    assert pending_inputs(rt, case_id) == 0


def test_an_unknown_agent_is_refused_naming_the_known_ones(rt) -> None:  # noqa: ANN001
    case_id, task_id = _review(rt)
    for call in (lambda: ops.claim_task(rt, task_id, "cleopatra"),
                 lambda: ops.complete_task(rt, task_id, "reject", {}, agent="cleopatra"),
                 lambda: ops.escalate_task(rt, task_id, "x", agent="cleopatra")):
        _refused(rt, case_id, task_id, call,
                 r"unknown agent 'cleopatra' \(did you mean 'cleo'\?\): only the agents of the "
                 r"agents document \(.*agents.yaml\) may \w+ task .*; known: cleo, sam, tara, "
                 r"tom, lou \(give --agent ID or set CAREFLOW_AGENT\)")
    _refused(rt, case_id, task_id, lambda: ops.claim_task(rt, task_id, "agent"),
             r"unknown agent 'agent': only the agents of")


def test_an_agent_works_only_at_their_levels(rt) -> None:  # noqa: ANN001
    case_id, task_id = _review(rt)
    _refused(rt, case_id, task_id, lambda: ops.claim_task(rt, task_id, "tara"),
             rf"tara may not claim task {task_id} \(review\): it is a level L1 task and tara "
             "works at L2")
    _refused(rt, case_id, task_id,
             lambda: ops.complete_task(rt, task_id, "reject", {}, agent="tara"),
             "tara may not complete task .* it is a level L1 task")


def test_the_nodes_role_is_needed_to_claim_complete_escalate_or_hand_back(rt) -> None:  # noqa: ANN001
    case_id, task_id = _review(rt)
    ops.complete_task(rt, task_id, "approve", {}, agent="sam")
    settle(rt)
    pay = open_task(rt, case_id)
    assert (pay.node, pay.level) == ("pay", "L2")
    for doing, call in (
            ("claim", lambda: ops.claim_task(rt, pay.id, "lou")),
            ("complete", lambda: ops.complete_task(rt, pay.id, "paid", {}, agent="lou")),
            ("escalate", lambda: ops.escalate_task(rt, pay.id, "x", agent="lou")),
            ("hand back", lambda: ops.hand_back_task(rt, pay.id, "x", agent="lou"))):
        _refused(rt, case_id, pay.id, call,
                 rf"lou may not {doing} task {pay.id} \(pay\): it needs role 'treasurer', which "
                 r"lou does not have \(roles: none\)")


def test_an_outcome_with_roles_needs_one_of_them(rt) -> None:  # noqa: ANN001
    case_id, task_id = _review(rt)
    _refused(rt, case_id, task_id,
             lambda: ops.complete_task(rt, task_id, "approve", {"note": "ok"}, agent="cleo"),
             rf"cleo may not choose outcome 'approve' of task {task_id} \(review\): it needs one "
             "of the roles senior_clerk, and cleo has clerk")
    ops.complete_task(rt, task_id, "approve", {"note": "ok"}, agent="sam")
    settle(rt)
    assert open_task(rt, case_id).node == "pay"


def test_an_outcome_without_roles_is_open_to_anyone_on_the_task(rt) -> None:  # noqa: ANN001
    case_id, task_id = _review(rt)
    ops.claim_task(rt, task_id, "cleo")
    ops.complete_task(rt, task_id, "reject", {}, agent="cleo")
    settle(rt)
    assert (case_row(rt, case_id).status, case_row(rt, case_id).outcome) == ("resolved", "rejected")


def test_escalating_by_hand_is_choosing_the_escalate_outcome(rt) -> None:  # noqa: ANN001
    case_id, task_id = _review(rt)
    ops.escalate_task(rt, task_id, "needs the back office", agent="cleo")  # a clerk may
    settle(rt)
    assert open_task(rt, case_id).node == "pay"


def test_the_agent_check_comes_before_the_input_check(rt) -> None:  # noqa: ANN001
    case_id, task_id = _review(rt)
    _refused(rt, case_id, task_id,
             lambda: ops.complete_task(rt, task_id, "aprove", {}, agent="tara"),
             "tara may not complete")
    _refused(rt, case_id, task_id,
             lambda: ops.complete_task(rt, task_id, "aprove", {}, agent="sam"),
             "outcome 'aprove' is not allowed .*did you mean 'approve'")


def test_without_an_agents_document_nobody_is_checked(engine, clock, tmp_path: Path) -> None:  # noqa: ANN001
    folder = write_library(tmp_path / "lib", agents=False)
    with refund_runtime(engine, clock, folder) as rt:
        assert rt.sops.agents is None
        case_id, task_id = _review(rt)
        ops.claim_task(rt, task_id, "anybody")
        ops.complete_task(rt, task_id, "approve", {}, agent="anybody")
        settle(rt)
        assert open_task(rt, case_id).node == "pay"
