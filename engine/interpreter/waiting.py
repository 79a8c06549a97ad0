"""What a case is waiting for: a read-only view of its tokens for drivers, the CLI and the API.

``awaiting(compiled, state)`` lists one ``Awaiting`` per waiting token: the open task, the
signal names a wait node accepts, the action result, the sub-case, the join, the incident.
It answers "why is this case here" without knowing the token bookkeeping.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine.interpreter.types import CaseState

if TYPE_CHECKING:
    from engine.sop import CompiledSop

__all__ = ["Awaiting", "awaiting", "signals_accepted"]


@dataclass(frozen=True, slots=True)
class Awaiting:
    """One thing the case waits for.

    Attributes:
        kind: task | event | action | retry | call | join | incident.
        node: the node the token rests at.
        ref: the task id, action id, call id, fork id, incident id or timer id.
        events: for ``event``: the signal names the wait node accepts, in declared order.
        timer: the armed timer (timeout, wait timeout, retry), if any.
    """

    kind: str
    node: str
    ref: str | None
    events: tuple[str, ...] = ()
    timer: str | None = None


def awaiting(compiled: CompiledSop, state: CaseState) -> tuple[Awaiting, ...]:
    """Everything ``state`` waits for, in token order (empty when the case has ended)."""
    out = []
    for token in state.tokens:
        events: tuple[str, ...] = ()
        if token.wait == "event":
            events = tuple(dict.fromkeys(e.event for e in compiled.node(token.node).on))
        out.append(Awaiting(token.wait, token.node, token.ref, events, token.timer))
    return tuple(out)


def signals_accepted(compiled: CompiledSop, state: CaseState) -> frozenset[str]:
    """Signal names the case would accept now: wait entries plus ``on_event`` handlers."""
    if state.status.ended:
        return frozenset()
    names = {e for a in awaiting(compiled, state) for e in a.events}
    names.update(h.event for h in compiled.spec.on_event)
    return frozenset(names)
