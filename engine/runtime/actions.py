"""Run the interpreter's RunAction commands in-process through the action registry.

Each RunAction becomes an ``ActionCompleted`` (the action's result) or an
``ActionFailedEvent`` (what it raised, and whether a retry may help) that the advance loop
feeds straight back into ``step``. Actions run at least once: a worker that dies after an
action ran but before the batch committed runs it again, with the same idempotency key.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from engine.interpreter.types import ActionCompleted, ActionFailedEvent, CaseState, RunAction

__all__ = ["ActionRunner"]


class ActionRunner:
    """Calls actions of ``engine.actions.registry`` (loaded once, on first use)."""

    def __init__(self, registry: Any = None, ports: Mapping[str, Any] | None = None) -> None:
        self._registry = registry
        self.ports = dict(ports or {})

    @property
    def registry(self) -> Any:
        if self._registry is None:
            from engine.actions.registry import load_actions

            self._registry = load_actions()
        return self._registry

    @property
    def inline(self) -> Mapping[str, Any]:
        """The registry's pure actions, which the interpreter runs inside the step
        (StepContext.inline_actions)."""
        pure: Mapping[str, Any] = self.registry.pure()
        return pure

    def run(self, cmd: RunAction, state: CaseState, now: datetime) -> ActionCompleted | ActionFailedEvent:
        """Run ``cmd`` for the case in ``state``; the action's own errors become the event."""
        result: ActionCompleted | ActionFailedEvent = self.registry.execute(
            cmd, case_id=state.case_id, now=now, ports=self.ports)
        return result
