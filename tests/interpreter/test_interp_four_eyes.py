"""Four eyes in the interpreter: a confirmed completion names both people in the audit trail;
an ordinary one keeps its audit detail exactly as before (golden logs, hash chains)."""

from __future__ import annotations

from interp_helpers import Driver, sop

from engine.interpreter.types import Audit, TaskCompleted

FLOW = """
start: {type: start, next: pay}
pay:
  type: human_task
  level: L2
  role: treasurer
  four_eyes: true
  outcomes: {paid: {next: e}}
  timeout: {after: 1d, next: e}
e: {type: end, outcome: paid}
"""


def _completed(d: Driver) -> Audit:
    (audit,) = [a for a in d.of(Audit) if a.kind == "task_completed"]
    return audit


def test_a_confirmed_completion_audits_the_proposer_and_the_confirmer() -> None:
    d = Driver(sop(FLOW))
    d.start()
    d.send(TaskCompleted(d.task_id("pay"), "paid", actor="tara", confirmed_by="tom"))
    audit = _completed(d)
    assert audit.actor == "tara"
    assert dict(audit.detail) == {"task": audit.detail["task"], "outcome": "paid",
                                  "sop_version": "1.0.0", "knowledge": None,
                                  "confirmed_by": "tom"}
    assert d.state.status == "resolved"


def test_an_unconfirmed_completion_has_no_confirmed_by_in_its_detail() -> None:
    d = Driver(sop(FLOW))
    d.start()
    d.send(TaskCompleted(d.task_id("pay"), "paid", actor="tara"))
    assert "confirmed_by" not in _completed(d).detail
