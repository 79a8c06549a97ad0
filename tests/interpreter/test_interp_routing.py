"""Decisions, waits (deferred choice, timeouts), loops, ends, and the ended-case rules."""

from __future__ import annotations

from datetime import timedelta

import pytest
from interp_helpers import Driver, sop

from engine.errors import TransitionNotAllowed
from engine.interpreter.rejections import CaseAlreadyEnded, UnmatchedSignal
from engine.interpreter.types import (
    Audit,
    CancelTimer,
    CaseEnded,
    CaseStarted,
    RaiseIncident,
    ScheduleTimer,
    TimerFired,
)

DECIDE = """
start: {type: start, next: route}
route:
  type: decision
  branches:
    - {when: "amount > 100", label: big, next: big}
    - {when: "amount > 10", next: medium}
  otherwise: small
big: {type: end, outcome: big}
medium: {type: end, outcome: medium}
small: {type: end, outcome: small}
"""


@pytest.mark.parametrize(("amount", "outcome", "rule"),
                         [(500, "big", 0), (50, "medium", 1), (5, "small", "otherwise")])
def test_decision_first_true_branch_wins_and_is_audited(amount: int, outcome: str,
                                                         rule: object) -> None:
    d = Driver(sop(DECIDE, data="amount: {type: integer, input: true}"))
    out = d.start(amount=amount)
    (audit,) = [c for c in out if isinstance(c, Audit) and c.kind == "decision"]
    assert audit.node == "route"
    assert audit.detail["rule"] == rule
    assert audit.detail["result"] == outcome
    if rule == 0:
        assert audit.detail["condition"] == "amount > 100"
    assert d.state.outcome == outcome


def test_decision_on_missing_data_raises_incident() -> None:
    d = Driver(sop(DECIDE, data="amount: {type: integer, input: true}"))
    out = d.start()
    (incident,) = d.of(RaiseIncident, out)
    assert incident.node == "route"
    assert "amount" in incident.error
    assert d.at() == ["route"]
    assert d.state.status == "open"


WAIT = """
start: {type: start, next: w}
w:
  type: wait
  on:
    - {event: reply, when: "event.text != ''", set: {answer: event.text}, next: got_reply}
    - {event: reply, next: empty_reply}
    - {event: cancel, next: cancelled}
  timeout: {after: 2h, next: timed_out}
got_reply: {type: end, outcome: replied}
empty_reply: {type: end, outcome: empty}
cancelled: {type: end, outcome: cancelled, status: cancelled}
timed_out: {type: end, outcome: timed_out, status: closed}
"""


def test_wait_first_matching_entry_wins_sets_data_and_cancels_timeout() -> None:
    d = Driver(sop(WAIT, data="answer: {type: string}"))
    out = d.start()
    (timer,) = d.of(ScheduleTimer, out)
    assert timer.kind == "wait_timeout"
    assert timer.due_at == d.now + timedelta(hours=2)
    out = d.signal("reply", text="thanks")
    assert d.state.data["answer"] == "thanks"
    assert CancelTimer(timer.timer_id) in out
    assert d.state.outcome == "replied"
    assert not d.state.timers


def test_wait_condition_false_falls_to_next_entry() -> None:
    d = Driver(sop(WAIT, data="answer: {type: string}"))
    d.start()
    d.signal("reply", text="")
    assert d.state.outcome == "empty"


def test_wait_timeout_takes_the_timeout_route() -> None:
    d = Driver(sop(WAIT, data="answer: {type: string}"))
    d.start()
    d.fire(d.timer("wait_timeout"))
    assert (d.state.outcome, d.state.status) == ("timed_out", "closed")


def test_unmatched_signal_is_distinguishable_and_changes_nothing() -> None:
    d = Driver(sop(WAIT, data="answer: {type: string}"))
    d.start()
    before = d.state
    with pytest.raises(UnmatchedSignal) as info:
        d.signal("unrelated")
    assert info.value.signal == "unrelated"
    assert isinstance(info.value, TransitionNotAllowed)
    assert d.state is before


def test_ended_case_stays_ended() -> None:
    d = Driver(sop(WAIT, data="answer: {type: string}"))
    d.start()
    timer = d.timer("wait_timeout")
    d.signal("cancel")
    ended = d.state
    assert ended.status == "cancelled"
    assert not ended.tokens
    assert not ended.timers
    # a duplicate or late timer is a silent no-op: same state object, no commands
    state, out = d.state, d.send(TimerFired(timer.timer_id, timer.due_at, d.now))
    assert out == ()
    assert d.state is ended
    assert state.seq == ended.seq
    with pytest.raises(CaseAlreadyEnded):
        d.signal("reply", text="too late")
    with pytest.raises(CaseAlreadyEnded):
        d.send(CaseStarted())
    assert d.state is ended


def test_case_started_twice_is_refused() -> None:
    d = Driver(sop(WAIT, data="answer: {type: string}"))
    d.start()
    with pytest.raises(TransitionNotAllowed, match="already started"):
        d.send(CaseStarted())


LOOP = """
start: {type: start, next: again}
again: {type: loop, max: 3, counter: rounds, body: ask, exit: gave_up}
ask:
  type: wait
  on:
    - {event: answer, next: done}
    - {event: retry, next: again}
gave_up: {type: end, outcome: gave_up}
done: {type: end, outcome: answered}
"""


def test_loop_runs_body_up_to_max_then_exits_and_resets() -> None:
    d = Driver(sop(LOOP, data="rounds: {type: integer}"))
    d.start()
    assert d.state.data["rounds"] == 1
    d.signal("retry")
    d.signal("retry")
    assert d.state.data["rounds"] == 3
    assert d.at() == ["ask"]
    out = d.signal("retry")
    assert d.state.outcome == "gave_up"
    assert "again" not in d.state.counters
    assert d.state.data["rounds"] == 0
    assert any(isinstance(c, CaseEnded) for c in out)


def test_seq_increments_by_one_per_applied_event() -> None:
    d = Driver(sop(LOOP, data="rounds: {type: integer}"))
    d.start()
    assert d.state.seq == 1
    d.signal("retry")
    assert d.state.seq == 2
    d.signal("answer")
    assert d.state.seq == 3


def test_awaiting_lists_what_the_case_waits_for() -> None:
    from engine.interpreter.waiting import awaiting, signals_accepted

    compiled = sop(WAIT, data="answer: {type: string}")
    d = Driver(compiled)
    d.start()
    (what,) = awaiting(compiled, d.state)
    assert (what.kind, what.node, what.events) == ("event", "w", ("reply", "cancel"))
    assert what.timer == d.timer("wait_timeout").timer_id
    assert signals_accepted(compiled, d.state) == {"reply", "cancel"}
    d.signal("cancel")
    assert awaiting(compiled, d.state) == ()
    assert signals_accepted(compiled, d.state) == set()


def test_text_for_timestamp_and_duration_fields_becomes_typed_values() -> None:
    from datetime import UTC, datetime

    flow = """
start: {type: start, next: route}
route:
  type: decision
  branches: [{when: "bought + grace > now", next: fresh}]
  otherwise: old
fresh: {type: end, outcome: fresh}
old: {type: end, outcome: old}
"""
    compiled = sop(flow, data="bought: {type: timestamp, input: true}\n"
                   "grace: {type: duration, input: true}")
    d = Driver(compiled)
    d.start(bought="2026-03-01T12:00:00Z", grace="P2D")
    assert d.state.data["bought"] == datetime(2026, 3, 1, 12, tzinfo=UTC)
    assert d.state.data["grace"] == timedelta(days=2)
    assert d.state.outcome == "fresh"
    d2 = Driver(compiled)
    d2.start(bought="2025-01-01T00:00:00+00:00", grace="1d")
    assert d2.state.outcome == "old"


def test_each_step_audits_the_path_it_took() -> None:
    d = Driver(sop(DECIDE, data="amount: {type: integer, input: true}"))
    out = d.start(amount=50)
    (path,) = [c for c in out if isinstance(c, Audit) and c.kind == "path"]
    assert path.detail["nodes"] == ["start", "route", "medium"]
    assert out[-1] == path


def test_a_case_runs_only_on_the_sop_version_it_started_with() -> None:
    from engine.errors import RunError
    from engine.interpreter import step

    d = Driver(sop(WAIT, data="answer: {type: string}"))
    d.start()
    other = sop(WAIT.replace("after: 2h", "after: 3h"), data="answer: {type: string}")
    assert other.hash != d.compiled.hash
    with pytest.raises(RunError, match="case runs on SOP"):
        step(other, d.state, CaseStarted(), d.now, d.ctx)
