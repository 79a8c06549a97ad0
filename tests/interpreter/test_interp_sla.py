"""SLA clock nodes and SLA timers: policy choice, timers armed and cancelled, effects."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from interp_helpers import Driver, sop

from engine.interpreter import StepContext
from engine.interpreter.types import (
    Audit,
    CancelTimer,
    CaseStarted,
    ScheduleTimer,
    SendMessage,
    TimerFired,
)

FLOW = """
start: {type: start, next: clock}
clock: {type: sla_start, clock: fr, metric: first_response, next: work}
work:
  type: human_task
  level: L1
  outcomes:
    need_info: {next: pause}
    done: {next: stop}
    close: {next: fine}
pause: {type: sla_pause, clock: fr, next: wait}
wait: {type: wait, on: [{event: reply, next: resume}]}
resume: {type: sla_resume, clock: fr, next: work}
stop: {type: sla_stop, clock: fr, next: check}
check: {type: sla_check, clock: fr, ok: fine, breached: late}
fine: {type: end, outcome: in_time}
late: {type: end, outcome: late}
"""


def scheduled(d: Driver, cmds: object = None) -> dict[str, ScheduleTimer]:
    out = d.commands if cmds is None else cmds
    return {c.payload["key"]: c for c in out if isinstance(c, ScheduleTimer)
            and c.kind.startswith("sla_")}


def armed(d: Driver) -> list[ScheduleTimer]:
    """The SLA timers armed now (what the store holds as pending rows), in due order."""
    live = {tid for ref in d.state.clocks.values() for tid in ref.timers}
    latest = {c.timer_id: c for c in d.commands if isinstance(c, ScheduleTimer)}
    return sorted((latest[tid] for tid in live), key=lambda t: (t.due_at, t.payload["key"]))


def fire_all(d: Driver) -> tuple[list[ScheduleTimer], list[object]]:
    """Fire the armed SLA rungs one after another until none is armed; returns the timers
    fired and every command they produced."""
    fired: list[ScheduleTimer] = []
    out: list[object] = []
    while armed(d):
        timer = armed(d)[0]
        out += d.fire(timer)
        fired.append(timer)
        assert timer.timer_id not in d.state.timers
    return fired, out


def audits(cmds: object, kind: str) -> list[Audit]:
    return [c for c in cmds if isinstance(c, Audit) and c.kind == kind]  # type: ignore[attr-defined]


@pytest.fixture
def d(org_ctx: StepContext) -> Driver:
    drv = Driver(sop(FLOW), org_ctx)
    drv.start()
    return drv


def test_sla_start_chooses_policy_and_arms_the_first_rung_only(d: Driver) -> None:
    clock = d.state.clocks["fr"]
    assert clock.state["policy_id"] == "sla_default"
    assert clock.state["state"] == "running"
    # normal priority: 4 business hours of office_nl from Monday 10:00 local -> 15:00 local
    assert clock.state["due_at"] == "2026-03-02T14:00:00+00:00"
    # one timer row per clock: the first warning (75 % of 4 business hours, after the
    # lunch break: 14:00 local = 13:00 UTC)
    (first,) = armed(d)
    assert (first.kind, first.payload["key"]) == ("sla_warning", "fr:1:warning:0")
    assert first.due_at == datetime(2026, 3, 2, 13, 0, tzinfo=UTC)
    assert set(clock.timers) == {first.timer_id}
    assert d.state.timers[first.timer_id] == ""
    assert len(scheduled(d)) == 1


def test_rungs_are_armed_one_after_another_in_due_order(d: Driver) -> None:
    fired, _ = fire_all(d)
    assert [(t.kind, t.payload["key"], t.due_at.isoformat()) for t in fired] == [
        ("sla_warning", "fr:1:warning:0", "2026-03-02T13:00:00+00:00"),
        ("sla_warning", "fr:1:warning:1", "2026-03-02T13:45:00+00:00"),
        # the breach and the +0h rung share an instant: armed together
        ("sla_breach", "fr:1:breach", "2026-03-02T14:00:00+00:00"),
        ("sla_escalation", "fr:1:escalation:0", "2026-03-02T14:00:00+00:00"),
        ("sla_escalation", "fr:1:escalation:1", "2026-03-02T16:00:00+00:00"),
        ("sla_escalation", "fr:1:escalation:2", "2026-03-03T08:30:00+00:00"),
    ]
    assert not d.state.timers and not d.state.clocks["fr"].timers


def test_gold_tier_gets_the_gold_policy(org_ctx: StepContext) -> None:
    d = Driver(sop(FLOW), org_ctx)
    d.send(CaseStarted(tier="gold"))
    assert d.state.clocks["fr"].state["policy_id"] == "sla_gold"


def test_forced_policy_on_the_node(org_ctx: StepContext) -> None:
    forced = FLOW.replace("metric: first_response,", "metric: first_response, policy: sla_gold,")
    d = Driver(sop(forced),
               org_ctx)
    d.start()
    assert d.state.clocks["fr"].state["policy_id"] == "sla_gold"


def test_without_policies_no_clock_runs_and_the_path_goes_on() -> None:
    d = Driver(sop(FLOW))
    out = d.start()
    assert audits(out, "sla_not_applicable")
    assert not d.state.clocks
    assert d.at() == ["work"]
    d.complete("work", "done")
    assert d.state.outcome == "in_time"


def test_pause_cancels_timers_and_resume_replans_them_later(d: Driver) -> None:
    armed_ids = set(d.state.clocks["fr"].timers)
    first_due = d.state.clocks["fr"].state["due_at"]
    d.advance(hours=1)
    out = d.complete("work", "need_info")
    assert {c.timer_id for c in out if isinstance(c, CancelTimer)} == armed_ids
    assert not d.state.clocks["fr"].timers
    assert not d.state.timers
    assert d.state.clocks["fr"].state["state"] == "paused"
    d.advance(hours=2)
    out = d.signal("reply")
    (warning,) = [c for c in out if isinstance(c, ScheduleTimer) and c.kind.startswith("sla_")]
    assert warning.payload["key"] == "fr:1:warning:0"
    assert d.state.clocks["fr"].state["state"] == "running"
    assert d.state.clocks["fr"].state["due_at"] > first_due  # the pause moved the breach


def test_stop_completes_clock_and_check_routes_ok(d: Driver) -> None:
    out = d.complete("work", "done")
    assert d.state.clocks["fr"].state["state"] == "completed"
    (check,) = audits(out, "sla_check")
    assert check.detail["status"] == "ok"
    assert d.state.outcome == "in_time"
    assert not d.state.timers


def test_timers_fire_warning_breach_escalation_and_notify(d: Driver) -> None:
    _, out = fire_all(d)
    effects = [c.kind for c in out if isinstance(c, Audit)]
    messages = [c for c in out if isinstance(c, SendMessage)]
    assert effects.count("sla_warning") == 2
    assert "sla_breach" in effects
    assert d.state.level == "L2"
    assert d.state.escalations == 1
    assert messages
    assert all(m.channel == "internal" for m in messages)
    assert {m.to for m in messages} >= {"supervisor"}
    # the human completes late: the check routes to breached
    d.complete("work", "done")
    assert d.state.outcome == "late"


def test_a_rung_fired_late_arms_the_next_one_already_due(d: Driver) -> None:
    """Misfire policy: after downtime each overdue rung fires once, one after another."""
    first = armed(d)[0]
    d.advance(hours=10)  # far past the breach
    d.send(TimerFired(first.timer_id, first.due_at, d.now))
    (following,) = armed(d)
    assert following.payload["key"] == "fr:1:warning:1"
    assert following.due_at < d.now  # overdue: the next sweep fires it at once
    out = d.send(TimerFired(following.timer_id, following.due_at, d.now))
    (warning,) = audits(out, "sla_warning")
    assert warning.detail["lateness_seconds"] > 0


def test_duplicate_sla_timer_is_a_no_op(d: Driver) -> None:
    (warning,) = [t for t in scheduled(d).values() if t.kind == "sla_warning"][:1]
    d.fire(warning)
    state = d.state
    assert d.fire(warning) == ()
    assert d.state is state


def test_case_end_stops_running_clocks_and_cancels_their_timers(org_ctx: StepContext) -> None:
    d = Driver(sop(FLOW), org_ctx)
    d.start()
    armed = set(d.state.clocks["fr"].timers)
    out = d.complete("work", "close")
    assert armed <= {c.timer_id for c in out if isinstance(c, CancelTimer)}
    assert d.state.clocks["fr"].state["state"] == "completed"


def test_withdrawn_case_cancels_running_clock_but_keeps_completed_ones(
        org_ctx: StepContext) -> None:
    handlers = "- {event: withdrawn, interrupt: true, next: gone}"
    flow = FLOW + "gone: {type: end, outcome: withdrawn, status: cancelled, terminate: true}\n"
    flow = flow.replace("clock: {type: sla_start, clock: fr, metric: first_response, next: work}",
                        "clock: {type: sla_start, clock: fr, metric: first_response, next: res}\n"
                        "res: {type: sla_start, clock: total, metric: resolution_total, "
                        "next: work}")
    flow = flow.replace("stop: {type: sla_stop, clock: fr, next: check}",
                        "stop: {type: sla_stop, clock: fr, next: work2}\n"
                        "work2: {type: human_task, level: L1, outcomes: {ok: {next: check}}}")
    d = Driver(sop(flow, handlers=handlers), org_ctx)
    d.start()
    d.complete("work", "done")
    assert d.state.clocks["fr"].state["state"] == "completed"
    armed = set(d.state.clocks["total"].timers)
    out = d.signal("withdrawn")
    assert d.state.status == "cancelled"
    assert d.state.clocks["fr"].state["state"] == "completed"
    assert d.state.clocks["total"].state["state"] == "cancelled"
    assert armed <= {c.timer_id for c in out if isinstance(c, CancelTimer)}
    assert not d.state.timers


def test_priority_change_recomputes_running_clocks(org_ctx: StepContext) -> None:
    handlers = "- {event: priority_changed, set: {priority: event.priority}}"
    d = Driver(sop(FLOW, data="priority: {type: string}", handlers=handlers), org_ctx)
    d.start()
    (old_warning,) = armed(d)
    old_due = d.state.clocks["fr"].state["due_at"]
    out = d.signal("priority_changed", priority="high")
    assert d.state.priority == "high"
    # high priority: 2 business hours instead of 4 -> 12:00 local (lunch starts) = 11:00 UTC
    assert d.state.clocks["fr"].state["due_at"] == "2026-03-02T11:00:00+00:00" < old_due
    (warning,) = [c for c in out if isinstance(c, ScheduleTimer) and c.kind == "sla_warning"]
    assert warning.due_at < old_warning.due_at
    assert audits(out, "sla_reprioritized")
    assert CancelTimer(old_warning.timer_id) in out
    assert [t.timer_id for t in armed(d)] == [warning.timer_id]


CHECK = """
start: {type: start, next: clock}
clock: {type: sla_start, clock: fr, metric: first_response, next: work}
work:
  type: human_task
  level: L1
  outcomes: {done: {next: check}}
check: {type: sla_check, clock: fr, ok: fine, warning: hurry, breached: late}
fine: {type: end, outcome: fine}
hurry: {type: end, outcome: hurry}
late: {type: end, outcome: late}
"""


@pytest.mark.parametrize(("hours", "outcome"), [(1, "fine"), (4.5, "hurry"), (6, "late")])
def test_sla_check_routes_on_the_clock_status(org_ctx: StepContext, hours: float,
                                              outcome: str) -> None:
    # 4 business hours from Monday 10:00 local; warning at 75% (3 h), lunch 12-13 local
    d = Driver(sop(CHECK), org_ctx)
    d.start()
    d.advance(hours=hours)
    d.complete("work", "done")
    assert d.state.outcome == outcome


def test_sla_check_warning_falls_back_to_ok(org_ctx: StepContext) -> None:
    d = Driver(sop(CHECK.replace(" warning: hurry,", "")
                   .replace("hurry: {type: end, outcome: hurry}\n", "")), org_ctx)
    d.start()
    d.advance(hours=4.5)  # 3.5 business hours (lunch excluded): past the 75% warning
    out = d.complete("work", "done")
    (check,) = audits(out, "sla_check")
    assert check.detail["status"] == "warning"
    assert d.state.outcome == "fine"
