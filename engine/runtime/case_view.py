"""Everything ``careflow case show`` tells about a case, as plain JSON-able data.

State, level, positions (tokens), open tasks, SLA clocks (state, due, elapsed business and
wall, breached -- computed at the runtime clock's now with the clock's own calendar), the
timeline from the audit log and the inputs that were rejected.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from engine.runtime.registry import Runtime
from engine.store.cases import load_case
from engine.store.queries import case_events, case_timeline, case_timers
from engine.store.tasks import list_tasks

__all__ = ["case_view", "clock_view"]


def clock_view(rt: Runtime, name: str, data: Any) -> dict[str, Any]:
    """One SLA clock as shown to a user; raw data when it cannot be interpreted."""
    raw = data.get("state", data) if isinstance(data, dict) else {}
    try:
        from engine.sla import clock as sla_clock
        from engine.sla.codec import from_json

        clock = from_json(dict(raw))
        cal = rt.sops.context.calendar(clock.calendar_id)
        now = rt.clock.now()
        out: dict[str, Any] = {"name": name, "metric": clock.metric, "state": clock.state,
                               "policy": clock.policy_id, "due_at": clock.due_at,
                               "breached": clock.breached, "calendar": clock.calendar_id}
        if cal is not None:
            out["elapsed_business_s"] = sla_clock.elapsed(clock, cal, now)
            out["status"] = sla_clock.status(clock, cal, now)
        end = clock.completed_at if clock.state in ("completed", "cancelled") else now
        out["elapsed_wall_s"] = int(((end or now) - clock.first_started_at).total_seconds())
        return out
    except Exception as exc:  # noqa: BLE001 -- show what is stored rather than nothing
        return {"name": name, "raw": raw, "note": f"not interpreted: {exc}"}


def case_view(rt: Runtime, session: Session, case_id: str) -> dict[str, Any]:
    """The whole picture of ``case_id``."""
    case = load_case(session, case_id)
    state = case.state or {}
    tokens = state.get("tokens", []) if isinstance(state, dict) else []
    clocks = state.get("clocks", {}) if isinstance(state, dict) else {}
    return {
        "id": case.id, "sop": case.sop_id, "version": case.sop_version, "hash": case.sop_hash,
        "status": case.status, "outcome": case.outcome, "level": case.level,
        "priority": case.priority, "tier": case.tier, "channel": case.channel,
        "customer": case.customer_id, "seq": case.seq, "created_at": case.created_at,
        "updated_at": case.updated_at, "ended_at": case.ended_at,
        "parent": case.parent_case_id, "runnable": case.runnable,
        "data": state.get("data", {}) if isinstance(state, dict) else {},
        "positions": [{"node": tk.get("node"), "state": tk.get("state"),
                       "waits_for": tk.get("wait") or None, "ref": tk.get("ref")}
                      for tk in tokens if isinstance(tk, dict)],
        "tasks": [{"id": tk.id, "node": tk.node, "level": tk.level, "title": tk.title,
                   "status": tk.status, "assignee": tk.assignee, "outcomes": tk.outcomes,
                   "due_at": tk.due_at} for tk in list_tasks(session, case_id=case_id)],
        "clocks": [clock_view(rt, name, data) for name, data in
                   (clocks.items() if isinstance(clocks, dict) else [])],
        "timers": [{"id": tm.id, "kind": tm.kind, "due_at": tm.due_at, "status": tm.status,
                    "lateness_s": tm.lateness_s} for tm in case_timers(session, case_id)
                   if tm.status == "pending"],
        "timeline": [{"seq": a.seq, "at": a.at, "actor": a.actor, "kind": a.kind,
                      "node": a.node, "detail": a.detail} for a in case_timeline(session, case_id)],
        "rejected": [{"kind": e.kind, "error": e.error, "at": e.recorded_at}
                     for e in case_events(session, case_id) if e.status == "rejected"],
    }
