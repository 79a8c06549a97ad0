"""The interpreter's one door to engine.sla: SLA clock nodes, SLA timers, SLA effects.

A clock lives in ``CaseState.clocks[name]`` as engine.sla's JSON form (a ClockDoc, which
keeps the clock value: steps never encode or decode clocks) plus the timers currently armed
for it (timer id -> (kind, planned key, due ISO instant)). After every
clock operation and every fired rung the armed timers are *reconciled* with
``next_timers`` of the new clock value (its next rung: one timer, or the few due at the
same instant), by key and due instant: planned timers not yet armed (or now due at another
instant) are scheduled (ScheduleTimer), armed timers no longer planned as they are are
cancelled (CancelTimer). So pause/stop cancel everything, resume and a priority change
re-plan, and each rung is armed when the one before it has fired.

Policy choice: ``policy:`` on the node forces one; else ``select_policy`` over the
policies in the context with facts {priority, tier, channel, category, sop}. No policy
for the metric means no clock (audited ``sla_not_applicable``), the path goes on.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from engine.errors import RunError
from engine.interpreter.types import (
    ClockDoc,
    ClockRef,
    SendMessage,
    new_cancel_timer,
    new_clock_ref,
    new_schedule_timer,
)
from engine.sop.model import NodeSpec, SlaPolicyDoc, frozen_map

if TYPE_CHECKING:
    from engine.interpreter.work import Work

__all__ = [
    "check",
    "finish",
    "finish_all",
    "on_timer",
    "pause",
    "reprioritize_all",
    "resume",
    "start",
    "stop",
]



def _sla() -> Any:
    """The engine.sla package (imported on first SLA use, keeps plain steps light)."""
    import engine.sla

    return engine.sla


def _policy_of(work: Work, pid: str | None) -> SlaPolicyDoc | None:
    return next((p for p in work.ctx.policies if p.id == pid), None)


def _calendar(work: Work, calendar_id: str | None) -> Any:
    """The named calendar, else the context's default, else 24x7 (audited)."""
    cal = work.ctx.calendar(calendar_id) or work.ctx.calendar(None)
    if cal is None:
        work.audit("calendar_missing", None, calendar=calendar_id, detail="24x7 used")
        cal = _sla().BusinessCalendar.always()
    return cal


def _facts(work: Work) -> dict[str, Any]:
    return {"priority": work.priority, "tier": work.tier, "channel": work.channel,
            "category": work.spec.category, "sop": work.spec.id}


def _reconcile(work: Work, name: str, clock: Any, policy: SlaPolicyDoc | None, cal: Any) -> None:
    old = work.clocks.get(name)
    armed: dict[str, tuple[str, str, str]] = dict(old.timers) if old else {}
    metric = policy.metrics.get(clock.metric) if policy else None
    planned = _sla().next_timers(clock, metric, cal) if metric else ()
    timers, emit = work.own("timers"), work.emit
    keep: set[str] = set()
    if armed:
        wanted = {t.key: t for t in planned}
        for tid, (_, key, due) in list(armed.items()):
            timer = wanted.get(key)
            if timer is not None and timer.due_at.isoformat() == due:
                keep.add(key)
                continue
            del armed[tid]
            timers.pop(tid, None)
            emit(new_cancel_timer(tid))
    prefix = f"{work.case_id}:{work.seq}:sla:{name}:"
    for timer in planned:
        key = timer.key
        if key in keep:
            continue
        tid = prefix + key
        due_at = timer.due_at
        emit(new_schedule_timer(tid, timer.kind, due_at, None, MappingProxyType(
            {"clock": name, "key": key, **(timer.detail or {})})))
        armed[tid] = (timer.kind, key, due_at.isoformat())
        timers[tid] = ""
    work.own("clocks")[name] = new_clock_ref(name, ClockDoc(clock), MappingProxyType(armed))


def _clock_of(ref: ClockRef) -> Any:
    """The engine.sla clock value of ``ref`` (kept decoded in its ClockDoc)."""
    state = ref.state
    if type(state) is ClockDoc:
        return state.clock
    return _sla().from_json(dict(state))


def _load(work: Work, name: str) -> tuple[Any, SlaPolicyDoc | None, Any] | None:
    ref = work.clocks.get(name)
    if ref is None:
        return None
    clock = _clock_of(ref)
    return clock, _policy_of(work, clock.policy_id), _calendar(work, clock.calendar_id)


def start(work: Work, node: NodeSpec) -> None:
    """``sla_start``: choose the policy, start the clock, arm its timers."""
    name = node.clock or node.metric or node.id
    metric = node.metric or name
    if node.policy is not None:
        policy = next((p for p in work.ctx.policies if p.id == node.policy), None)
        if policy is None:
            raise RunError(f"SLA policy {node.policy!r} is not loaded", case_id=work.case_id,
                           node_id=node.id)
    elif not work.ctx.policies:
        policy = None
    else:
        policy = work.ctx.select_policy(metric, _facts(work))
    if policy is None or metric not in policy.metrics:
        work.audit("sla_not_applicable", node.id, clock=name, metric=metric)
        return
    if name in work.clocks:
        finish(work, name, cancelled=True, reason="restarted")
    cal = _calendar(work, policy.calendar)
    clock = _sla().start_clock(name, metric, policy, policy.metrics[metric], cal, work.now,
                            work.priority, work.tier)
    _reconcile(work, name, clock, policy, cal)
    work.audit("sla_started", node.id, clock=name, metric=metric, policy=policy.id)


def _op(work: Work, node: NodeSpec, op: str) -> None:
    name = node.clock or node.metric or node.id
    loaded = _load(work, name)
    if loaded is None:
        work.audit(f"sla_{op}", node.id, clock=name, applied=False)
        return
    clock, policy, cal = loaded
    clock = getattr(_sla(), op)(clock, cal, work.now)
    _reconcile(work, name, clock, policy, cal)
    work.audit(f"sla_{op}", node.id, clock=name, applied=True)


def pause(work: Work, node: NodeSpec) -> None:
    _op(work, node, "pause")


def resume(work: Work, node: NodeSpec) -> None:
    _op(work, node, "resume")


def stop(work: Work, node: NodeSpec) -> None:
    _op(work, node, "stop")


def check(work: Work, node: NodeSpec) -> str:
    """``sla_check``: ok | warning | breached (ok when the clock never started)."""
    loaded = _load(work, node.clock or node.metric or node.id)
    if loaded is None:
        return "ok"
    clock, _, cal = loaded
    return str(_sla().status(clock, cal, work.now))


def finish(work: Work, name: str, *, cancelled: bool, reason: str = "case ended") -> None:
    """Stop (or cancel) an open clock and cancel its timers; a closed clock is left as is."""
    loaded = _load(work, name)
    if loaded is None:
        return
    clock, policy, cal = loaded
    ref = work.clocks[name]
    if ref.timers:
        timers = work.own("timers")
        for tid in ref.timers:
            timers.pop(tid, None)
            work.emit(new_cancel_timer(tid))
    if not clock.open:  # already completed or cancelled: keep what it recorded
        if ref.timers:
            work.own("clocks")[name] = ClockRef(name, ref.state)
        return
    sla = _sla()
    clock = sla.cancel(clock, work.now, reason) if cancelled else sla.stop(clock, cal, work.now)
    work.own("clocks")[name] = ClockRef(name, ClockDoc(clock))
    work.audit("sla_cancelled" if cancelled else "sla_stop", None, clock=name, reason=reason)


def finish_all(work: Work, *, cancelled: bool, reason: str = "case ended") -> None:
    """At the end of the case: stop every clock (cancel them, with ``reason``, when the case
    is cancelled)."""
    for name in list(work.clocks):
        finish(work, name, cancelled=cancelled, reason=reason)


def on_timer(work: Work, timer_id: str) -> bool:
    """An SLA timer fired: let the clock react and carry out its effects."""
    name = next((n for n, ref in work.clocks.items() if timer_id in ref.timers), None)
    del work.own("timers")[timer_id]
    if name is None:
        return True
    ref = work.clocks[name]
    kind, key, _ = ref.timers[timer_id]
    armed = {t: v for t, v in ref.timers.items() if t != timer_id}
    work.own("clocks")[name] = ClockRef(name, ref.state, frozen_map(armed))
    loaded = _load(work, name)
    assert loaded is not None
    clock, policy, cal = loaded
    clock, effects = _sla().on_timer(clock, kind, key, cal, work.now)
    _reconcile(work, name, clock, policy, cal)
    for effect in effects:
        _effect(work, name, effect.kind, effect.detail or {})
    return True


def _effect(work: Work, clock: str, kind: str, detail: Mapping[str, Any]) -> None:
    plain = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in detail.items()}
    plain["clock"] = clock
    if kind == "escalate":
        to = detail.get("to_level")
        if isinstance(to, str) and work.ctx.knows_level(to) and to != work.level:
            from engine.interpreter.nodes import escalate_level

            escalate_level(work, to, None, "sla", f"SLA {clock} escalation")
        else:
            work.audit("sla_escalate", None, "sla", applied=False, **plain)
    elif kind == "notify":
        role = detail.get("notify") or detail.get("to") or detail.get("role")
        message_id = work.new_id()
        work.emit(SendMessage(
            message_id=message_id, channel=work.ctx.internal_channel, template="sla_notify",
            body=f"SLA {clock} of case {work.case_id}: {detail.get('reason', 'escalation')}",
            subject=f"SLA {clock}: case {work.case_id}", to=str(role) if role else None,
            automatic=True, idempotency_key=message_id))
        work.audit("sla_notify", None, "sla", clock=clock, to=role)
    else:
        work.audit(f"sla_{kind}", None, "sla", **plain)


def reprioritize_all(work: Work) -> None:
    """The case's priority or tier changed: re-select each open clock's policy (keeping the
    current one when none applies) and recompute its target retroactively."""
    sla = _sla()
    for name in list(work.clocks):
        loaded = _load(work, name)
        if loaded is None or not loaded[0].open:
            continue
        clock, current, _ = loaded
        if (clock.priority, clock.tier) == (work.priority, work.tier):
            continue  # started in this very step, or already up to date
        policy = current
        if work.ctx.policies:
            policy = work.ctx.select_policy(clock.metric, _facts(work)) or current
        if policy is None or clock.metric not in policy.metrics:
            continue
        cal = _calendar(work, policy.calendar)
        clock = sla.reprioritize(clock, policy, policy.metrics[clock.metric], cal, work.now,
                                 work.priority, work.tier)
        _reconcile(work, name, clock, policy, cal)
        work.audit("sla_reprioritized", None, clock=name, policy=policy.id,
                   priority=work.priority, tier=work.tier)
