"""How each event moves a case: one function per event type, used by ``step``.

An event either applies (it changes the working copy, possibly readying tokens that the
step loop then runs) or is *stale*: a timer, action result or sub-case result the case no
longer waits for (a duplicate delivery, or it arrived after the case moved on). Stale
events return False and ``step`` leaves the state untouched. Events that do not fit the
case at all raise TransitionNotAllowed (or a subclass from engine.interpreter.rejections).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from engine.errors import ExpressionError, TransitionNotAllowed
from engine.interpreter import nodes, sla_ops
from engine.interpreter.rejections import TaskNotOpen, UnmatchedSignal
from engine.interpreter.types import (
    ActionCompleted,
    ActionFailedEvent,
    CancelTask,
    CaseStatus,
    IncidentRetried,
    ScheduleTimer,
    Signal,
    SubCaseEnded,
    TaskCompleted,
    TaskEscalated,
    TaskHandedBack,
    TimerFired,
    Token,
)
from engine.interpreter.work import Scope, Work, coerce
from engine.sop.model import FormFieldSpec, NodeSpec, NodeType, OutcomeSpec

__all__ = [
    "action_completed",
    "action_failed",
    "apply_event",
    "check_form",
    "check_knowledge",
    "incident_retried",
    "retry_delay",
    "signal",
    "subcase_ended",
    "task_completed",
    "task_escalated",
    "task_handed_back",
    "HAND_BACK_OUTCOME",
    "timer_fired",
]

_KNOWLEDGE_KINDS = frozenset({"linked", "drafted", "none"})


# ---- actions ------------------------------------------------------------------------------


def action_completed(work: Work, event: ActionCompleted) -> bool:
    token = work.find("action", event.action_id)
    if token is None:
        return False
    nodes.finish_action(work, token, work.compiled.node(token.node), event.result, token.attempt)
    return True


def retry_delay(node: NodeSpec, attempt: int) -> float:
    """Seconds before attempt ``attempt + 1``: delay * backoff^(attempt-1), capped."""
    retry = node.retry
    if retry.delay is None:
        return 0.0
    delay = retry.delay.seconds * retry.backoff ** (attempt - 1)
    if retry.max_delay is not None:
        delay = min(delay, retry.max_delay.seconds)
    return float(delay)


def action_failed(work: Work, event: ActionFailedEvent) -> bool:
    token = work.find("action", event.action_id)
    if token is None:
        return False
    node = work.compiled.node(token.node)
    attempt = token.attempt
    if event.retryable and attempt < node.retry.max_attempts:
        due = work.now + timedelta(seconds=retry_delay(node, attempt))
        timer_id = work.new_id()
        work.emit(ScheduleTimer(timer_id, "retry", due, node.id, {"attempt": attempt + 1}))
        work.own("timers")[timer_id] = token.id
        work.audit("action_retry", node.id, attempt=attempt, error=event.error,
                   next_attempt=attempt + 1, due_at=due.isoformat())
        work.park(token, "retry", timer_id, timer=timer_id)
        return True
    work.audit("action_failed", node.id, attempt=attempt, error=event.error,
               retryable=event.retryable, route=node.on_error)
    if node.on_error is not None:
        work.move(token, node.on_error)
    else:
        work.incident(token, node, event.error, action_id=event.action_id)
    return True


def incident_retried(work: Work, event: IncidentRetried) -> bool:
    token = work.find("incident", event.incident_id)
    if token is None:
        raise TransitionNotAllowed(
            f"no open incident {event.incident_id!r}", case_id=work.case_id
        )
    node = work.compiled.node(token.node)
    work.audit("incident_retried", node.id, event.actor, incident=event.incident_id)
    if node.type is NodeType.ACTION and node.action != nodes.SEND_MESSAGE:
        nodes.run_action(work, token, node, attempt=token.attempt + 1)
    else:
        work.move(token, node.id)
    return True


# ---- human tasks --------------------------------------------------------------------------


def _task(work: Work, task_id: str) -> tuple[Token, NodeSpec]:
    task = work.tasks.get(task_id)
    token = work.tokens.get(task.token) if task else None
    if task is None or token is None:
        raise TaskNotOpen(
            f"task {task_id!r} is not open (already completed, cancelled or unknown)",
            case_id=work.case_id,
        )
    return token, work.compiled.node(task.node)


def _check_type(f: FormFieldSpec, value: Any) -> bool:
    t = f.type
    if value is None:
        return not f.required
    if t == "string":
        return isinstance(value, str)
    if t == "timestamp":
        return isinstance(value, datetime) or (
            isinstance(value, str) and isinstance(coerce(t, value), datetime))
    if t == "duration":
        return isinstance(value, timedelta) or (
            isinstance(value, str) and isinstance(coerce(t, value), timedelta))
    if t == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if t == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if t == "boolean":
        return isinstance(value, bool)
    if t == "object":
        return isinstance(value, Mapping)
    if t == "array":
        return isinstance(value, (list, tuple))
    return True


def check_form(work: Work, node: NodeSpec, fields: Mapping[str, Any]) -> None:
    """Required, enum and type checks of a task's form; the error names the field."""
    declared = {f.name: f for f in node.form}
    for name in fields:
        if name not in declared:
            raise TransitionNotAllowed(
                f"task {node.id!r} has no form field {name!r} "
                f"(fields: {', '.join(declared) or 'none'})",
                case_id=work.case_id, node_id=node.id)
    for f in node.form:
        value = fields.get(f.name)
        if f.required and value is None:
            raise TransitionNotAllowed(f"form field {f.name!r} is required", case_id=work.case_id,
                                       node_id=node.id)
        if value is None:
            continue
        if not _check_type(f, value):
            raise TransitionNotAllowed(
                f"form field {f.name!r} must be of type {f.type}, got {type(value).__name__}",
                case_id=work.case_id, node_id=node.id)
        if f.enum and value not in f.enum:
            raise TransitionNotAllowed(
                f"form field {f.name!r} must be one of {list(f.enum)}, got {value!r}",
                case_id=work.case_id, node_id=node.id)


def check_knowledge(work: Work, node: NodeSpec, outcome: OutcomeSpec,
                    knowledge: Mapping[str, Any] | None) -> None:
    """A knowledge outcome {kind: linked|drafted|none, article?, reason?}: present when the
    outcome requires it; linked/drafted name an article; none gives a reason."""
    if knowledge is None:
        if outcome.knowledge == "required":
            raise TransitionNotAllowed(
                f"outcome {outcome.name!r} requires a knowledge outcome "
                "({kind: linked|drafted|none, article?, reason?})",
                case_id=work.case_id, node_id=node.id)
        return
    kind = knowledge.get("kind")
    if kind not in _KNOWLEDGE_KINDS:
        raise TransitionNotAllowed(
            f"knowledge kind must be linked, drafted or none, got {kind!r}",
            case_id=work.case_id, node_id=node.id)
    if kind in ("linked", "drafted") and not knowledge.get("article"):
        raise TransitionNotAllowed(f"knowledge kind {kind!r} needs an 'article'",
                                   case_id=work.case_id, node_id=node.id)
    if kind == "none" and not knowledge.get("reason"):
        raise TransitionNotAllowed("knowledge kind 'none' needs a 'reason'",
                                   case_id=work.case_id, node_id=node.id)


def task_completed(work: Work, event: TaskCompleted) -> bool:
    token, node = _task(work, event.task_id)
    outcome = node.outcome_spec(event.outcome)
    if outcome is None:
        allowed = ", ".join(o.name for o in node.outcomes)
        raise TransitionNotAllowed(
            f"outcome {event.outcome!r} is not allowed on task {node.id!r} (allowed: {allowed})",
            case_id=work.case_id, node_id=node.id)
    check_form(work, node, event.fields)
    check_knowledge(work, node, outcome, event.knowledge)
    work.assign(event.fields)
    if event.knowledge is not None:
        work.knowledge = dict(event.knowledge)
    del work.own("tasks")[event.task_id]
    work.release_timer(token)
    knowledge = dict(event.knowledge) if event.knowledge is not None else None
    if event.confirmed_by is None:
        work.audit("task_completed", node.id, event.actor, task=event.task_id,
                   outcome=outcome.name, sop_version=work.spec.version, knowledge=knowledge)
    else:  # four eyes: the trail names both people
        work.audit("task_completed", node.id, event.actor, task=event.task_id,
                   outcome=outcome.name, sop_version=work.spec.version, knowledge=knowledge,
                   confirmed_by=event.confirmed_by)
    work.move(token, outcome.next)
    return True


def task_escalated(work: Work, event: TaskEscalated) -> bool:
    """Manual escalation: cancel the task, move one level deeper (or to ``to_level``), and
    route like the task's timeout, else like its ``escalate`` outcome."""
    token, node = _task(work, event.task_id)
    escalate = node.outcome_spec("escalate")
    target = node.timeout.next if node.timeout else (escalate.next if escalate else None)
    if target is None:
        raise TransitionNotAllowed(
            f"task {node.id!r} cannot be escalated by hand: it has no timeout and no "
            "'escalate' outcome", case_id=work.case_id, node_id=node.id)
    to = event.to_level or work.ctx.deeper(work.level)
    if to is None or not work.ctx.knows_level(to):
        raise TransitionNotAllowed(f"cannot escalate from {work.level!r} to {to!r}",
                                   case_id=work.case_id, node_id=node.id)
    del work.own("tasks")[event.task_id]
    work.emit(CancelTask(event.task_id, f"escalated: {event.reason}"))
    work.release_timer(token)
    nodes.escalate_level(work, to, node.id, event.actor, event.reason)
    work.move(token, target)
    return True


#: the outcome a task declares for ``careflow task hand-back``: where a handed-back case goes
HAND_BACK_OUTCOME = "hand_back"


def task_handed_back(work: Work, event: TaskHandedBack) -> bool:
    """Manual hand-back: cancel the task, move the case to a shallower level (``to_level``,
    default one rank up), count it, record the knowledge outcome, and route like the task's
    ``hand_back`` outcome (whose ``knowledge`` requirement applies)."""
    token, node = _task(work, event.task_id)
    outcome = node.outcome_spec(HAND_BACK_OUTCOME)
    if outcome is None:
        raise TransitionNotAllowed(
            f"task {node.id!r} cannot be handed back by hand: it has no {HAND_BACK_OUTCOME!r} "
            "outcome saying where a handed-back case goes", case_id=work.case_id, node_id=node.id)
    to = work.ctx.hand_back_target(work.level, event.to_level)
    if to is None:
        wanted = event.to_level or work.ctx.shallower(work.level)
        raise TransitionNotAllowed(f"cannot hand back from {work.level!r} to {wanted!r}: a "
                                   "hand-back goes to a known, shallower level",
                                   case_id=work.case_id, node_id=node.id)
    check_knowledge(work, node, outcome, event.knowledge)
    if event.knowledge is not None:
        work.knowledge = dict(event.knowledge)
    del work.own("tasks")[event.task_id]
    work.emit(CancelTask(event.task_id, f"handed back: {event.reason}"))
    work.release_timer(token)
    before, work.level = work.level, to
    work.hand_backs += 1
    work.audit("handed_back", node.id, event.actor, source=before, target=to,
               reason=event.reason, task=event.task_id,
               knowledge=dict(event.knowledge) if event.knowledge is not None else None,
               knowledge_missing=event.knowledge is None and work.knowledge is None)
    work.move(token, outcome.next)
    return True


# ---- timers -------------------------------------------------------------------------------


def timer_fired(work: Work, event: TimerFired) -> bool:
    owner = work.timers.get(event.timer_id)
    if owner is None:
        return False
    if owner == "":
        return sla_ops.on_timer(work, event.timer_id)
    token = work.tokens.get(owner)
    if token is None or token.timer != event.timer_id:
        del work.own("timers")[event.timer_id]
        return True
    del work.own("timers")[event.timer_id]
    node = work.compiled.node(token.node)
    if token.wait == "retry":
        nodes.run_action(work, token, node, attempt=token.attempt + 1)
        return True
    if token.wait == "task" and token.ref in work.tasks:
        del work.own("tasks")[token.ref]
        work.emit(CancelTask(token.ref, "timeout"))
    if node.timeout is None:  # a timer this node cannot have: nothing to route
        work.audit("timer_ignored", node.id, timer=event.timer_id, waited_for=token.wait)
        return True
    work.audit("timeout", node.id, timer=event.timer_id, result=node.timeout.next,
               waited_for=token.wait)
    work.move(token, node.timeout.next)
    return True


# ---- signals ------------------------------------------------------------------------------


def _wait_match(work: Work, event: Signal) -> bool:
    variables: Scope | None = None
    for token in list(work.tokens.values()):
        if token.wait != "event":
            continue
        node = work.compiled.node(token.node)
        for i, entry in enumerate(node.on):
            if entry.event != event.name:
                continue
            if variables is None:
                variables = work.variables(event=dict(event.payload))
            try:
                if not work.test(entry.when, variables):
                    continue
            except ExpressionError as exc:
                work.audit("condition_error", node.id, signal=event.name, entry=i,
                           error=str(exc))
                continue
            work.release_timer(token)
            try:
                work.assign(work.compute(entry.set, event=dict(event.payload)))
            except ExpressionError as exc:  # matched, but its data cannot be taken over
                work.incident(work.park(token, "event", token.ref), node, str(exc))
                return True
            work.audit("signal", node.id, event.actor, signal=event.name, entry=i,
                       result=entry.next, event_id=event.event_id)
            work.move(token, entry.next)
            return True
    return False


def signal(work: Work, event: Signal) -> bool:
    """A wait entry of a waiting token wins (more specific); else the first matching
    ``on_event`` handler; else UnmatchedSignal."""
    if _wait_match(work, event):
        return True
    variables = work.variables(event=dict(event.payload))
    for i, handler in enumerate(work.spec.on_event):
        if handler.event != event.name or not work.test(handler.when, variables):
            continue
        work.assign(work.compute(handler.set, event=dict(event.payload)))
        if not handler.interrupt:
            work.audit("handler", None, event.actor, signal=event.name, handler=i,
                       interrupt=False)
            return True
        scope = frozenset(handler.scope)
        victims = [t for t in work.tokens.values() if not scope or t.node in scope]
        work.audit("handler", None, event.actor, signal=event.name, handler=i, interrupt=True,
                   cancelled=[t.node for t in victims], result=handler.next)
        for token in victims:
            work.drop(token, f"interrupted by {event.name}")
        for token in victims:
            work.lose(token.forks)
        if handler.next is not None:
            work.add_token(handler.next)
        elif not work.tokens:
            nodes.end_case(work, CaseStatus.CANCELLED, event.name, None)
        return True
    raise UnmatchedSignal(
        f"nothing waits for signal {event.name!r}", signal=event.name, case_id=work.case_id
    )


# ---- sub-cases ----------------------------------------------------------------------------


def subcase_ended(work: Work, event: SubCaseEnded) -> bool:
    token = work.find("call", event.call_id)
    if token is None:
        return False
    node = work.compiled.node(token.node)
    result = {**event.data, "outcome": event.outcome, "status": event.status}
    try:
        work.assign(work.compute(node.set, result=result))
    except ExpressionError as exc:
        work.release_timer(token)
        work.incident(token, node, str(exc))
        return True
    work.release_timer(token)
    work.audit("subcase_ended", node.id, call=event.call_id, outcome=event.outcome,
               status=event.status)
    nodes.go_next(work, token, node)
    return True


_BY_TYPE: dict[type, Any] = {
    ActionCompleted: action_completed,
    ActionFailedEvent: action_failed,
    IncidentRetried: incident_retried,
    TaskCompleted: task_completed,
    TaskEscalated: task_escalated,
    TaskHandedBack: task_handed_back,
    TimerFired: timer_fired,
    Signal: signal,
    SubCaseEnded: subcase_ended,
}


def apply_event(work: Work, event: Any) -> bool:
    """Apply ``event`` to ``work``; False when it is stale (nothing to do)."""
    handler = _BY_TYPE.get(type(event))
    if handler is None:
        raise TransitionNotAllowed(f"unknown event type {type(event).__name__}",
                                   case_id=work.case_id)
    return bool(handler(work, event))
