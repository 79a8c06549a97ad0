"""What happens when a token enters a node, one function per node type.

Each handler either moves the token on (``work.move``), parks it at a wait state
(``work.park``), or consumes it (``end``). Handlers evaluate every expression before they
change anything, so an ExpressionError leaves the token where it is and the step loop turns
it into an incident. Semantics are documented in docs/engine.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from engine.errors import ExpressionError, RunError
from engine.interpreter import sla_ops
from engine.interpreter.types import (
    CaseEnded,
    CaseStatus,
    SendMessage,
    StartSubCase,
    Token,
    new_cancel_timer,
    new_create_task,
    new_open_task,
    new_run_action,
    new_schedule_timer,
)
from engine.interpreter.work import Work
from engine.sop.model import EMPTY, NodeSpec, NodeType, TimeoutSpec

__all__ = [
    "HANDLERS",
    "SEND_MESSAGE",
    "end_case",
    "enter",
    "escalate_level",
    "finish_action",
    "go_next",
    "run_action",
    "timeout_due",
]

#: a node's ``status`` text -> CaseStatus, without the Enum call
_STATUS = {s.value: s for s in CaseStatus}
#: the action name the interpreter turns into a SendMessage command instead of RunAction
SEND_MESSAGE = "send_message"
_MESSAGE_KEYS = ("channel", "template", "subject", "body", "to")


def go_next(work: Work, token: Token, node: NodeSpec) -> None:
    """Move ``token`` on along ``node.next``."""
    if node.next is None:
        raise RunError(f"{node.type.value} node has no next", case_id=work.case_id, node_id=node.id)
    work.move(token, node.next)


def _start(work: Work, token: Token, node: NodeSpec) -> None:
    go_next(work, token, node)


def _action(work: Work, token: Token, node: NodeSpec) -> None:
    if work.level is None and node.level is not None:
        work.level = node.level  # a new case is held by its first lane (usually the e-level)
    if node.action == SEND_MESSAGE:
        _send_message(work, token, node)
        return
    inline = work.ctx.inline_actions
    fn = inline.get(node.action) if inline else None
    if fn is None or not _run_inline(work, token, node, fn):
        run_action(work, token, node, attempt=1)


def _run_inline(work: Work, token: Token, node: NodeSpec, fn: Callable[..., Any]) -> bool:
    """Run the pure action ``fn`` of ``node`` in this step (StepContext.inline_actions) and
    finish the node with its result; False when it raised (the caller then emits the
    RunAction, so the runtime runs it again and ``retry`` / ``on_error`` apply)."""
    inputs = work.value(node.inputs, work.variables())
    key = f"{work.case_id}:{node.id}:{token.entered_seq}:1"
    try:
        result = fn(inputs, _action_context(work.case_id, node.id, key, work.now))
    except Exception:  # noqa: BLE001 -- the ordinary path reports it with its retries
        return False
    finish_action(work, token, node, result, 1)
    return True


def _action_context(case_id: str, node: str, key: str, now: datetime) -> Any:
    """The engine.actions ActionContext of an inline action (attempt 1, no ports), built
    with the registry's positional constructor."""
    return _context_maker()(case_id, node, 1, key, now, EMPTY)


@cache
def _context_maker() -> Callable[..., Any]:
    from engine.actions.registry import context_maker  # on the first inline action

    return context_maker()


def _result_map(result: Any) -> Any:
    """What CEL sees as ``result``: a mapping as is, anything else as ``{"value": x}``."""
    if type(result) is dict or isinstance(result, Mapping):
        return result
    return {"value": result}


def finish_action(work: Work, token: Token, node: NodeSpec, result: Any, attempt: int) -> None:
    """An action of ``node`` returned ``result``: its ``set``, the audit, the next node
    (a ``set`` that cannot be evaluated raises an incident at the node instead)."""
    try:
        work.assign(work.compute(node.set, result=_result_map(result)))
    except ExpressionError as exc:
        work.incident(token, node, str(exc))
        return
    work.audit("action_completed", node.id, action=node.action, attempt=attempt)
    go_next(work, token, node)


def run_action(work: Work, token: Token, node: NodeSpec, attempt: int) -> None:
    """Emit RunAction for ``node`` (attempt ``attempt``) and park the token on its result.

    The idempotency key ``case:node:visit:attempt`` (visit = seq at which the token entered
    the node) is stable across redeliveries of the same attempt and differs between loop
    visits, so a runtime dedupe never swallows a legitimate second run.
    """
    inputs = work.value(node.inputs, work.variables())
    action_id = work.new_id()
    key = f"{work.case_id}:{node.id}:{token.entered_seq}:{attempt}"
    work.emit(new_run_action(action_id, node.id, node.action or "", inputs, attempt, key))
    work.park(token, "action", action_id, attempt=attempt, timer=None)


def _send_message(work: Work, token: Token, node: NodeSpec) -> None:
    inputs = work.value(node.inputs, work.variables())
    message_id = work.new_id()
    spec = {k: inputs.get(k) for k in _MESSAGE_KEYS}
    body = spec["body"]
    result = {**spec, "message_id": message_id}
    values = work.compute(node.set, result=result)
    work.emit(
        SendMessage(
            message_id=message_id,
            channel=spec["channel"],
            template=spec["template"],
            body="" if body is None else str(body),
            subject=str(spec["subject"] or ""),
            to=spec["to"],
            automatic=bool(inputs.get("automatic", True)),
            idempotency_key=message_id,
        )
    )
    work.assign(values)
    go_next(work, token, node)


def _set(work: Work, token: Token, node: NodeSpec) -> None:
    work.assign(work.compute(node.set))
    go_next(work, token, node)


def _decision(work: Work, token: Token, node: NodeSpec) -> None:
    variables = work.variables()
    for i, branch in enumerate(node.branches):
        if work.test(branch.when, variables):
            work.audit("decision", node.id, rule=i, condition=branch.when.source if branch.when
                       else None, label=branch.label, result=branch.next)
            work.move(token, branch.next)
            return
    if node.otherwise is not None:
        work.audit("decision", node.id, rule="otherwise", condition=None, label="otherwise",
                   result=node.otherwise)
        work.move(token, node.otherwise)
        return
    work.incident(token, node, "no branch of the decision matched and there is no otherwise")


def _parallel(work: Work, token: Token, node: NodeSpec) -> None:
    variables = work.variables()
    taken = [b for b in node.branches if work.test(b.when, variables)]
    if not taken:
        if node.otherwise is not None:
            work.audit("parallel", node.id, branches=[], result=node.otherwise)
            work.move(token, node.otherwise)
        else:
            work.incident(token, node,
                          "no branch of the parallel was taken and there is no otherwise")
        return
    fork_id = work.new_id()
    work.own("forks")[fork_id] = len(taken)
    del work.tokens[token.id]
    work.audit("parallel", node.id, fork=fork_id, branches=[b.next for b in taken])
    for branch in taken:
        work.add_token(branch.next, token.forks + ((node.id, fork_id),))


def _join(work: Work, token: Token, node: NodeSpec) -> None:
    if token.forks:
        parallel_id, fork_id = token.forks[-1]
        parallel = work.spec.nodes.get(parallel_id)
        if parallel is not None and parallel.join == node.id and fork_id in work.forks:
            arrived = work.joins.get(fork_id, ()) + (token.id,)
            work.own("joins")[fork_id] = arrived
            work.park(token, "join", fork_id)
            if len(arrived) >= work.forks[fork_id]:
                work.fire_join(fork_id)
            return
    # reached without a fork of its own parallel: a simple pass-through
    go_next(work, token, node)


def timeout_due(work: Work, timeout: TimeoutSpec) -> datetime:
    """When a timeout falls due: business time when it names a known calendar, else wall."""
    if timeout.calendar is not None:
        calendar = work.ctx.calendars.get(timeout.calendar)
        if calendar is not None:
            return calendar.add(work.now, timeout.after.seconds)
        work.audit("calendar_missing", None, calendar=timeout.calendar,
                   detail="timeout computed in wall time")
    return work.now + timedelta(seconds=timeout.after.seconds)


def _arm(work: Work, token: Token, node: NodeSpec, kind: str) -> tuple[str | None, datetime | None]:
    if node.timeout is None:
        return None, None
    due = timeout_due(work, node.timeout)
    timer_id = work.new_id()
    work.emit(new_schedule_timer(timer_id, kind, due, node.id, EMPTY))
    work.own("timers")[timer_id] = token.id
    return timer_id, due


def _human_task(work: Work, token: Token, node: NodeSpec) -> None:
    level = node.level or work.level or "unassigned"
    if node.level is not None:
        work.level = node.level
    task_id = work.new_id()
    timer_id, due = _arm(work, token, node, "timeout")
    work.emit(
        new_create_task(task_id, node.id, level, node.title or node.id, node.role, node.skills,
                   tuple(o.name for o in node.outcomes), due)
    )
    work.own("tasks")[task_id] = new_open_task(task_id, node.id, token.id, level)
    work.audit("task_created", node.id, task=task_id, level=level, role=node.role)
    work.park(token, "task", task_id, timer=timer_id)


def escalate_level(work: Work, to: str, node_id: str | None, actor: str, reason: str) -> bool:
    """Move the case to level ``to``; counts an escalation when that is deeper (by rank,
    or any change when ranks are unknown). Returns whether it was counted."""
    before = work.level
    old_rank, new_rank = work.ctx.rank(before), work.ctx.rank(to)
    if old_rank is not None and new_rank is not None:
        deeper = new_rank > old_rank
    else:
        deeper = to != before
    work.level = to
    if deeper:
        work.escalations += 1
    work.audit("escalated", node_id, actor, source=before, target=to, reason=reason, counted=deeper)
    return deeper


def _escalate(work: Work, token: Token, node: NodeSpec) -> None:
    to = node.to or work.ctx.deeper(work.level)
    if to is None or not work.ctx.knows_level(to):
        work.incident(token, node, f"cannot escalate from {work.level!r} to {to!r}: unknown level")
        return
    escalate_level(work, to, node.id, "system", node.reason)
    go_next(work, token, node)


def _hand_back(work: Work, token: Token, node: NodeSpec) -> None:
    to = node.to or work.ctx.shallower(work.level) or work.level
    if to is not None and not work.ctx.knows_level(to):
        work.incident(token, node, f"cannot hand back to {to!r}: unknown level")
        return
    before, work.level = work.level, to
    work.hand_backs += 1
    missing = node.knowledge == "required" and work.knowledge is None
    work.audit("handed_back", node.id, source=before, target=to, reason=node.reason,
               knowledge=dict(work.knowledge) if work.knowledge else None,
               knowledge_missing=missing)
    go_next(work, token, node)


def _wait(work: Work, token: Token, node: NodeSpec) -> None:
    timer_id, _ = _arm(work, token, node, "wait_timeout")
    work.park(token, "event", node.id, timer=timer_id)


def _loop(work: Work, token: Token, node: NodeSpec) -> None:
    count = work.counters.get(node.id, 0) + 1
    if node.max is not None and count > node.max:
        work.own("counters").pop(node.id, None)
        if node.counter:
            work.assign({node.counter: 0})
        work.audit("loop_exit", node.id, iterations=count - 1)
        work.move(token, node.exit or node.next or "")
        return
    work.own("counters")[node.id] = count
    if node.counter:
        work.assign({node.counter: count})
    work.move(token, node.body or "")


def _call(work: Work, token: Token, node: NodeSpec) -> None:
    data = work.value(node.inputs, work.variables())
    call_id = work.new_id()
    timer_id, _ = _arm(work, token, node, "timeout")
    work.emit(StartSubCase(call_id, node.sop or "", data))
    work.audit("subcase_started", node.id, call=call_id, sop=node.sop)
    work.park(token, "call", call_id, timer=timer_id)


def _end(work: Work, token: Token, node: NodeSpec) -> None:
    del work.tokens[token.id]
    work.lose(token.forks)
    if node.terminate or not work.tokens:
        status = _STATUS.get(node.status) or CaseStatus(node.status)  # (ValueError if unknown)
        end_case(work, status, node.outcome or node.id, node.id)


def end_case(work: Work, status: CaseStatus, outcome: str, node_id: str | None) -> None:
    """End the case: cancel what is still open, stop (or cancel) its SLA clocks, CaseEnded."""
    value = status._value_
    for token in list(work.tokens.values()):
        work.drop(token, f"case {value}")
    if work.clocks:  # a cancelled case's clocks say why: its outcome (withdrawn, merged, ...)
        cancelled = status is CaseStatus.CANCELLED
        sla_ops.finish_all(work, cancelled=cancelled,
                           reason=(outcome or value) if cancelled else "case ended")
    if work.timers:  # anything left (token timers went with their tokens)
        timers = work.own("timers")
        for timer_id in list(timers):
            del timers[timer_id]
            work.emit(new_cancel_timer(timer_id))
    if work.forks:
        work.own("forks").clear()
    if work.joins:
        work.own("joins").clear()
    work.status = status
    work.outcome = outcome
    work.ready.clear()
    work.audit("case_ended", node_id, status=value, outcome=outcome, level=work.level)
    work.emit(CaseEnded(outcome, value, work.level))


def _sla_op(op: str) -> Callable[[Work, Token, NodeSpec], None]:
    def handler(work: Work, token: Token, node: NodeSpec) -> None:
        getattr(sla_ops, op)(work, node)
        go_next(work, token, node)

    return handler


def _sla_check(work: Work, token: Token, node: NodeSpec) -> None:
    status = sla_ops.check(work, node)
    target = {"ok": node.ok, "warning": node.warning or node.ok, "breached": node.breached}[status]
    work.audit("sla_check", node.id, clock=node.clock, status=status, result=target)
    if target is None:
        work.incident(token, node, f"sla_check has no route for status {status!r}")
        return
    work.move(token, target)


#: the handler of each node type (``enter`` dispatches through it)
HANDLERS: dict[NodeType, Callable[[Work, Token, NodeSpec], Any]] = {
    NodeType.START: _start,
    NodeType.ACTION: _action,
    NodeType.SET: _set,
    NodeType.DECISION: _decision,
    NodeType.PARALLEL: _parallel,
    NodeType.JOIN: _join,
    NodeType.HUMAN_TASK: _human_task,
    NodeType.ESCALATE: _escalate,
    NodeType.HAND_BACK: _hand_back,
    NodeType.WAIT: _wait,
    NodeType.LOOP: _loop,
    NodeType.SLA_START: _sla_op("start"),
    NodeType.SLA_PAUSE: _sla_op("pause"),
    NodeType.SLA_RESUME: _sla_op("resume"),
    NodeType.SLA_STOP: _sla_op("stop"),
    NodeType.SLA_CHECK: _sla_check,
    NodeType.CALL: _call,
    NodeType.END: _end,
}


def enter(work: Work, token: Token, node: NodeSpec) -> None:
    """Run ``node`` for ``token`` (which has just arrived there)."""
    HANDLERS[node.type](work, token, node)
