"""SLA timers: plan a clock's warning / breach / escalation timers, and apply one that fired.

``due_timers`` lists the timers a *running* clock still needs, in due order;
``next_timers`` the first of them (those due at the earliest instant), which is what the
interpreter arms: one rung at a time, as ``ScheduleTimer(kind=..., timer_id=<key>)``.
After every clock transition (pause, resume, reprioritize, rearm, stop) and every fired
rung it cancels what is no longer planned and arms ``next_timers`` again (keys stay
stable for the same arming and rung).

``on_timer`` applies a fired timer exactly once per arming:

- a second delivery of the same key is a no-op;
- a key of an older arming, or of a completed / cancelled clock, is ignored;
- while the clock is paused nothing fires (the timer is planned again on resume);
- a timer delivered before its *current* due instant (the due instant moved, e.g. after a
  pause) is ignored; the re-planned timer will come;
- a timer delivered late (catch-up after downtime) fires once, and its effect records
  ``lateness_seconds`` (``now - planned due``). Misfire policy: SLA warning, breach and
  escalation timers always fire once on catch-up, never skipped, never repeated.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Literal

from engine.sla.clock import (
    SlaClock,
    breach_instant,
    elapsed,
    evolve,
    instant_of,
    measure,
)
from engine.sla.zone import epoch_seconds
from engine.slots import slot_functions

if TYPE_CHECKING:
    from engine.sla.calendar import BusinessCalendar
    from engine.sop.model import MetricSpec

__all__ = ["PlannedTimer", "SlaEffect", "due_timers", "next_timers", "on_timer", "timer_key"]

TimerKind = Literal["sla_warning", "sla_breach", "sla_escalation"]
EffectKind = Literal["warning", "breach", "escalate", "notify"]


@dataclass(frozen=True, slots=True)
class PlannedTimer:
    """A timer a running clock needs: ``key`` is unique per clock + arming + rung."""

    kind: TimerKind
    due_at: datetime
    key: str
    detail: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class SlaEffect:
    """What the interpreter must do because a timer fired.

    ``warning``: record / notify the assignee; ``breach``: record the breach (audit,
    reporting); ``escalate``: move the case to ``detail["to_level"]``; ``notify``: notify
    ``detail["notify"]`` (e.g. ``supervisor``).
    """

    kind: EffectKind
    detail: Mapping[str, Any]


_planned, _ = slot_functions(PlannedTimer)


def timer_key(clock: SlaClock, rung: str) -> str:
    """``<clock name>:<arming>:<rung>``; rung: ``warning:<i>``, ``breach``, ``escalation:<j>``."""
    return f"{clock.name}:{clock.arming}:{rung}"


def _base(clock: SlaClock) -> dict[str, Any]:
    return {
        "clock": clock.name,
        "metric": clock.metric,
        "policy_id": clock.policy_id,
        "arming": clock.arming,
    }


def _timer(clock: SlaClock, cal: BusinessCalendar, rung: str) -> PlannedTimer | None:
    """The timer ``rung`` (``warning:<i>``, ``breach``, ``escalation:<j>``) of the current
    arming of a running clock, as planned now; None when there is no such rung."""
    if clock.state != "running" or clock.due_at is None:
        return None
    kind, _, index_text = rung.partition(":")
    if kind == "breach" and not index_text:
        return _breach_timer(clock, _base(clock))
    if not index_text.isdigit():
        return None
    index = int(index_text)
    if kind == "warning" and index < len(clock.warn_at):
        return _warning_timer(clock, cal, index, _base(clock))
    if kind == "escalation" and index < len(clock.ladder):
        return _escalation_timer(clock, cal, index, _base(clock))
    return None


def _breach_timer(clock: SlaClock, base: dict[str, Any]) -> PlannedTimer:
    assert clock.due_at is not None
    return _planned("sla_breach", clock.due_at, f"{clock.name}:{clock.arming}:breach", base)


def _warning_timer(clock: SlaClock, cal: BusinessCalendar, index: int,
                   base: dict[str, Any]) -> PlannedTimer:
    at = clock.warn_at[index]
    due = instant_of(clock, cal, at)
    detail = {**base, "threshold_seconds": at, "remaining_seconds": clock.budget - at}
    return _planned("sla_warning", due, f"{clock.name}:{clock.arming}:warning:{index}", detail)


def _escalation_timer(clock: SlaClock, cal: BusinessCalendar, index: int,
                      base: dict[str, Any]) -> PlannedTimer:
    assert clock.due_at is not None
    step = clock.ladder[index]
    due = clock.due_at if step.after == 0 else measure(clock.unit, cal).add(clock.due_at,
                                                                           step.after)
    detail = {
        **base,
        "rung": index,
        "after_seconds": step.after,
        "to_level": step.to_level,
        "notify": step.notify,
    }
    key = f"{clock.name}:{clock.arming}:escalation:{index}"
    return _planned("sla_escalation", due, key, detail)


def _pending_rungs(clock: SlaClock) -> list[tuple[int, str, int]]:
    """The rungs of the current arming of a running clock not fired yet, as (offset on the
    clock's elapsed axis, kind, index): a warning at its threshold, the breach at the
    budget, escalation ``j`` at the budget plus its ``after``. Instants grow with offsets."""
    if clock.state != "running" or clock.due_at is None:
        return []
    fired = (*clock.warnings_fired, *clock.escalations_fired)  # keys never collide
    prefix = f"{clock.name}:{clock.arming}:"
    rungs = [(at, "warning", i) for i, at in enumerate(clock.warn_at)
             if f"{prefix}warning:{i}" not in fired]
    if not clock.breached_now:
        rungs.append((clock.budget, "breach", 0))
    rungs.extend((clock.budget + step.after, "escalation", j)
                 for j, step in enumerate(clock.ladder)
                 if f"{prefix}escalation:{j}" not in fired)
    return rungs


def _planned_rungs(clock: SlaClock, cal: BusinessCalendar,
                   rungs: list[tuple[int, str, int]]) -> tuple[PlannedTimer, ...]:
    """The timers of ``rungs`` (from ``_pending_rungs``), in due order."""
    base = _base(clock)
    out = [_warning_timer(clock, cal, i, base) if kind == "warning"
           else _breach_timer(clock, base) if kind == "breach"
           else _escalation_timer(clock, cal, i, base)
           for _, kind, i in rungs]
    out.sort(key=_DUE_ORDER)
    return tuple(out)


_DUE_ORDER = attrgetter("due_at", "key")


def _fired(clock: SlaClock, timer: PlannedTimer) -> bool:
    if timer.kind == "sla_breach":
        return clock.breached_now
    if timer.kind == "sla_warning":
        return timer.key in clock.warnings_fired
    return timer.key in clock.escalations_fired


def due_timers(
    clock: SlaClock, metric_spec: MetricSpec | None, cal: BusinessCalendar
) -> tuple[PlannedTimer, ...]:
    """The timers a clock needs now, not yet fired, in due order (none unless running).

    Warnings come from the clock's snapshot of the metric's thresholds (percent of the
    target, or minutes before due, in the clock's unit); the breach is at ``due_at``;
    escalation rungs are at their offsets after due, in business time of the clock's
    calendar (wall time for the unit ``wall``). ``metric_spec`` is accepted for symmetry
    with ``start_clock``; the clock's own snapshot is authoritative.
    """
    del metric_spec
    return _planned_rungs(clock, cal, _pending_rungs(clock))


def next_timers(
    clock: SlaClock, metric_spec: MetricSpec | None, cal: BusinessCalendar
) -> tuple[PlannedTimer, ...]:
    """The timers a clock arms now: those of ``due_timers`` due at its earliest instant.

    A clock arms one rung at a time: when that rung fires, ``on_timer`` records it and the
    next rung is planned from the clock's new value. A running clock therefore has one
    pending timer row (two or more only when rungs share an instant, e.g. the breach and
    an escalation at ``after: 0h``), not one per warning, breach and escalation. What fires
    when, and each rung's exactly-once rule, are unchanged; after downtime the overdue
    rungs fire one sweep after another, each late with its lateness recorded.

    Only the first rungs' instants are computed: instants grow with the rungs' offsets
    (``_pending_rungs``), so the earliest are those with the smallest offset.
    """
    del metric_spec
    rungs = _pending_rungs(clock)
    if not rungs:
        return ()
    first = min(r[0] for r in rungs)
    return _planned_rungs(clock, cal, [r for r in rungs if r[0] == first])


def on_timer(
    clock: SlaClock, kind: str, key: str, cal: BusinessCalendar, now: datetime
) -> tuple[SlaClock, tuple[SlaEffect, ...]]:
    """Apply the timer ``key`` that fired at ``now``; see the module docstring for the rules."""
    prefix = timer_key(clock, "")
    timer = _timer(clock, cal, key[len(prefix):]) if key.startswith(prefix) else None
    if timer is None or timer.kind != kind or _fired(clock, timer) or now < timer.due_at:
        return clock, ()
    lateness = epoch_seconds(now) - epoch_seconds(timer.due_at)
    stamp = {
        "key": key,
        "due_at": timer.due_at.isoformat(),
        "fired_at": now.isoformat(),
        "lateness_seconds": lateness,
    }
    if timer.kind == "sla_warning":
        fired = evolve(clock, warnings_fired=(*clock.warnings_fired, key))
        return fired, (SlaEffect("warning", {**timer.detail, **stamp}),)
    effects: list[SlaEffect] = []
    if not clock.breached_now:
        clock = _breach(clock, cal, now)
        breach_stamp = {
            **stamp,
            "key": timer_key(clock, "breach"),
            "due_at": clock.due_at.isoformat() if clock.due_at else None,
            "lateness_seconds": epoch_seconds(now) - epoch_seconds(clock.due_at or now),
        }
        effects.append(SlaEffect("breach", {**_base(clock), **breach_stamp}))
    if timer.kind == "sla_escalation":
        clock = evolve(clock, escalations_fired=(*clock.escalations_fired, key))
        if timer.detail.get("to_level"):
            effects.append(SlaEffect("escalate", {**timer.detail, **stamp}))
        if timer.detail.get("notify"):
            effects.append(SlaEffect("notify", {**timer.detail, **stamp}))
    return clock, tuple(effects)


def _breach(clock: SlaClock, cal: BusinessCalendar, now: datetime) -> SlaClock:
    return evolve(
        clock,
        breached=True,
        breached_at=breach_instant(clock, cal),
        breached_arming=clock.arming,
        breaches=clock.breaches + 1,
        business_elapsed=elapsed(clock, cal, now),
    )
