"""SLA clock lifecycle at the pure level: sla-semantics.md 3.7 catalogue items 10-24."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from sla_helpers import local, metric, policy

from engine.errors import CalendarError
from engine.sla.calendar import BusinessCalendar
from engine.sla.clock import (
    SlaClock,
    cancel,
    elapsed,
    pause,
    rearm,
    recalculate,
    remaining,
    reopen,
    reprioritize,
    resume,
    start_clock,
    status,
    stop,
)
from engine.sla.codec import from_json, to_json
from engine.sla.timers import SlaEffect, due_timers, next_timers, on_timer

H = 3600
FR = metric("first_response", "4h", by_priority={"critical": "1h", "p1": "1h", "p3": "8h"})
DEFAULT = policy("sla_default", 100, {"first_response": FR})
MON_9 = local(2026, 1, 5, 9)


def started(cal: BusinessCalendar, spec=FR, at: datetime = MON_9, **kw: object) -> SlaClock:
    name = kw.pop("name", spec.metric)
    return start_clock(str(name), spec.metric, DEFAULT, spec, cal, at, **kw)  # type: ignore[arg-type]


def deliver(
    clock: SlaClock, cal: BusinessCalendar, now: datetime
) -> tuple[SlaClock, list[SlaEffect]]:
    """Fire every planned timer due by ``now``, as the timer sweep would."""
    effects: list[SlaEffect] = []
    for timer in due_timers(clock, None, cal):
        if timer.due_at <= now:
            clock, fired = on_timer(clock, timer.kind, timer.key, cal, now)
            effects += fired
    return clock, effects


def kinds(effects: list[SlaEffect]) -> list[str]:
    return [e.kind for e in effects]


def test_start_plans_warnings_breach_and_ladder(office_cal: BusinessCalendar) -> None:
    clock = started(office_cal)
    assert clock.due_at == local(2026, 1, 5, 14)
    assert clock.original_due_at == clock.due_at
    plan = [
        (t.kind, office_cal.local(t.due_at).strftime("%a %H:%M"), t.key)
        for t in due_timers(clock, FR, office_cal)
    ]
    assert plan == [
        ("sla_warning", "Mon 12:00", "first_response:1:warning:0"),  # 75 %
        ("sla_warning", "Mon 13:45", "first_response:1:warning:1"),  # 15 min before
        ("sla_breach", "Mon 14:00", "first_response:1:breach"),
        ("sla_escalation", "Mon 14:00", "first_response:1:escalation:0"),  # +0h -> L2
        ("sla_escalation", "Mon 16:00", "first_response:1:escalation:1"),  # +2h supervisor
        ("sla_escalation", "Tue 08:30", "first_response:1:escalation:2"),  # +4h business
    ]


def test_next_timers_is_the_earliest_rung_and_rungs_sharing_its_instant(
        office_cal: BusinessCalendar) -> None:
    clock = started(office_cal)
    assert [t.key for t in next_timers(clock, FR, office_cal)] == ["first_response:1:warning:0"]
    clock, _ = on_timer(clock, "sla_warning", "first_response:1:warning:0", office_cal,
                        local(2026, 1, 5, 12))
    assert [t.key for t in next_timers(clock, FR, office_cal)] == ["first_response:1:warning:1"]
    clock, _ = on_timer(clock, "sla_warning", "first_response:1:warning:1", office_cal,
                        local(2026, 1, 5, 13, 45))
    assert [t.key for t in next_timers(clock, FR, office_cal)] == [
        "first_response:1:breach", "first_response:1:escalation:0"]  # both at Mon 14:00
    clock, _ = on_timer(clock, "sla_breach", "first_response:1:breach", office_cal,
                        local(2026, 1, 5, 14))
    assert [t.key for t in next_timers(clock, FR, office_cal)] == [
        "first_response:1:escalation:0"]


def test_start_outside_hours_counts_from_next_open(office_cal: BusinessCalendar) -> None:
    clock = started(office_cal, at=local(2026, 1, 10, 11))  # Saturday
    assert clock.due_at == local(2026, 1, 12, 12)
    assert elapsed(clock, office_cal, local(2026, 1, 12, 8)) == 0


# ---- 10/11: next_reply and periodic_update re-arming --------------------------------------


def test_next_reply_rearms_only_after_a_reply(office_cal: BusinessCalendar) -> None:
    nr = metric("next_reply", "2h")
    clock = started(office_cal, nr)  # customer message at 09:00 arms it
    same = rearm(clock, office_cal, local(2026, 1, 5, 10))  # second customer message
    assert same == clock  # the oldest unanswered message keeps the start
    replied = stop(clock, office_cal, local(2026, 1, 5, 10, 30))  # agent reply clears it
    assert replied.state == "completed"
    assert not replied.breached
    again = rearm(replied, office_cal, local(2026, 1, 5, 15))  # next customer message
    assert again.arming == 2
    assert again.state == "running"
    assert again.due_at == local(2026, 1, 5, 17)
    assert [t.key for t in due_timers(again, nr, office_cal)][0] == "next_reply:2:warning:0"


def test_periodic_update_rearms_after_every_agent_update(office_cal: BusinessCalendar) -> None:
    pu = metric("periodic_update", "4h")
    clock = started(office_cal, pu)
    updated = rearm(clock, office_cal, local(2026, 1, 5, 11))  # agent update while running
    assert updated.arming == 2
    assert updated.started_at == local(2026, 1, 5, 11)
    assert updated.due_at == local(2026, 1, 5, 16)


def test_first_response_never_rearms(office_cal: BusinessCalendar) -> None:
    done = stop(started(office_cal), office_cal, local(2026, 1, 5, 10))
    assert rearm(done, office_cal, local(2026, 1, 5, 11)) == done


def test_old_arming_timer_is_ignored(office_cal: BusinessCalendar) -> None:
    pu = metric("periodic_update", "1h")
    first = started(office_cal, pu)
    old_breach = [t for t in due_timers(first, pu, office_cal) if t.kind == "sla_breach"][0]
    second = rearm(first, office_cal, local(2026, 1, 5, 9, 30))
    after, effects = on_timer(
        second, old_breach.kind, old_breach.key, office_cal, local(2026, 1, 5, 10, 5)
    )
    assert after == second
    assert effects == ()


# ---- 12/13: pause and resume ------------------------------------------------------------


def test_paused_time_excluded_exactly_and_due_shifted(office_cal: BusinessCalendar) -> None:
    clock = started(office_cal)
    paused = pause(clock, office_cal, local(2026, 1, 5, 10, 0, 7))  # pending customer
    assert paused.state == "paused"
    assert paused.business_elapsed == H + 7
    assert due_timers(paused, FR, office_cal) == ()  # nothing fires while paused
    resumed = resume(paused, office_cal, local(2026, 1, 5, 11, 30, 7))  # customer replied
    assert resumed.paused_total == 90 * 60
    assert resumed.due_at == local(2026, 1, 5, 15, 30)
    assert elapsed(resumed, office_cal, local(2026, 1, 5, 12)) == H + 7 + 30 * 60 - 7
    assert remaining(resumed, office_cal, local(2026, 1, 5, 15, 30)) == 0


def test_pause_spanning_nights_and_days(office_cal: BusinessCalendar) -> None:
    clock = started(office_cal, priority="p3")  # 8 h target
    paused = pause(clock, office_cal, local(2026, 1, 5, 16))
    resumed = resume(paused, office_cal, local(2026, 1, 8, 10))  # Thursday 10:00
    # paused: Mon 16:00-17:30, Tue, Wed (8.5 h each), Thu 08:00-10:00
    assert resumed.paused_total == int(1.5 * H + 2 * 8.5 * H + 2 * H)
    assert elapsed(resumed, office_cal, local(2026, 1, 8, 10)) == paused.business_elapsed


def test_clock_created_already_paused(office_cal: BusinessCalendar) -> None:
    clock = pause(started(office_cal), office_cal, MON_9)
    resumed = resume(clock, office_cal, local(2026, 1, 6, 9))
    assert resumed.due_at == local(2026, 1, 6, 14)
    assert resumed.business_elapsed == 0


def test_pause_and_resume_are_idempotent(office_cal: BusinessCalendar) -> None:
    clock = started(office_cal)
    assert resume(clock, office_cal, local(2026, 1, 5, 10)) == clock
    once = pause(clock, office_cal, local(2026, 1, 5, 10))
    assert pause(once, office_cal, local(2026, 1, 5, 11)) == once


def test_breach_timer_while_paused_is_not_fired_and_replanned(office_cal: BusinessCalendar) -> None:
    clock = started(office_cal)
    breach = [t for t in due_timers(clock, FR, office_cal) if t.kind == "sla_breach"][0]
    paused = pause(clock, office_cal, local(2026, 1, 5, 11))
    same, effects = on_timer(paused, breach.kind, breach.key, office_cal, breach.due_at)
    assert same == paused
    assert effects == ()
    resumed = resume(paused, office_cal, local(2026, 1, 6, 11))
    replanned = [t for t in due_timers(resumed, FR, office_cal) if t.kind == "sla_breach"][0]
    assert replanned.key == breach.key
    assert replanned.due_at == local(2026, 1, 6, 14)
    # the old delivery, arriving late but before the new due instant, is stale: ignored
    assert on_timer(resumed, breach.kind, breach.key, office_cal, local(2026, 1, 6, 12))[1] == ()
    fired, effects = on_timer(resumed, breach.kind, breach.key, office_cal, replanned.due_at)
    assert kinds(list(effects)) == ["breach"]
    assert fired.breached_at == local(2026, 1, 6, 14)


# ---- 14: pause while breached ------------------------------------------------------------


def test_pause_while_breached_stays_breached_and_silences_ladder(
    office_cal: BusinessCalendar,
) -> None:
    clock, effects = deliver(started(office_cal), office_cal, local(2026, 1, 5, 14, 30))
    assert "breach" in kinds(effects)
    assert clock.breached
    paused = pause(clock, office_cal, local(2026, 1, 5, 15))
    assert paused.state == "paused"
    assert status(paused, office_cal, local(2026, 1, 5, 16)) == "breached"
    assert deliver(paused, office_cal, local(2026, 1, 6, 12))[1] == []  # ladder silent


def test_pause_if_breached_false_keeps_ladder_running(office_cal: BusinessCalendar) -> None:
    strict = metric("first_response", "4h", pause_if_breached=False)
    clock, _ = deliver(started(office_cal, strict), office_cal, local(2026, 1, 5, 14, 30))
    still = pause(clock, office_cal, local(2026, 1, 5, 15))
    assert still.state == "running"
    _, effects = deliver(still, office_cal, local(2026, 1, 5, 16))
    assert [e.detail["notify"] for e in effects] == ["supervisor"]


# ---- 16/17: priority and policy changes -------------------------------------------------


def test_priority_raise_is_retroactive_keeps_pause_and_breaches_once(
    office_cal: BusinessCalendar,
) -> None:
    clock = started(office_cal, priority="p3")  # 8 h target
    assert clock.due_at == local(2026, 1, 6, 8, 30)
    clock = resume(
        pause(clock, office_cal, local(2026, 1, 5, 9, 30)), office_cal, local(2026, 1, 5, 10, 30)
    )  # one hour paused, after 30 minutes of work
    raised = reprioritize(clock, DEFAULT, FR, office_cal, local(2026, 1, 5, 13, 30), "p1", None)
    assert raised.paused_total == H  # GLPI #15605: the pause survives the change
    assert raised.budget == H
    assert raised.due_at == local(2026, 1, 5, 11)  # 30 min + pause + 30 min; not 10:00
    assert status(raised, office_cal, local(2026, 1, 5, 13, 30)) == "breached"
    breaches = [t for t in due_timers(raised, FR, office_cal) if t.kind == "sla_breach"]
    assert breaches[0].due_at < local(2026, 1, 5, 13, 30)  # planned in the past: fires at once
    now = local(2026, 1, 5, 13, 30)
    fired, effects = on_timer(raised, "sla_breach", breaches[0].key, office_cal, now)
    again, more = on_timer(fired, "sla_breach", breaches[0].key, office_cal, now)
    assert kinds(list(effects)) == ["breach"]
    assert more == ()
    assert again.breaches == 1
    lowered = reprioritize(again, DEFAULT, FR, office_cal, local(2026, 1, 5, 14), "p3", None)
    assert lowered.breached
    assert lowered.breached_at == local(2026, 1, 5, 11)
    assert status(lowered, office_cal, local(2026, 1, 5, 14)) == "breached"
    assert deliver(lowered, office_cal, local(2026, 1, 5, 14))[1] == []


def test_policy_change_records_new_decision(office_cal: BusinessCalendar) -> None:
    gold_fr = metric("first_response", "1h")
    gold = policy("sla_gold", 10, {"first_response": gold_fr}, when='case.tier == "gold"')
    clock = started(office_cal)
    moved = reprioritize(clock, gold, gold_fr, office_cal, local(2026, 1, 5, 9, 30), None, "gold")
    assert (moved.policy_id, moved.policy_order, moved.condition) == (
        "sla_gold",
        10,
        'case.tier == "gold"',
    )
    assert moved.due_at == local(2026, 1, 5, 10)


def test_completed_clock_untouched_by_policy_change(office_cal: BusinessCalendar) -> None:
    done = stop(started(office_cal), office_cal, local(2026, 1, 5, 10))
    assert reprioritize(done, DEFAULT, FR, office_cal, local(2026, 1, 5, 11), "p1", None) == done


def test_replay_is_deterministic_and_json_round_trips(office_cal: BusinessCalendar) -> None:
    def run() -> list[dict[str, object]]:
        states = []
        clock = started(office_cal, priority="p3")
        states.append(to_json(clock))
        clock = pause(clock, office_cal, local(2026, 1, 5, 10))
        states.append(to_json(clock))
        clock = resume(clock, office_cal, local(2026, 1, 5, 16))
        clock = reprioritize(
            clock, DEFAULT, FR, office_cal, local(2026, 1, 5, 16), "critical", None
        )
        clock, _ = deliver(clock, office_cal, local(2026, 1, 6, 12))
        states.append(to_json(clock))
        clock = stop(clock, office_cal, local(2026, 1, 6, 12))
        states.append(to_json(clock))
        for s in states:
            assert to_json(from_json(s)) == s
        return states

    assert run() == run()


def test_from_json_refuses_unknown_versions() -> None:
    with pytest.raises(CalendarError, match="unknown schema_version"):
        from_json({"schema_version": 99})
    with pytest.raises(CalendarError, match="malformed"):
        from_json({"schema_version": 1, "name": "x"})


# ---- 18: reopen ------------------------------------------------------------------------


def _resolved(cal: BusinessCalendar, spec=FR) -> SlaClock:
    return stop(started(cal, spec), cal, local(2026, 1, 5, 11))  # 2 h used


def test_reopen_resume_counts_closed_time_as_paused(office_cal: BusinessCalendar) -> None:
    done = _resolved(office_cal)
    back = reopen(done, FR, office_cal, local(2026, 1, 6, 9), local(2026, 1, 5, 11), 14 * 86400)
    assert isinstance(back, SlaClock)
    assert back.state == "running"
    assert back.arming == 1
    assert elapsed(back, office_cal, local(2026, 1, 6, 9)) == 2 * H
    assert back.due_at == local(2026, 1, 6, 11)


def test_reopen_restart_gives_a_new_arming(office_cal: BusinessCalendar) -> None:
    spec = metric("resolution_total", "4h", on_reopen="restart")
    done = _resolved(office_cal, spec)
    back = reopen(done, spec, office_cal, local(2026, 1, 6, 9), local(2026, 1, 5, 11), None)
    assert isinstance(back, SlaClock)
    assert back.arming == 2
    assert back.due_at == local(2026, 1, 6, 14)


def test_reopen_after_window_is_a_new_case(office_cal: BusinessCalendar) -> None:
    done = _resolved(office_cal)
    late = local(2026, 1, 5, 11) + timedelta(days=15)
    assert reopen(done, FR, office_cal, late, local(2026, 1, 5, 11), 14 * 86400) == "new_case"
    always_new = metric(on_reopen="new_case")
    assert (
        reopen(done, always_new, office_cal, local(2026, 1, 6, 9), local(2026, 1, 5, 11), None)
        == "new_case"
    )


def test_reopen_ignore_and_running_clock(office_cal: BusinessCalendar) -> None:
    done = _resolved(office_cal)
    ignore = replace(metric(), on_reopen="ignore")
    assert (
        reopen(done, ignore, office_cal, local(2026, 1, 6, 9), local(2026, 1, 5, 11), None) == done
    )
    running = started(office_cal)
    assert (
        reopen(running, FR, office_cal, local(2026, 1, 6, 9), local(2026, 1, 5, 11), None)
        == running
    )


# ---- 19: several clocks at once ---------------------------------------------------------


def test_customer_sla_and_ola_clocks_run_independently(office_cal: BusinessCalendar) -> None:
    ola = metric("ola", "2h", ladder=(("0h", "L2", None),))
    customer = started(office_cal)
    l1 = started(office_cal, ola, name="ola_L1")
    move = local(2026, 1, 5, 10)  # the case moves from L1 to L2
    l1 = stop(l1, office_cal, move)
    l2 = started(office_cal, ola, at=move, name="ola_L2")
    assert l1.state == "completed"
    assert l2.due_at == local(2026, 1, 5, 12)
    assert customer.due_at == local(2026, 1, 5, 14)  # first_response unaffected
    keys = {t.key for c in (customer, l1, l2) for t in due_timers(c, None, office_cal)}
    assert any(k.startswith("ola_L2:1:") for k in keys)
    assert not any(k.startswith("ola_L1") for k in keys)


# ---- 20/21: warnings and escalation ladder ---------------------------------------------


def test_warnings_fire_once_per_arming_and_none_after_completion(
    office_cal: BusinessCalendar,
) -> None:
    spec = metric("next_reply", "4h", warnings=((50, None), (75, None), (None, 15)))
    clock = started(office_cal, spec)
    clock, effects = deliver(clock, office_cal, local(2026, 1, 5, 12))
    assert [e.detail["threshold_seconds"] for e in effects] == [2 * H, 3 * H]
    assert status(clock, office_cal, local(2026, 1, 5, 12)) == "warning"
    warn = [t for t in due_timers(started(office_cal, spec), spec, office_cal)][0]
    assert on_timer(clock, warn.kind, warn.key, office_cal, local(2026, 1, 5, 12))[1] == ()
    done = stop(clock, office_cal, local(2026, 1, 5, 13, 30))
    assert due_timers(done, spec, office_cal) == ()
    assert (
        deliver(clock, office_cal, local(2026, 1, 5, 13, 50))[1][0].detail["remaining_seconds"]
        == 900
    )
    rearmed = rearm(done, office_cal, local(2026, 1, 6, 8))
    _, again = deliver(rearmed, office_cal, local(2026, 1, 6, 11))
    assert [e.detail["key"] for e in again] == ["next_reply:2:warning:0", "next_reply:2:warning:1"]


def test_escalation_ladder(office_cal: BusinessCalendar) -> None:
    clock = started(office_cal)
    clock, effects = deliver(clock, office_cal, local(2026, 1, 5, 14))
    assert kinds(effects) == ["warning", "warning", "breach", "escalate"]
    assert effects[-1].detail["to_level"] == "L2"
    clock, effects = deliver(clock, office_cal, local(2026, 1, 5, 16))
    assert [(e.kind, e.detail["notify"]) for e in effects] == [("notify", "supervisor")]
    clock, effects = deliver(clock, office_cal, local(2026, 1, 6, 8, 30))
    assert [(e.kind, e.detail["notify"]) for e in effects] == [("notify", "head_of_department")]
    assert deliver(clock, office_cal, local(2026, 1, 9, 8))[1] == []
    assert clock.breaches == 1
    assert clock.breached_at == local(2026, 1, 5, 14)


def test_escalation_before_breach_delivery_records_the_breach_first(
    office_cal: BusinessCalendar,
) -> None:
    clock = started(office_cal)
    rung = [t for t in due_timers(clock, FR, office_cal) if t.kind == "sla_escalation"][0]
    fired, effects = on_timer(clock, rung.kind, rung.key, office_cal, rung.due_at)
    assert kinds(list(effects)) == ["breach", "escalate"]
    assert (
        on_timer(fired, "sla_breach", "first_response:1:breach", office_cal, rung.due_at)[1] == ()
    )


def test_wall_unit_ladder_uses_wall_time(office_cal: BusinessCalendar) -> None:
    spec = metric("ola", "10m", unit="wall", warnings=(), ladder=(("1h", None, "supervisor"),))
    clock = started(office_cal, spec, at=local(2026, 1, 10, 23, 55))  # Saturday night
    plan = [(t.kind, t.due_at) for t in due_timers(clock, spec, office_cal)]
    assert plan == [
        ("sla_breach", local(2026, 1, 11, 0, 5)),
        ("sla_escalation", local(2026, 1, 11, 1, 5)),
    ]


# ---- 22/23: deactivated policy, merged case -------------------------------------------


@pytest.mark.parametrize("reason", ["policy_deactivated", "merged"])
def test_cancelled_clock_is_silent_and_never_shows_escalated(
    office_cal: BusinessCalendar, reason: str
) -> None:
    clock, _ = deliver(started(office_cal), office_cal, local(2026, 1, 5, 14))
    gone = cancel(clock, local(2026, 1, 5, 14, 30), reason)
    assert gone.state == "cancelled"
    assert gone.cancel_reason == reason
    assert status(gone, office_cal, local(2026, 1, 6, 12)) == "ok"
    assert due_timers(gone, FR, office_cal) == ()
    for key in ("first_response:1:escalation:1", "first_response:1:escalation:2"):
        assert on_timer(gone, "sla_escalation", key, office_cal, local(2026, 1, 9, 9)) == (gone, ())
    assert cancel(gone, local(2026, 1, 7, 9), "again") == gone


# ---- 24: catch-up after downtime -------------------------------------------------------


def test_catch_up_fires_each_overdue_timer_once_with_lateness(office_cal: BusinessCalendar) -> None:
    clock = started(office_cal)
    back = local(2026, 1, 6, 9)  # the engine was down from Monday morning to Tuesday 09:00
    caught, effects = deliver(clock, office_cal, back)
    assert kinds(effects) == ["warning", "warning", "breach", "escalate", "notify", "notify"]
    late = {e.detail["key"]: e.detail["lateness_seconds"] for e in effects}
    assert late["first_response:1:breach"] == int((back - local(2026, 1, 5, 14)).total_seconds())
    assert late["first_response:1:escalation:2"] == 30 * 60
    assert caught.breached_at == local(2026, 1, 5, 14)  # the true breach instant
    # a second sweep (duplicate delivery after a crash) changes nothing
    again = caught
    for key in late:
        kind = "sla_" + key.split(":")[2]
        again, more = on_timer(again, kind, key, office_cal, back)
        assert more == ()
    assert again == caught


# ---- 8 at clock level: exact seconds, never rounded percentages ------------------------


def test_status_compares_exact_remaining_seconds(office_cal: BusinessCalendar) -> None:
    spec = metric("first_response", "4h", warnings=())
    clock = started(office_cal, spec)
    almost = office_cal.add(MON_9, 4 * H - 1)  # 99.993 %
    assert remaining(clock, office_cal, almost) == 1
    assert status(clock, office_cal, almost) == "ok"
    assert status(clock, office_cal, almost + timedelta(seconds=1)) == "breached"


def test_stop_after_due_records_breach_without_effects(office_cal: BusinessCalendar) -> None:
    late = stop(started(office_cal), office_cal, local(2026, 1, 5, 15))
    assert late.breached
    assert late.breached_at == local(2026, 1, 5, 14)
    assert late.breaches == 1
    assert status(late, office_cal, local(2026, 1, 5, 15)) == "breached"
    on_time = stop(started(office_cal), office_cal, local(2026, 1, 5, 13, 59, 59))
    assert not on_time.breached
    assert status(on_time, office_cal, local(2026, 1, 9, 9)) == "ok"


def test_business_days_target(office_cal: BusinessCalendar) -> None:
    spec = metric("periodic_update", "2d", unit="business_days", warnings=((50, None),), ladder=())
    clock = started(office_cal, spec, at=local(2026, 1, 9, 10))  # Friday
    assert clock.due_at == local(2026, 1, 13, 10)  # Tuesday, same time
    assert clock.budget == 17 * H
    plan = due_timers(clock, spec, office_cal)
    assert plan[0].due_at == office_cal.add(local(2026, 1, 9, 10), 17 * H // 2 + (17 * H) % 2)


# ---- 17: calendar edited -> open clocks recomputed, replay-identical -------------------


def _history(cal: BusinessCalendar) -> SlaClock:
    clock = started(cal, priority="p3")  # 8 h
    clock = pause(clock, cal, local(2026, 1, 5, 10))
    return resume(clock, cal, local(2026, 1, 6, 10))


def test_calendar_edit_recomputes_open_clock_like_a_replay(office_cal: BusinessCalendar) -> None:
    edited = BusinessCalendar.create(
        "office_nl",
        "Europe/Amsterdam",
        week={d: ["08:00-12:00", "13:00-17:30"] for d in ("mon", "tue", "wed", "thu", "fri")},
        closures=["2026-01-06"],  # Tuesday closed after all
    )
    clock = _history(office_cal)
    assert clock.due_at == local(2026, 1, 7, 8, 30)
    redone = recalculate(clock, edited, local(2026, 1, 6, 10))
    assert redone == _history(edited)
    assert redone.paused_total == 6 * H + 30 * 60  # Tuesday no longer counts as paused
    assert redone.due_at == local(2026, 1, 7, 16)


def test_calendar_edit_leaves_completed_clocks_unless_repair(office_cal: BusinessCalendar) -> None:
    shorter = BusinessCalendar.create(
        "office_nl", "Europe/Amsterdam", week={"mon": ["08:00-10:00"], "tue": ["08:00-17:00"]}
    )
    done = stop(started(office_cal, priority="p3"), office_cal, local(2026, 1, 5, 17))
    assert not done.breached
    assert recalculate(done, shorter, local(2026, 1, 7, 9)) == done
    repaired = recalculate(done, shorter, local(2026, 1, 7, 9), repair=True)
    assert repaired.business_elapsed == H  # Monday 09-10 only
    cancelled = cancel(done, local(2026, 1, 7, 9), "merged")
    assert recalculate(cancelled, shorter, local(2026, 1, 7, 9), repair=True) == cancelled


def test_repair_records_a_breach_the_new_calendar_reveals(office_cal: BusinessCalendar) -> None:
    longer = BusinessCalendar.always("Europe/Amsterdam", id="office_nl")
    done = stop(started(office_cal), office_cal, local(2026, 1, 5, 13))  # 3 h of 4 h
    repaired = recalculate(done, longer, local(2026, 1, 6, 9), repair=True)
    assert repaired.breached
    assert repaired.breached_at == local(2026, 1, 5, 13)  # 09:00 + 4 wall hours
    assert repaired.business_elapsed == 4 * H


def test_minutes_before_warning_stays_minutes_before_on_rearm(office_cal: BusinessCalendar) -> None:
    spec = metric("periodic_update", "1d", unit="business_days", warnings=((None, 15),), ladder=())
    clock = started(office_cal, spec, at=local(2026, 1, 5, 9))
    assert clock.warn_at == (clock.budget - 900,)
    again = rearm(clock, office_cal, local(2026, 1, 9, 16))  # Friday: budget to Monday 16:00
    assert again.budget == 8 * H + 30 * 60
    assert again.warn_at == (again.budget - 900,)


def test_paused_periodic_update_rearms_paused(office_cal: BusinessCalendar) -> None:
    pu = metric("periodic_update", "4h")
    paused = pause(started(office_cal, pu), office_cal, local(2026, 1, 5, 10))
    again = rearm(paused, office_cal, local(2026, 1, 5, 11))
    assert again.arming == 2
    assert again.state == "paused"
    assert again.business_elapsed == 0
    assert resume(again, office_cal, local(2026, 1, 5, 13)).due_at == local(2026, 1, 5, 17)


def test_stop_while_paused_keeps_the_pause_excluded_for_reopen(
    office_cal: BusinessCalendar,
) -> None:
    clock = pause(started(office_cal), office_cal, local(2026, 1, 5, 10))  # 1 h used
    done = stop(clock, office_cal, local(2026, 1, 5, 15))  # resolved while pending
    assert done.business_elapsed == H
    assert done.pauses == ((local(2026, 1, 5, 10), local(2026, 1, 5, 15)),)
    back = reopen(done, FR, office_cal, local(2026, 1, 6, 9), local(2026, 1, 5, 15), None)
    assert isinstance(back, SlaClock)
    assert elapsed(back, office_cal, local(2026, 1, 6, 9)) == H
    assert back.due_at == local(2026, 1, 6, 12)
    assert recalculate(done, office_cal, local(2026, 1, 7, 9), repair=True) == done


def test_pause_after_an_undelivered_breach_does_not_move_the_breach_instant(
    office_cal: BusinessCalendar,
) -> None:
    clock = started(office_cal)  # due Monday 14:00; the engine was down, no breach delivered
    late_pause = pause(clock, office_cal, local(2026, 1, 5, 15))
    assert status(late_pause, office_cal, local(2026, 1, 5, 16)) == "breached"
    resumed = resume(late_pause, office_cal, local(2026, 1, 6, 9))
    assert resumed.due_at == local(2026, 1, 5, 14)  # still the true first late instant
    fired, effects = deliver(resumed, office_cal, local(2026, 1, 6, 9))
    assert "breach" in kinds(effects)
    assert fired.breached_at == local(2026, 1, 5, 14)
    stopped = stop(
        resume(late_pause, office_cal, local(2026, 1, 6, 9)), office_cal, local(2026, 1, 6, 10)
    )
    assert stopped.breached_at == local(2026, 1, 5, 14)


@pytest.mark.parametrize("priority", ["low", "normal", "high", "critical"])
@pytest.mark.parametrize("start", [MON_9, local(2026, 1, 5, 16, 50), local(2026, 1, 9, 16),
                                   local(2026, 1, 10, 11)])
def test_next_timers_is_always_the_earliest_group_of_due_timers(
        office_cal: BusinessCalendar, priority: str, start: datetime) -> None:
    """The offset shortcut of next_timers agrees with planning every rung, rung after
    rung, whatever the start (in hours, before a close, before a weekend, in the weekend)."""
    clock = started(office_cal, at=start, priority=priority)
    rungs = len(due_timers(clock, FR, office_cal))  # 6; 5 when both warnings coincide
    seen = 0
    while True:
        plan = due_timers(clock, FR, office_cal)
        nxt = next_timers(clock, FR, office_cal)
        if not plan:
            assert nxt == ()
            break
        assert nxt == tuple(t for t in plan if t.due_at == plan[0].due_at)
        for timer in nxt:
            clock, _ = on_timer(clock, timer.kind, timer.key, office_cal, timer.due_at)
        seen += len(nxt)
    assert seen == rungs
