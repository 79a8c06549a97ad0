"""Parallel split, multi-choice with synchronising merge, simple merge, and event handlers."""

from __future__ import annotations

import pytest
from interp_helpers import Driver, sop

from engine.interpreter.types import Audit, CancelTask, CancelTimer, RaiseIncident

SPLIT = """
start: {type: start, next: fork}
fork:
  type: parallel
  join: merge
  branches:
    - {next: a}
    - {next: b, when: "want_b"}
    - {next: c, when: "want_c"}
a: {type: wait, on: [{event: a_done, next: merge}]}
b: {type: wait, on: [{event: b_done, next: merge}]}
c: {type: wait, on: [{event: c_done, next: merge}]}
merge: {type: join, next: after}
after: {type: wait, on: [{event: finish, next: done}]}
done: {type: end, outcome: done}
"""
DATA = """
want_b: {type: boolean, input: true}
want_c: {type: boolean, input: true}
"""


def test_parallel_split_waits_for_every_branch() -> None:
    d = Driver(sop(SPLIT, data=DATA))
    d.start(want_b=True, want_c=True)
    assert d.at() == ["a", "b", "c"]
    (fork_id,) = d.state.forks
    assert d.state.forks[fork_id] == 3
    d.signal("b_done")
    d.signal("a_done")
    assert d.at() == ["c", "merge", "merge"]
    assert d.state.joins[fork_id]
    assert len(d.state.joins[fork_id]) == 2
    d.signal("c_done")
    assert d.at() == ["after"]
    assert not d.state.forks
    assert not d.state.joins
    (token,) = d.state.tokens
    assert token.forks == ()
    d.signal("finish")
    assert d.state.outcome == "done"


def test_multi_choice_synchronising_merge_waits_only_for_activated_branches() -> None:
    d = Driver(sop(SPLIT, data=DATA))
    out = d.start(want_b=False, want_c=True)
    (audit,) = [c for c in out if isinstance(c, Audit) and c.kind == "parallel"]
    assert audit.detail["branches"] == ["a", "c"]
    assert d.at() == ["a", "c"]
    d.signal("c_done")
    assert d.at() == ["a", "merge"]
    d.signal("a_done")
    assert d.at() == ["after"]


def test_branch_ending_early_releases_the_join() -> None:
    flow = SPLIT.replace("c: {type: wait, on: [{event: c_done, next: merge}]}",
                         "c: {type: wait, on: [{event: c_done, next: merge}, "
                         "{event: c_drop, next: c_end}]}\nc_end: {type: end, outcome: dropped}")
    d = Driver(sop(flow, data=DATA))
    d.start(want_b=False, want_c=True)
    d.signal("a_done")
    assert d.at() == ["c", "merge"]
    d.signal("c_drop")  # the c branch ends on its own: the join no longer waits for it
    assert d.at() == ["after"]
    assert d.state.status == "open"


def test_nested_parallels_synchronise_their_own_forks() -> None:
    flow = """
start: {type: start, next: outer}
outer:
  type: parallel
  join: outer_join
  branches: [{next: inner}, {next: xx}]
inner:
  type: parallel
  join: inner_join
  branches: [{next: yy}, {next: zz}]
xx: {type: wait, on: [{event: xx, next: outer_join}]}
yy: {type: wait, on: [{event: yy, next: inner_join}]}
zz: {type: wait, on: [{event: zz, next: inner_join}]}
inner_join: {type: join, next: outer_join}
outer_join: {type: join, next: done}
done: {type: end}
"""
    d = Driver(sop(flow))
    d.start()
    assert d.at() == ["xx", "yy", "zz"]
    d.signal("yy")
    d.signal("xx")
    assert d.at() == ["inner_join", "outer_join", "zz"]
    d.signal("zz")
    assert d.state.status == "resolved"


def test_multi_choice_with_nothing_taken_uses_otherwise_or_raises_incident() -> None:
    flow = """
start: {type: start, next: fork}
fork:
  type: parallel
  join: j
  branches:
    - {next: a, when: "n > 1"}
    - {next: b, when: "n > 2"}
a: {type: set, set: {n: "0"}, next: j}
b: {type: set, set: {n: "0"}, next: j}
j: {type: join, next: done}
done: {type: end}
"""
    d = Driver(sop(flow, data="n: {type: integer, input: true}"))
    out = d.start(n=0)
    (incident,) = d.of(RaiseIncident, out)
    assert incident.node == "fork"
    d2 = Driver(sop(flow, data="n: {type: integer, input: true}"))
    d2.start(n=5)
    assert d2.state.status == "resolved"


def test_simple_merge_is_just_several_incoming_edges() -> None:
    flow = """
start: {type: start, next: route}
route:
  type: decision
  branches: [{when: "n > 1", next: big}]
  otherwise: small
big: {type: set, set: {label: "'big'"}, next: merge}
small: {type: set, set: {label: "'small'"}, next: merge}
merge: {type: set, set: {seen: "true"}, next: done}
done: {type: end}
"""
    d = Driver(sop(flow, data="n: {type: integer, input: true}\nlabel: {type: string}\n"
                   "seen: {type: boolean}"))
    d.start(n=3)
    assert d.state.data["label"] == "big"
    assert d.state.data["seen"] is True


HANDLED = """
start: {type: start, next: fork}
fork:
  type: parallel
  join: j
  branches: [{next: work}, {next: watch}]
work:
  type: human_task
  level: L1
  outcomes: {done: {next: j}}
  timeout: {after: 1h, next: j}
watch: {type: wait, on: [{event: customer_reply, next: j}]}
j: {type: join, next: finished}
finished: {type: end, outcome: finished}
apologise: {type: end, outcome: withdrawn, status: cancelled, terminate: true}
redo:
  type: human_task
  level: L1
  outcomes: {done: {next: finished}}
"""
HANDLERS = """
- {event: priority_changed, set: {urgency: event.priority}}
- {event: withdrawn, interrupt: true, next: apologise}
- {event: customer_reply, interrupt: true, scope: [work], next: redo}
"""


@pytest.fixture
def h() -> Driver:
    d = Driver(sop(HANDLED, data="urgency: {type: string}", handlers=HANDLERS))
    d.start()
    return d


def test_non_interrupting_handler_only_sets_data(h: Driver) -> None:
    before = h.at()
    h.signal("priority_changed", priority="high")
    assert h.state.data["urgency"] == "high"
    assert h.at() == before


def test_interrupting_handler_cancels_the_case(h: Driver) -> None:
    task_id = h.task_id("work")
    timer = h.timer("timeout")
    out = h.signal("withdrawn")
    assert CancelTask(task_id, "interrupted by withdrawn") in out
    assert CancelTimer(timer.timer_id) in out
    assert (h.state.status, h.state.outcome) == ("cancelled", "withdrawn")
    assert not h.state.tokens
    assert not h.state.tasks
    assert not h.state.timers
    assert not h.state.forks


def test_wait_entry_wins_over_a_handler_for_the_same_event(h: Driver) -> None:
    h.signal("customer_reply")
    # the waiting 'watch' branch consumed it; the handler (cancel activity) did not fire
    assert h.at() == ["j", "work"]
    assert h.state.tasks


def test_cancel_activity_handler_cancels_only_scoped_tokens(h: Driver) -> None:
    h.signal("customer_reply")  # consumed by the wait
    task_id = h.task_id("work")
    out = h.signal("customer_reply")  # nobody waits now: the scoped handler fires
    assert CancelTask(task_id, "interrupted by customer_reply") in out
    # the join lost its last missing branch, so the arrived token went on (and reached
    # 'finished', which is not the last token: 'redo' from the handler still runs)
    assert h.at() == ["redo"]
    assert h.state.status == "open"
    assert not h.state.forks
    h.complete("redo", "done")
    assert (h.state.status, h.state.outcome) == ("resolved", "finished")
