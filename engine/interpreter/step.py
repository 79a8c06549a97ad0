"""The pure step function: (compiled SOP, case state, event, now, context) -> (state, commands).

No I/O, no wall clock, no randomness: the same inputs always give the same outputs, so a
case is its event log (replay = fold ``step`` over the events from ``initial_state``).

- ``initial_state(compiled, case_id)`` is the empty case (seq 0, no tokens).
- ``CaseStarted`` is the first event of that empty state; ``new_case`` does both at once.
- Every applied event increments ``seq`` by exactly 1. A *stale* event (a timer the case
  no longer has, a result of an action or sub-case it no longer waits for) is a no-op:
  the very same state object and no commands are returned, ``seq`` unchanged.
- An event that does not fit raises TransitionNotAllowed (UnmatchedSignal for a signal
  nobody waits for, CaseAlreadyEnded after the end, TaskConflict for a task that is not
  open); the state is untouched.

See docs/engine.md for the semantics of every node type.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from engine.clock import utc
from engine.errors import CalendarError, ExpressionError, RunError, TransitionNotAllowed
from engine.interpreter import nodes, sla_ops
from engine.interpreter.context import StepContext
from engine.interpreter.events import apply_event
from engine.interpreter.rejections import CaseAlreadyEnded
from engine.interpreter.types import (
    SCHEMA_VERSION,
    ActionCompleted,
    ActionFailedEvent,
    CaseStarted,
    CaseState,
    CaseStatus,
    Command,
    Event,
    SubCaseEnded,
    TimerFired,
    new_state,
)
from engine.interpreter.work import MAX_MOVES, Work, plain
from engine.sop.model import EMPTY, NodeSpec, SopSpec

if TYPE_CHECKING:
    from engine.sop import CompiledSop

__all__ = ["initial_state", "new_case", "step"]

#: events an ended case ignores (late or duplicate deliveries) instead of rejecting
_STALE_AFTER_END = (TimerFired, ActionCompleted, ActionFailedEvent, SubCaseEnded)


def initial_state(compiled: CompiledSop, case_id: str) -> CaseState:
    """The empty case of ``compiled`` (seq 0): apply ``CaseStarted`` to start it."""
    spec = compiled.spec
    return new_state(case_id, spec.id, spec.version, compiled.hash, CaseStatus.OPEN, EMPTY,
                     None, "normal", "standard", None, None, (), EMPTY, EMPTY, EMPTY, EMPTY,
                     EMPTY, EMPTY, 0, None, 0, 0, None, None, SCHEMA_VERSION)


def new_case(
    compiled: CompiledSop, case_id: str, started: CaseStarted, now: datetime, ctx: StepContext
) -> tuple[CaseState, tuple[Command, ...]]:
    """Create and start a case: ``step(compiled, initial_state(...), started, now, ctx)``."""
    return step(compiled, initial_state(compiled, case_id), started, now, ctx)


#: per SOP spec object (kept in the entry, so its id is not reused): the start node and the
#: declared defaults (name, value) -- both fixed for a spec, looked up at every case start
_ENTRIES: dict[int, tuple[SopSpec, NodeSpec, tuple[tuple[str, Any], ...]]] = {}


def _entry(spec: SopSpec) -> tuple[NodeSpec, tuple[tuple[str, Any], ...]]:
    hit = _ENTRIES.get(id(spec))
    if hit is not None and hit[0] is spec:
        return hit[1], hit[2]
    defaults = tuple((name, f.default) for name, f in spec.data.items() if f.default is not None)
    if len(_ENTRIES) >= 1024:
        _ENTRIES.clear()
    _ENTRIES[id(spec)] = (spec, spec.start, defaults)
    return spec.start, defaults


def _start(work: Work, event: CaseStarted) -> None:
    if work.state.seq != 0 or work.state.tokens:
        raise TransitionNotAllowed("the case has already started", case_id=work.case_id)
    spec = work.spec
    start, defaults = _entry(spec)
    data: dict[str, Any] = {name: plain(default) for name, default in defaults}
    data.update(plain(event.data))
    work.data = {}
    work.assign(data)
    if event.priority is not None:
        work.priority = event.priority
    if event.tier is not None:
        work.tier = event.tier
    work.channel = event.channel
    work.customer_id = event.customer_id
    work.parent = event.parent
    work.level = start.level
    work.audit("case_started", start.id, event.actor, sop=spec.id, version=spec.version,
               hash=work.compiled.hash)
    work.add_token(start.id)


def _run(work: Work) -> None:
    """Advance every ready token until all wait or the case ends."""
    ready, tokens, known, path = work.ready, work.tokens, work.spec.nodes, work.path
    open_, handlers = CaseStatus.OPEN, nodes.HANDLERS
    moves = work.moves
    while ready and work.status is open_:
        token = tokens.get(ready.popleft())
        if token is None or token.wait:
            continue
        moves += 1
        if moves > MAX_MOVES:
            work.moves = moves
            raise RunError(
                f"more than {MAX_MOVES} node entries in one step: a loop without a wait state",
                case_id=work.case_id, node_id=token.node,
            )
        node = known.get(token.node)
        if node is None:
            raise RunError(f"token {token.id} is at unknown node {token.node!r}",
                           case_id=work.case_id, node_id=token.node)
        path.append(node.id)
        try:
            handlers[node.type](work, token, node)
        except (ExpressionError, CalendarError, RunError) as exc:
            # an SOP or configuration problem at this node: an operator must look at it
            work.incident(token, node, getattr(exc, "message", None) or str(exc))
    work.moves = moves


def step(
    compiled: CompiledSop, state: CaseState, event: Event, now: datetime, ctx: StepContext
) -> tuple[CaseState, tuple[Command, ...]]:
    """Apply one event to one case.

    Args:
        compiled: the SOP version the case runs on (its hash must match the state's).
        state: the case before the event.
        event: what happened.
        now: the instant of the step (injected; used for timers, ``now`` in CEL, audit);
            a naive value is taken as UTC.
        ctx: calendars, SLA policies and levels.

    Returns:
        The new state (``seq`` + 1) and the commands to carry out, in order; or the same
        state and no commands when the event is stale.

    Raises:
        TransitionNotAllowed: the event does not fit the case (see the module docstring).
        RunError: the SOP version does not match, or a step would never stop.
    """
    if state.sop_hash != compiled.hash:
        raise RunError(
            f"case runs on SOP {state.sop_id} {state.sop_version} ({state.sop_hash[:12]}), "
            f"not {compiled.id} {compiled.version} ({compiled.hash[:12]})",
            case_id=state.case_id,
        )
    if state.status is not CaseStatus.OPEN:
        if isinstance(event, _STALE_AFTER_END):
            return state, ()
        raise CaseAlreadyEnded(
            f"case has ended ({state.status.value}, outcome {state.outcome!r}); "
            f"{type(event).__name__} not applied",
            case_id=state.case_id,
        )
    work = Work(compiled, state, now if now.tzinfo is UTC else utc(now), ctx)
    if isinstance(event, CaseStarted):
        _start(work, event)
    elif state.seq == 0:
        raise TransitionNotAllowed("the case has not started yet", case_id=state.case_id)
    elif not apply_event(work, event):
        return state, ()
    _run(work)
    if work.path:
        work.audit("path", None, nodes=work.path)
    if (
        work.clocks
        and work.status is CaseStatus.OPEN
        and state.seq > 0
        and (work.priority, work.tier) != (state.priority, state.tier)
    ):
        sla_ops.reprioritize_all(work)
    return work.freeze(), tuple(work.commands)
