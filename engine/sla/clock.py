"""The SLA clock: one metric instance on one case, as a frozen value with pure transitions.

Every transition takes ``now`` (and the clock's calendar) and returns a new ``SlaClock``;
nothing reads the wall clock. The clock carries a snapshot of the rules it was started
with (target budget, warning thresholds, escalation ladder, pause/reopen options), so a
timer that fires later, or a replay of the event log, needs nothing but the clock.

Time axis: *elapsed* is business seconds of the clock's calendar (wall seconds when the
unit is ``wall``) since ``started_at``, minus paused time:
``elapsed(now) = between(started_at, now) - paused_total``. The due instant is where
elapsed reaches the budget: ``due_at = add(started_at, budget + paused_total)`` (pauses that
began once the clock was already late do not move it). A clock is late (breached) when
``elapsed >= budget``: ``due_at`` is the first late instant.

States: ``running``, ``paused``, ``completed``, ``cancelled``, with the orthogonal
``breached`` flag (a recorded breach is never undone). Each *arming* (a start, a
``rearm``, a ``restart`` on reopen) fires each warning, the breach and each escalation
rung at most once. Timer planning and firing are in engine.sla.timers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from functools import lru_cache
from typing import TYPE_CHECKING, Literal

from engine.errors import CalendarError
from engine.sla.calendar import BusinessCalendar
from engine.sla.policy import matched_condition, target_seconds
from engine.slots import slot_functions

if TYPE_CHECKING:

    from engine.sla.codec import from_json, to_json
    from engine.sla.timers import PlannedTimer, SlaEffect, due_timers, on_timer
    from engine.sop.model import MetricSpec, SlaPolicyDoc

__all__ = [
    "CLOCK_STATES",
    "evolve",
    "make_clock",
    "REARM_WHILE_RUNNING",
    "Rung",
    "SlaClock",
    "cancel",
    "breach_instant",
    "elapsed",
    "instant_of",
    "pause",
    "rearm",
    "remaining",
    "reopen",
    "recalculate",
    "reprioritize",
    "resume",
    "start_clock",
    "status",
    "stop",
]

ClockState = Literal["running", "paused", "completed", "cancelled"]
CLOCK_STATES = ("running", "paused", "completed", "cancelled")
#: metrics whose ``rearm`` restarts even a running clock (every agent update resets it);
#: for others (next_reply) a running clock keeps its start: later customer messages wait
REARM_WHILE_RUNNING = frozenset({"periodic_update"})
#: metrics that are measured once per case and never re-armed
NEVER_REARM = frozenset({"first_response", "resolution_first"})


@dataclass(frozen=True, slots=True)
class Rung:
    """A rung of the escalation ladder snapshot: ``after`` seconds past due (clock unit)."""

    after: int
    to_level: str | None = None
    notify: str | None = None


@dataclass(frozen=True, slots=True)
class SlaClock:
    """One SLA clock of a case (see the module docstring for the time axis)."""

    name: str
    metric: str
    policy_id: str
    policy_order: int
    condition: str  # the policy condition that matched, "(default)" for a fallback
    calendar_id: str
    unit: str  # business_hours | business_days | wall
    target_seconds: int  # as configured (business_days: days x 86,400)
    budget: int  # seconds of elapsed (clock unit) allowed in one arming
    state: ClockState
    started_at: datetime  # start of the current arming (may be in closed time)
    due_at: datetime | None  # None while paused
    original_due_at: datetime
    first_started_at: datetime
    priority: str | None = None
    tier: str | None = None
    breached: bool = False  # ever breached (never undone)
    breached_at: datetime | None = None
    breached_arming: int = 0  # the arming whose breach was recorded last (0: none)
    breaches: int = 0  # breach events fired, over all armings
    business_elapsed: int = 0  # elapsed at the last transition
    paused_total: int = 0  # elapsed-axis seconds paused in this arming
    pauses: tuple[tuple[datetime, datetime], ...] = ()  # ended pauses of this arming
    wall_elapsed: int = 0  # wall seconds since started_at, at the last transition
    pause_started_at: datetime | None = None
    completed_at: datetime | None = None
    cancel_reason: str | None = None
    warnings_fired: tuple[str, ...] = ()
    escalations_fired: tuple[str, ...] = ()
    arming: int = 1
    warn_at: tuple[int, ...] = ()  # warning thresholds on the elapsed axis
    warn_rules: tuple[str, ...] = ()  # "percent:75", "minutes_before:15"
    ladder: tuple[Rung, ...] = ()
    pause_if_breached: bool = True
    on_reopen: str = "resume"

    @property
    def open(self) -> bool:
        """Running or paused (its timers matter)."""
        return self.state in ("running", "paused")

    @property
    def breached_now(self) -> bool:
        """The current arming's breach was recorded."""
        return self.breached_arming == self.arming and self.breached


make_clock, evolve = slot_functions(SlaClock)


@lru_cache(maxsize=64)
def _wall_calendar(timezone: str) -> BusinessCalendar:
    return BusinessCalendar.always(timezone, id="wall")


def measure(clock_unit: str, cal: BusinessCalendar) -> BusinessCalendar:
    """The calendar the clock's elapsed axis runs on: ``cal``, or 24x7 for the unit ``wall``."""
    return _wall_calendar(cal.timezone) if clock_unit == "wall" else cal


def _warn_rules(metric_spec: MetricSpec) -> tuple[str, ...]:
    """The metric's warnings as ``percent:<p>`` / ``minutes_before:<m>`` (JSON-friendly)."""
    out = []
    for w in metric_spec.warnings:
        if w.percent is not None:
            out.append(f"percent:{w.percent}")
        elif w.minutes_before is not None:
            out.append(f"minutes_before:{int(w.minutes_before)}")
    return tuple(out)


@lru_cache(maxsize=1024)
def warn_thresholds(rules: tuple[str, ...], budget: int) -> tuple[int, ...]:
    """Elapsed seconds at which to warn, for a budget: percent rounded up to the second.

    A threshold at or before the start (a target shorter than the lead time) or at the
    budget (that is the breach) is dropped.
    """
    out: set[int] = set()
    for rule in rules:
        kind, _, value = rule.partition(":")
        if kind == "percent":
            at = math.ceil(Fraction(value) * budget / 100)
        else:
            at = budget - int(value) * 60
        if 0 < at < budget:
            out.add(at)
    return tuple(sorted(out))


def _budget(unit: str, seconds: int, cal: BusinessCalendar, start: datetime) -> int:
    if unit == "business_days":
        return cal.between(start, cal.add_days(start, seconds // 86_400))
    return seconds


#: the parts of a clock's rule snapshot that depend on the metric alone, by metric object
#: (the object is kept in the entry, so its id cannot be reused while the entry exists)
_SNAPSHOTS: dict[int, tuple[MetricSpec, tuple[str, ...], tuple[Rung, ...]]] = {}


def _snapshot(metric_spec: MetricSpec) -> tuple[tuple[str, ...], tuple[Rung, ...]]:
    """The metric's warning rules and escalation ladder (frozen values, shared)."""
    hit = _SNAPSHOTS.get(id(metric_spec))
    if hit is not None and hit[0] is metric_spec:
        return hit[1], hit[2]
    warn_rules = _warn_rules(metric_spec)
    ladder = tuple(
        Rung(int(s.after.seconds), s.to_level, s.notify) for s in metric_spec.escalation
    )
    if len(_SNAPSHOTS) >= 256:  # organisation documents reloaded many times: start over
        _SNAPSHOTS.clear()
    _SNAPSHOTS[id(metric_spec)] = (metric_spec, warn_rules, ladder)
    return warn_rules, ladder


def _rules(
    metric_spec: MetricSpec, cal: BusinessCalendar, start: datetime, priority: str | None,
    tier: str | None,
) -> dict[str, object]:
    seconds, unit = target_seconds(metric_spec, priority, tier)
    budget = _budget(unit, seconds, cal, start)
    warn_rules, ladder = _snapshot(metric_spec)
    return {
        "unit": unit,
        "target_seconds": seconds,
        "budget": budget,
        "warn_rules": warn_rules,
        "warn_at": warn_thresholds(warn_rules, budget),
        "ladder": ladder,
        "pause_if_breached": metric_spec.pause_if_breached,
        "on_reopen": metric_spec.on_reopen,
    }


def start_clock(
    name: str,
    metric: str,
    policy: SlaPolicyDoc,
    metric_spec: MetricSpec,
    calendar: BusinessCalendar,
    now: datetime,
    priority: str | None = None,
    tier: str | None = None,
) -> SlaClock:
    """Start a clock at ``now`` (outside business hours it counts from the next open instant).

    Raises:
        CalendarError: no target applies, or the calendar has no open time ahead.
    """
    rules = _rules(metric_spec, calendar, now, priority, tier)
    due = measure(str(rules["unit"]), calendar).add(now, int(rules["budget"]))  # type: ignore[call-overload]
    return make_clock(
        name=name,
        metric=metric,
        policy_id=policy.id,
        policy_order=policy.order,
        condition=matched_condition(policy),
        calendar_id=calendar.id,
        state="running",
        started_at=now,
        due_at=due,
        original_due_at=due,
        first_started_at=now,
        priority=priority,
        tier=tier,
        **rules,  # type: ignore[arg-type]
    )


def elapsed(clock: SlaClock, cal: BusinessCalendar, now: datetime) -> int:
    """Elapsed seconds (clock unit) of the current arming at ``now``, pauses excluded."""
    if clock.state == "running":
        axis = measure(clock.unit, cal)
        return axis.between(clock.started_at, now) - clock.paused_total
    return clock.business_elapsed


def remaining(clock: SlaClock, cal: BusinessCalendar, now: datetime) -> int:
    """Seconds (clock unit) left before the due instant; negative when overdue."""
    return clock.budget - elapsed(clock, cal, now)


def status(
    clock: SlaClock, cal: BusinessCalendar, now: datetime
) -> Literal["ok", "warning", "breached"]:
    """``breached``, ``warning`` or ``ok``, from exact remaining seconds (never percentages).

    A cancelled clock is ``ok`` (a merged case never shows as escalated); a completed clock
    is ``breached`` when it was late, else ``ok``.
    """
    if clock.state == "cancelled":
        return "ok"
    if clock.state == "completed":
        return "breached" if clock.breached_now else "ok"
    done = elapsed(clock, cal, now)
    if clock.breached_now or done >= clock.budget:
        return "breached"
    if any(done >= at for at in clock.warn_at):
        return "warning"
    return "ok"


def _wall(clock: SlaClock, now: datetime) -> int:
    return max(0, int((now - clock.started_at).total_seconds()))


def _due(clock: SlaClock, cal: BusinessCalendar) -> datetime:
    """The first late instant (see ``instant_of``)."""
    return instant_of(clock, cal, clock.budget)


def instant_of(clock: SlaClock, cal: BusinessCalendar, reached: int) -> datetime:
    """The first instant at which the arming's elapsed time reaches ``reached`` seconds,
    walking the recorded pauses (assuming no further pause).

    When every pause came before that instant this is ``add(started_at, reached +
    paused_total)``; a pause that began after it (e.g. the clock was already late and its
    breach not yet delivered) does not move it.
    """
    axis = measure(clock.unit, cal)
    t, left = clock.started_at, reached
    for begin, end in clock.pauses:
        run = axis.between(t, begin)
        if run >= left:
            break
        left -= run
        t = max(t, end)
    return axis.add(t, left)


def breach_instant(clock: SlaClock, cal: BusinessCalendar) -> datetime:
    """The first instant at which the current arming was (or will be) late."""
    return _due(clock, cal)


def pause(clock: SlaClock, cal: BusinessCalendar, now: datetime) -> SlaClock:
    """Pause a running clock (e.g. pending customer). Idempotent for a non-running clock.

    A breached clock pauses only when its policy says ``pause_if_breached`` (the default);
    otherwise it keeps running and its escalation ladder keeps climbing.
    """
    if clock.state != "running" or (clock.breached_now and not clock.pause_if_breached):
        return clock
    return evolve(
        clock,
        state="paused",
        business_elapsed=elapsed(clock, cal, now),
        wall_elapsed=_wall(clock, now),
        pause_started_at=now,
        due_at=None,
    )


def resume(clock: SlaClock, cal: BusinessCalendar, now: datetime) -> SlaClock:
    """Resume a paused clock: the paused business time is excluded exactly; due_at moves."""
    if clock.state != "paused" or clock.pause_started_at is None:
        return clock
    paused = measure(clock.unit, cal).between(clock.pause_started_at, now)
    resumed = evolve(
        clock,
        state="running",
        paused_total=clock.paused_total + paused,
        pauses=(*clock.pauses, (clock.pause_started_at, now)),
        pause_started_at=None,
        wall_elapsed=_wall(clock, now),
    )
    return evolve(resumed, due_at=_due(resumed, cal))


def stop(clock: SlaClock, cal: BusinessCalendar, now: datetime) -> SlaClock:
    """Complete the clock (the metric was met, or met late). A breach stays recorded.

    Stopping at or after the due instant records the breach (``breached_at`` = the first
    late instant) even if the breach timer has not been delivered yet; it then never fires.
    Stopping a paused clock ends its pause first, so the pause stays excluded.
    """
    if not clock.open:
        return clock
    if clock.state == "paused":  # close the pause first: it stays excluded (and replayable)
        clock = resume(clock, cal, now)
    done = elapsed(clock, cal, now)
    stopped = evolve(
        clock,
        state="completed",
        business_elapsed=done,
        wall_elapsed=_wall(clock, now),
        completed_at=now,
        pause_started_at=None,
    )
    if done >= clock.budget and not clock.breached_now:
        stopped = evolve(
            stopped,
            breached=True,
            breached_at=_due(clock, cal),
            breached_arming=clock.arming,
            breaches=clock.breaches + 1,
        )
    return stopped


def cancel(clock: SlaClock, now: datetime, reason: str) -> SlaClock:
    """Cancel the clock (case merged, policy deactivated...): no further timers or effects."""
    if clock.state == "cancelled":
        return clock
    return evolve(
        clock, state="cancelled", completed_at=now, cancel_reason=reason, pause_started_at=None
    )


def _new_arming(clock: SlaClock, cal: BusinessCalendar, now: datetime) -> SlaClock:
    budget = _budget(clock.unit, clock.target_seconds, cal, now)
    armed = evolve(
        clock,
        state="running",
        arming=clock.arming + 1,
        started_at=now,
        budget=budget,
        business_elapsed=0,
        paused_total=0,
        pauses=(),
        wall_elapsed=0,
        pause_started_at=None,
        completed_at=None,
        cancel_reason=None,
        warnings_fired=(),
        escalations_fired=(),
        warn_at=warn_thresholds(clock.warn_rules, budget),
    )
    due = _due(armed, cal)
    return evolve(armed, due_at=due, original_due_at=due)


def rearm(clock: SlaClock, cal: BusinessCalendar, now: datetime) -> SlaClock:
    """Start a new arming at ``now`` (next_reply: a customer message after a reply;
    periodic_update: every agent update). Warnings, breach and ladder fire again.

    A running ``next_reply`` clock keeps its start (the oldest unanswered message counts);
    ``first_response`` and ``resolution_first`` are never re-armed (returned unchanged).
    A cancelled clock stays cancelled; a paused clock re-arms paused.
    """
    if clock.metric in NEVER_REARM or clock.state == "cancelled":
        return clock
    if clock.open and clock.metric not in REARM_WHILE_RUNNING:
        return clock
    armed = _new_arming(clock, cal, now)
    return pause(armed, cal, now) if clock.state == "paused" else armed


def reprioritize(
    clock: SlaClock,
    policy: SlaPolicyDoc,
    metric_spec: MetricSpec,
    cal: BusinessCalendar,
    now: datetime,
    priority: str | None,
    tier: str | None,
) -> SlaClock:
    """Apply a new priority / tier / policy to an open clock, retroactively.

    The target is recomputed from the arming's original start, keeping the paused time
    (GLPI #15605). A recorded breach is never undone. If the new, stricter target is
    already exceeded, ``due_timers`` plans the breach in the past, so it fires at once,
    exactly once. Completed and cancelled clocks are untouched.
    """
    if not clock.open:
        return clock
    rules = _rules(metric_spec, cal, clock.started_at, priority, tier)
    changed = evolve(
        clock,
        policy_id=policy.id,
        policy_order=policy.order,
        condition=matched_condition(policy),
        calendar_id=cal.id,
        priority=priority,
        tier=tier,
        **rules,  # type: ignore[arg-type]
    )
    if changed.state == "paused":
        return changed
    return evolve(changed, due_at=_due(changed, cal))


def recalculate(
    clock: SlaClock, cal: BusinessCalendar, now: datetime, *, repair: bool = False
) -> SlaClock:
    """Recompute a clock against an edited calendar (same id, new hours or holidays).

    Elapsed and paused time are measured again from the recorded start and pause intervals,
    so the result equals a replay of the clock's history on the new calendar (including
    ``original_due_at``, the due instant without pauses). Open clocks
    get a new due instant; completed clocks are untouched unless ``repair`` is asked for,
    which recomputes their elapsed time and records a breach the new calendar reveals. A
    recorded breach is never undone; cancelled clocks are untouched. Policy changes go
    through ``reprioritize``.
    """
    if clock.state == "cancelled" or (clock.state == "completed" and not repair):
        return clock
    axis = measure(clock.unit, cal)
    paused_total = sum(axis.between(a, b) for a, b in clock.pauses)
    budget = _budget(clock.unit, clock.target_seconds, cal, clock.started_at)
    fresh = evolve(
        clock,
        calendar_id=cal.id,
        paused_total=paused_total,
        budget=budget,
        original_due_at=axis.add(clock.started_at, budget),
        warn_at=warn_thresholds(clock.warn_rules, budget),
    )
    if fresh.state == "running":
        return evolve(fresh, due_at=_due(fresh, cal))
    until = fresh.pause_started_at if fresh.state == "paused" else fresh.completed_at
    done = axis.between(fresh.started_at, until or now) - paused_total
    fresh = evolve(fresh, business_elapsed=done)
    if fresh.state == "completed" and done >= budget and not fresh.breached_now:
        fresh = evolve(
            fresh,
            breached=True,
            breached_at=_due(fresh, cal),
            breached_arming=fresh.arming,
            breaches=fresh.breaches + 1,
        )
    return fresh


def reopen(
    clock: SlaClock,
    metric_spec: MetricSpec,
    cal: BusinessCalendar,
    now: datetime,
    closed_at: datetime,
    reopen_window: int | None,
) -> SlaClock | Literal["new_case"]:
    """A resolved case is reopened at ``now``; what happens to this completed clock.

    After ``reopen_window`` wall seconds since ``closed_at`` -> ``"new_case"`` (open a new
    case linked to the old one). Otherwise per ``metric_spec.on_reopen``:

    - ``resume``: the same clock continues; the time it was closed counts as paused time
      (the due instant moves by it), so a reopened case does not escalate at once;
    - ``restart``: a new arming with a full new target from ``now``;
    - ``new_case``: always a new case;
    - ``ignore``: the clock stays completed.

    A clock that is not completed is returned unchanged.
    """
    if reopen_window is not None and (now - closed_at).total_seconds() > reopen_window:
        return "new_case"
    mode = metric_spec.on_reopen
    if mode == "new_case":
        return "new_case"
    if clock.state != "completed" or mode == "ignore":
        return clock
    if mode == "restart":
        return _new_arming(clock, cal, now)
    if mode != "resume":
        raise CalendarError(
            f"metric {metric_spec.metric!r}: unknown on_reopen {mode!r}; use resume, restart, "
            "new_case or ignore"
        )
    stopped_at = clock.completed_at or closed_at
    reopened = evolve(
        clock,
        state="running",
        completed_at=None,
        paused_total=clock.paused_total + measure(clock.unit, cal).between(stopped_at, now),
        pauses=(*clock.pauses, (stopped_at, now)),
    )
    return evolve(reopened, due_at=_due(reopened, cal), wall_elapsed=_wall(reopened, now))


# timers and the JSON codec live in their own modules (which import this one); re-exported
# here for one import path, resolved on first use so that any of them may be imported first
_REEXPORTS = {"from_json": "codec", "to_json": "codec", "PlannedTimer": "timers",
              "SlaEffect": "timers", "due_timers": "timers", "on_timer": "timers"}


def __getattr__(name: str) -> object:
    home = _REEXPORTS.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"engine.sla.{home}"), name)
    globals()[name] = value
    return value


__all__ += ["PlannedTimer", "SlaEffect", "due_timers", "from_json", "on_timer", "to_json"]
