"""Why the interpreter refused an event: distinguishable TransitionNotAllowed subclasses.

The runtime records some refusals on the case timeline instead of failing the case (a
customer message nobody waits for); these types let it tell them apart from real errors.
"""

from __future__ import annotations

from engine.errors import TaskConflict, TransitionNotAllowed

__all__ = ["CaseAlreadyEnded", "TaskNotOpen", "UnmatchedSignal"]


class UnmatchedSignal(TransitionNotAllowed):
    """A Signal matched no ``wait`` entry of a waiting token and no ``on_event`` handler.

    Attributes:
        signal: the signal name.
    """

    def __init__(self, message: str, *, signal: str, case_id: str | None = None) -> None:
        self.signal = signal
        super().__init__(message, case_id=case_id)


class CaseAlreadyEnded(TransitionNotAllowed):
    """The case has ended; only stale timers and late action/sub-case results are ignored."""


class TaskNotOpen(TaskConflict, TransitionNotAllowed):
    """The task is not open (completed, cancelled, escalated, or never existed).

    Both a TaskConflict (the second of two agents) and a TransitionNotAllowed (the event
    does not fit the case), so either ``except`` catches it.
    """
