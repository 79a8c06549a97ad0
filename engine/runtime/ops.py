"""What the CLI (and the API) do to cases and tasks, checked against the SOP, Prefect-free.

Each operation validates its input against the case's own SOP version, then queues a
pending input in one transaction (engine.store); running the engine is the caller's
choice (``run_until_idle``). Invalid input raises ``RunError`` with a message that says
what is wrong and what is allowed.

Task operations also check the acting agent against the library's agents document
(engine.runtime.permissions: known agent, the task's level, the node's ``role``, the
chosen outcome's ``roles``), before anything is written; without an agents document
nothing about agents is checked.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from engine.errors import RunError
from engine.interpreter import codec
from engine.interpreter import types as t
from engine.runtime import permissions
from engine.runtime.registry import Runtime
from engine.store import cases as case_store
from engine.store import incidents as incident_store
from engine.store import tasks as task_store
from engine.store.models import HumanTaskRow

__all__ = ["claim_task", "complete_task", "coerce_fields", "confirm_task", "escalate_task",
           "hand_back_task", "reject_task", "retry_incident", "send_event", "start_case",
           "validate_completion"]


def start_case(rt: Runtime, sop_id: str, data: Mapping[str, Any], *, case_id: str | None = None,
               priority: str | None = None, tier: str | None = None, channel: str | None = None,
               customer_id: str | None = None, actor: str = "cli") -> str:
    """Queue a new case of the latest version of ``sop_id``; returns the case id."""
    compiled = rt.sops.by_id(sop_id)
    unknown = sorted(set(data) - set(compiled.spec.data))
    if unknown:
        raise RunError(f"SOP {sop_id} declares no data field(s) {', '.join(unknown)}; "
                       f"declared: {', '.join(sorted(compiled.spec.data))}")
    rt.sops.register_all(rt.engine, rt.clock)
    started = t.CaseStarted(data=dict(data), priority=priority, tier=tier, channel=channel,
                            customer_id=customer_id, actor=actor)
    new = case_store.NewCase(
        sop_id=compiled.id, sop_hash=compiled.hash, sop_version=str(compiled.version),
        event_json=codec.event_to_json(started), case_id=case_id, priority=priority, tier=tier,
        channel=channel, customer_id=customer_id, actor=actor)
    with Session(rt.engine) as session, session.begin():
        return case_store.start_case(session, new, now=rt.clock.now())


def send_event(rt: Runtime, case_id: str, name: str, payload: Mapping[str, Any], *,
               actor: str = "customer", event_id: str | None = None) -> int:
    """Queue a named event (a Signal: customer reply, withdrawn, ...) for ``case_id``."""
    signal = t.Signal(name=name, payload=dict(payload), event_id=event_id, actor=actor)
    with Session(rt.engine) as session, session.begin():
        return case_store.post_event(session, case_id, "Signal", codec.event_to_json(signal),
                                     now=rt.clock.now(), actor=actor)


def _node_of(rt: Runtime, session: Session, task: HumanTaskRow) -> Any:
    case = case_store.load_case(session, task.case_id)
    compiled = rt.sops.by_hash(case.sop_hash, session)
    return compiled.node(task.node)


def _agents(rt: Runtime) -> Any:
    """The library's agents document, or None (then nobody is checked)."""
    return getattr(rt.sops, "agents", None)


def _on_task(rt: Runtime, task: HumanTaskRow, node: Any, agent: str, doing: str) -> Any:
    """The agent, after rules 1-3 of engine.runtime.permissions (None: not checked)."""
    return permissions.check_on_task(_agents(rt), agent, task_id=task.id, level=task.level,
                                     node=node, doing=doing)


_TYPES = {"integer": int, "number": float}


def _coerce(name: str, ftype: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        if ftype in _TYPES:
            return _TYPES[ftype](value)
        if ftype == "boolean":
            if value.lower() in ("true", "yes", "1"):
                return True
            if value.lower() in ("false", "no", "0"):
                return False
            raise ValueError("expected true or false")
        if ftype in ("object", "array"):
            return json.loads(value)
    except (ValueError, json.JSONDecodeError) as exc:
        raise RunError(f"field {name!r}: {value!r} is not a valid {ftype} ({exc})") from None
    return value


def coerce_fields(node: Any, fields: Mapping[str, Any]) -> dict[str, Any]:
    """``fields`` checked against the task's form: known names, types, enums, required."""
    form = {f.name: f for f in node.form}
    out: dict[str, Any] = {}
    for name, value in fields.items():
        spec = form.get(name)
        if spec is None:
            close = difflib.get_close_matches(name, list(form), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise RunError(f"task form of node {node.id!r} has no field {name!r}{hint}; "
                           f"fields: {', '.join(form) or 'none'}", node_id=node.id)
        coerced = _coerce(name, spec.type, value)
        if spec.enum and coerced not in spec.enum:
            raise RunError(f"field {name!r}: {coerced!r} is not one of "
                           f"{', '.join(map(str, spec.enum))}", node_id=node.id)
        out[name] = coerced
    missing = [f.name for f in node.form if f.required and f.name not in out]
    if missing:
        raise RunError(f"task of node {node.id!r} needs field(s) {', '.join(missing)} "
                       f"(--field name=value)", node_id=node.id)
    return out


def validate_completion(node: Any, outcome: str, fields: Mapping[str, Any],
                        knowledge: Mapping[str, Any] | None) -> dict[str, Any]:
    """Check an outcome, form fields and knowledge outcome; returns the coerced fields."""
    outcomes = {o.name: o for o in node.outcomes}
    spec = outcomes.get(outcome)
    if spec is None:
        close = difflib.get_close_matches(outcome, list(outcomes), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise RunError(f"outcome {outcome!r} is not allowed for node {node.id!r}{hint}; "
                       f"allowed: {', '.join(outcomes)}", node_id=node.id)
    coerced = coerce_fields(node, fields)
    if "required" in (spec.knowledge, getattr(node, "knowledge", "none")) and not knowledge:
        raise RunError(f"outcome {outcome!r} of node {node.id!r} requires a knowledge outcome: "
                       "--knowledge-article ID or --knowledge-none REASON", node_id=node.id)
    return coerced


def complete_task(rt: Runtime, task_id: str, outcome: str, fields: Mapping[str, Any], *,
                  agent: str, knowledge: Mapping[str, Any] | None = None) -> HumanTaskRow:
    """Validate and complete ``task_id``; exactly one of concurrent completions wins.

    On a node with ``four_eyes: true`` the completion is a proposal: the task waits in
    status ``proposed`` (the case does not move) until a second agent confirms it
    (``confirm_task``) or rejects it (``reject_task``).

    Raises:
        RunError: invalid outcome/fields/knowledge, or the agent may not complete the task
            or choose the outcome (nothing changed).
        TaskConflict: another agent completed or claimed it first.
    """
    with Session(rt.engine, expire_on_commit=False) as session, session.begin():
        task = task_store.get_task(session, task_id)
        node = _node_of(rt, session, task)
        who = _on_task(rt, task, node, agent, "complete")
        coerced = validate_completion(node, outcome, fields, knowledge)
        permissions.check_outcome(who, task_id=task_id, node=node, outcome=outcome)
        if node.four_eyes:
            return task_store.propose_task(session, task_id, outcome=outcome, fields=coerced,
                                           agent=agent, knowledge=knowledge, now=rt.clock.now())
        event = t.TaskCompleted(task_id=task_id, outcome=outcome, fields=coerced, actor=agent,
                                knowledge=dict(knowledge) if knowledge else None)
        return task_store.complete_task(session, task_id, outcome=outcome, fields=coerced,
                                        agent=agent, knowledge=knowledge,
                                        event_json=codec.event_to_json(event), now=rt.clock.now())


def _proposal(rt: Runtime, session: Session, task_id: str, agent: str, doing: str) -> Any:
    """The proposed task ``task_id`` and its node, after the four-eyes checks; None when the
    case no longer waits for the task (a timeout or the case's end came first while its
    outcome waited): the task is cancelled then, in this transaction.

    Raises:
        TaskConflict: the task holds no proposal (any more).
        RunError: ``agent`` proposed it, or may not work on it.
    """
    task = task_store.get_task(session, task_id)
    task_store.check_proposed(task, agent, "confirmed" if doing == "confirm" else "rejected")
    node = _node_of(rt, session, task)
    permissions.check_confirmer(_agents(rt), agent, task_id=task_id, level=task.level,
                                node=node, proposed_by=task.proposed_by, doing=doing)
    state = case_store.load_case(session, task.case_id).state or {}
    if task_id not in (state.get("tasks") or {}):
        task_store.cancel_task(session, task_id, "the case no longer waits for it; its "
                               f"proposed outcome {task.proposed_outcome!r} was not confirmed")
        return None
    return task, node


def _gone(task_id: str, session: Session) -> RunError:
    task = task_store.get_task(session, task_id)
    return RunError(f"task {task_id} ({task.node}) is cancelled: case {task.case_id} no longer "
                    "waits for it (a timeout or the case's end came first), so its proposed "
                    "outcome was not applied", case_id=task.case_id, node_id=task.node)


def confirm_task(rt: Runtime, task_id: str, *, agent: str) -> HumanTaskRow:
    """Four eyes: ``agent`` confirms the outcome proposed on ``task_id``; the task completes
    with the proposal and the case moves on (``TaskCompleted`` with ``actor`` = the
    proposer, ``confirmed_by`` = ``agent``). Of concurrent confirmations exactly one wins.

    Raises:
        RunError: the agent proposed it, or may not work on the task; or the case no longer
            waits for the task (it is cancelled then).
        TaskConflict: the task holds no proposal (any more): confirmed or rejected by
            someone else, also at the same time.
    """
    with Session(rt.engine, expire_on_commit=False) as session, session.begin():
        found = _proposal(rt, session, task_id, agent, "confirm")
        if found is not None:
            task = found[0]
            knowledge = task.proposed_knowledge
            event = t.TaskCompleted(task_id=task_id, outcome=str(task.proposed_outcome),
                                    fields=dict(task.proposed_fields or {}),
                                    actor=str(task.proposed_by),
                                    knowledge=dict(knowledge) if knowledge else None,
                                    confirmed_by=agent)
            return task_store.confirm_proposal(session, task_id, agent=agent,
                                               event_json=codec.event_to_json(event),
                                               now=rt.clock.now())
    with Session(rt.engine) as session:
        raise _gone(task_id, session)


def reject_task(rt: Runtime, task_id: str, *, agent: str, reason: str) -> HumanTaskRow:
    """Four eyes: ``agent`` rejects the outcome proposed on ``task_id``; the task is open
    again for anyone allowed on it, the case does not move.

    Raises:
        RunError: no reason, the agent proposed it, or may not work on the task; or the
            case no longer waits for the task (it is cancelled then).
        TaskConflict: the task holds no proposal (any more).
    """
    if not reason.strip():
        raise RunError(f"rejecting the proposal of task {task_id} needs a reason (--reason)")
    with Session(rt.engine, expire_on_commit=False) as session, session.begin():
        if _proposal(rt, session, task_id, agent, "reject") is not None:
            return task_store.reject_proposal(session, task_id, agent=agent,
                                              reason=reason.strip(), now=rt.clock.now())
    with Session(rt.engine) as session:
        raise _gone(task_id, session)


def claim_task(rt: Runtime, task_id: str, agent: str) -> HumanTaskRow:
    """Assign ``task_id`` to ``agent`` (no one else can complete it then).

    Raises:
        RunError: the agent may not work on the task (nothing changed).
        TaskConflict: someone else claimed or completed it first.
    """
    with Session(rt.engine, expire_on_commit=False) as session, session.begin():
        task = task_store.get_task(session, task_id)
        _on_task(rt, task, _node_of(rt, session, task), agent, "claim")
        return task_store.claim_task(session, task_id, agent, now=rt.clock.now())


def escalate_task(rt: Runtime, task_id: str, reason: str, *, agent: str,
                  to_level: str | None = None) -> HumanTaskRow:
    """Queue a by-hand escalation of ``task_id`` to a deeper level.

    Raises:
        RunError: the agent may not work on the task, or the node's ``escalate`` outcome
            lists roles the agent holds none of (nothing changed).
        TaskConflict: the task is no longer open.
    """
    event = t.TaskEscalated(task_id=task_id, reason=reason, actor=agent, to_level=to_level)
    with Session(rt.engine, expire_on_commit=False) as session, session.begin():
        task = task_store.get_task(session, task_id)
        node = _node_of(rt, session, task)
        who = _on_task(rt, task, node, agent, "escalate")
        permissions.check_outcome(who, task_id=task_id, node=node, outcome="escalate")
        return task_store.mark_escalated(session, task_id, agent, codec.event_to_json(event),
                                         now=rt.clock.now())


def hand_back_task(rt: Runtime, task_id: str, reason: str, *, agent: str,
                   to_level: str | None = None,
                   knowledge: Mapping[str, Any] | None = None) -> HumanTaskRow:
    """Queue a by-hand hand-back of ``task_id`` to a shallower level, after the checks the
    interpreter will make (so a refusal is immediate and says why).

    Raises:
        RunError: the agent may not work on the task or choose its ``hand_back`` outcome,
            the task's node has no ``hand_back`` outcome, the level is not shallower, or the
            outcome requires a knowledge outcome that is missing.
        TaskConflict: the task is no longer open.
    """
    from engine.interpreter.events import HAND_BACK_OUTCOME

    with Session(rt.engine, expire_on_commit=False) as session, session.begin():
        task = task_store.get_task(session, task_id)
        node = _node_of(rt, session, task)
        who = _on_task(rt, task, node, agent, "hand back")
        outcome = node.outcome_spec(HAND_BACK_OUTCOME)
        if outcome is None:
            raise RunError(f"task {task_id} ({node.id}) cannot be handed back: its SOP gives the "
                           f"node no {HAND_BACK_OUTCOME!r} outcome saying where the case goes "
                           f"(outcomes: {', '.join(o.name for o in node.outcomes)})",
                           node_id=node.id)
        ctx = rt.sops.context
        level = case_store.load_case(session, task.case_id).level
        target = ctx.hand_back_target(level, to_level)
        if target is None:
            raise RunError(f"cannot hand back from level {level!r} to "
                           f"{to_level or ctx.shallower(level)!r}: a hand-back goes to a known, "
                           "shallower level", node_id=node.id)
        permissions.check_outcome(who, task_id=task_id, node=node, outcome=outcome.name)
        if outcome.knowledge == "required" and not knowledge:
            raise RunError(f"handing back {node.id!r} requires a knowledge outcome: "
                           "--knowledge-article ID or --knowledge-none REASON", node_id=node.id)
        event = t.TaskHandedBack(task_id=task_id, reason=reason, actor=agent, to_level=target,
                                 knowledge=dict(knowledge) if knowledge else None)
        return task_store.mark_escalated(session, task_id, agent, codec.event_to_json(event),
                                         now=rt.clock.now(), kind="TaskHandedBack")


def retry_incident(rt: Runtime, incident_id: int, *, actor: str = "operator") -> Any:
    """Queue the retry of an open incident (the failed node runs again)."""
    with Session(rt.engine, expire_on_commit=False) as session, session.begin():
        from engine.store.models import IncidentRow

        row = session.get(IncidentRow, incident_id)
        if row is not None and row.ref is None:
            raise RunError(f"incident {incident_id} is an engine failure ({row.error}); it has "
                           "no step to retry: fix the cause, then send the case an event",
                           case_id=row.case_id)
        ref = row.ref if row is not None else ""
        event = t.IncidentRetried(incident_id=ref or "", actor=actor)
        return incident_store.retry_incident(session, incident_id, actor=actor,
                                             event_json=codec.event_to_json(event),
                                             now=rt.clock.now())
