"""The pure case interpreter: ``step(compiled, state, event, now, ctx) -> (state, commands)``.

Modules: ``types`` (state, events, commands), ``context`` (StepContext), ``step`` (the
entry points), ``events`` (one handler per event), ``nodes`` (one handler per node type),
``work`` (the per-step working copy), ``sla_ops`` (the door to engine.sla), ``codec``
(JSON), ``rejections`` (why an event was refused), ``waiting`` (what a case waits for).
"""

from __future__ import annotations

from engine.interpreter.context import StepContext
from engine.interpreter.rejections import CaseAlreadyEnded, TaskNotOpen, UnmatchedSignal
from engine.interpreter.step import initial_state, new_case, step
from engine.interpreter.waiting import Awaiting, awaiting

__all__ = [
    "Awaiting",
    "CaseAlreadyEnded",
    "StepContext",
    "TaskNotOpen",
    "UnmatchedSignal",
    "awaiting",
    "initial_state",
    "new_case",
    "step",
]
