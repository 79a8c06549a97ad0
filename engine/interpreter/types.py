"""The interpreter's vocabulary: case state, the events that move it, the commands it emits.

``step(compiled, state, event, now, ctx) -> (new_state, commands)`` (engine.interpreter.step)
is pure. Everything here is frozen data that round-trips through JSON
(``to_json`` / ``from_json`` in engine.interpreter.codec), so the store can persist it and a
replay of the event log reproduces the state exactly.

Identifiers the interpreter makes (task, timer, action, message ids) are derived from the
case id and the case's sequence number, never from randomness or the wall clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from engine.slots import fast_constructor
from engine.sop.model import frozen_map

if TYPE_CHECKING:
    from engine.sla.clock import SlaClock

__all__ = [
    "ActionCompleted",
    "ActionFailedEvent",
    "Audit",
    "CancelTask",
    "CancelTimer",
    "CaseEnded",
    "CaseStarted",
    "CaseState",
    "CaseStatus",
    "ClockDoc",
    "ClockRef",
    "Command",
    "CreateTask",
    "Event",
    "IncidentRetried",
    "OpenTask",
    "RaiseIncident",
    "RunAction",
    "ScheduleTimer",
    "SendMessage",
    "Signal",
    "StartSubCase",
    "SubCaseEnded",
    "TaskCompleted",
    "TaskEscalated",
    "TaskHandedBack",
    "TimerFired",
    "Token",
    "TokenState",
]

SCHEMA_VERSION = 1


class CaseStatus(StrEnum):
    OPEN = "open"  # has tokens that can move or wait
    RESOLVED = "resolved"
    CLOSED = "closed"
    CANCELLED = "cancelled"

    @property
    def ended(self) -> bool:
        return self is not CaseStatus.OPEN


class TokenState(StrEnum):
    READY = "ready"  # can advance now
    WAITING = "waiting"  # at a wait state (task, wait, call, join, action awaiting result/retry)


@dataclass(frozen=True, slots=True)
class Token:
    """One position of the case in its flowchart (several during parallel branches).

    ``forks`` is the stack of (parallel node id, fork instance id) the token was born in, so
    a join synchronises exactly the branches its own parallel activated.
    """

    id: str
    node: str
    state: TokenState = TokenState.READY
    forks: tuple[tuple[str, str], ...] = ()
    attempt: int = 0  # action attempts made at this node
    entered_at: datetime | None = None
    #: what the token waits for: "" (ready) | action | retry | incident | task | event | call | join
    wait: str = ""
    #: id of what it waits for: action id, task id, call id, incident id, fork id (join)
    ref: str | None = None
    #: id of the timer armed for this token (retry, timeout, wait_timeout), if any
    timer: str | None = None
    #: seq of the step in which the token entered ``node`` (distinguishes loop visits)
    entered_seq: int = 0


@dataclass(frozen=True, slots=True)
class OpenTask:
    """A human task the case is waiting on."""

    task_id: str
    node: str
    token: str
    level: str


class ClockDoc(Mapping[str, Any]):
    """An SLA clock as engine.sla's JSON form (``engine.sla.codec.to_json``), read-only.

    It holds the clock value, its JSON form, or both: each is worked out from the other on
    first use and kept. The interpreter writes clock values (a step never encodes a clock),
    the state codec writes the JSON form (decoding waits until a step touches the clock).
    """

    __slots__ = ("_clock", "_doc", "_from_doc")

    def __init__(self, clock: SlaClock | None = None,
                 doc: Mapping[str, Any] | None = None) -> None:
        if clock is None and doc is None:
            raise TypeError("ClockDoc needs a clock or its JSON form")
        self._clock = clock
        self._doc = doc
        self._from_doc = doc is not None

    @property
    def clock(self) -> SlaClock:
        """The engine.sla clock value (decoded once).

        Raises:
            CalendarError: the JSON form is not a clock engine.sla can read.
        """
        if self._clock is None:
            from engine.sla.codec import from_json

            assert self._doc is not None
            self._clock = from_json(dict(self._doc))
        return self._clock

    @property
    def decoded(self) -> Mapping[str, Any] | None:
        """The JSON form this doc was read from (None when it was made from a clock)."""
        return self._doc if self._from_doc else None

    @property
    def doc(self) -> Mapping[str, Any]:
        """The JSON form (encoded once)."""
        if self._doc is None:
            from engine.sla.codec import to_json

            assert self._clock is not None
            self._doc = MappingProxyType(to_json(self._clock))
        return self._doc

    def to_json(self) -> dict[str, Any]:
        """The JSON form as a fresh plain dict (for the state codec)."""
        if self._clock is not None:
            from engine.sla.codec import to_json

            return to_json(self._clock)
        assert self._doc is not None
        return _plain_copy(self._doc)

    def __getitem__(self, key: str) -> Any:
        return self.doc[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.doc)

    def __len__(self) -> int:
        return len(self.doc)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Mapping):
            return NotImplemented
        return dict(self.doc) == dict(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ClockDoc({dict(self.doc)!r})"


def _plain_copy(value: Any) -> Any:
    kind = type(value)
    if kind is dict or kind is MappingProxyType or isinstance(value, Mapping):
        return {k: _plain_copy(v) for k, v in value.items()}
    if kind is list or kind is tuple or isinstance(value, (list, tuple)):
        return [_plain_copy(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class ClockRef:
    """An SLA clock of the case; ``state`` is engine.sla's clock value as JSON-able data
    (a ClockDoc when the interpreter or the codec made it: the clock value comes with it)."""

    name: str
    state: Mapping[str, Any] = field(default_factory=frozen_map)
    #: pending SLA timers of this clock: timer id -> (kind, planned-timer key, due ISO instant)
    timers: Mapping[str, tuple[str, str, str]] = field(default_factory=frozen_map)


@dataclass(frozen=True, slots=True)
class CaseState:
    """Everything the interpreter needs to know about one case."""

    case_id: str
    sop_id: str
    sop_version: str
    sop_hash: str
    status: CaseStatus = CaseStatus.OPEN
    data: Mapping[str, Any] = field(default_factory=frozen_map)
    level: str | None = None  # competence level that holds the case
    priority: str = "normal"
    tier: str = "standard"
    channel: str | None = None
    customer_id: str | None = None
    tokens: tuple[Token, ...] = ()
    joins: Mapping[str, tuple[str, ...]] = field(default_factory=frozen_map)  # fork id -> arrived token ids
    forks: Mapping[str, int] = field(default_factory=frozen_map)  # fork id -> branches activated
    counters: Mapping[str, int] = field(default_factory=frozen_map)  # loop counters
    tasks: Mapping[str, OpenTask] = field(default_factory=frozen_map)
    timers: Mapping[str, str] = field(default_factory=frozen_map)  # timer id -> token id ("" = case)
    clocks: Mapping[str, ClockRef] = field(default_factory=frozen_map)
    seq: int = 0  # events applied; strictly increasing
    outcome: str | None = None
    escalations: int = 0
    hand_backs: int = 0
    parent: tuple[str, str] | None = None  # (parent case id, call id) for sub-cases
    #: the last knowledge outcome recorded on a task completion ({kind, article?, reason?})
    knowledge: Mapping[str, Any] | None = None
    schema_version: int = SCHEMA_VERSION


# ---- events: what happened (inputs to step) ---------------------------------------------


@dataclass(frozen=True, slots=True)
class CaseStarted:
    data: Mapping[str, Any] = field(default_factory=frozen_map)
    priority: str | None = None
    tier: str | None = None
    channel: str | None = None
    customer_id: str | None = None
    actor: str = "system"
    #: (parent case id, call id) when the runtime starts this case for a StartSubCase
    parent: tuple[str, str] | None = None


@dataclass(frozen=True, slots=True)
class TaskCompleted:
    """An agent completes a task (``actor`` chose the outcome). On a ``four_eyes`` task the
    outcome was proposed by ``actor`` and confirmed by a second agent, ``confirmed_by``."""

    task_id: str
    outcome: str
    fields: Mapping[str, Any] = field(default_factory=frozen_map)
    actor: str = "agent"
    knowledge: Mapping[str, Any] | None = None  # {kind: linked|drafted|none, article?, reason?}
    confirmed_by: str | None = None


@dataclass(frozen=True, slots=True)
class TaskEscalated:
    """An agent escalates a task by hand (``careflow task escalate``)."""

    task_id: str
    reason: str
    actor: str = "agent"
    to_level: str | None = None


@dataclass(frozen=True, slots=True)
class Signal:
    """A named event from outside: a channel event (customer reply), or a case event
    (withdrawn, priority_changed, merged). ``payload`` is what CEL sees as ``event``."""

    name: str
    payload: Mapping[str, Any] = field(default_factory=frozen_map)
    event_id: str | None = None
    actor: str = "customer"


@dataclass(frozen=True, slots=True)
class TimerFired:
    timer_id: str
    due_at: datetime
    fired_at: datetime


@dataclass(frozen=True, slots=True)
class ActionCompleted:
    action_id: str
    result: Any = None


@dataclass(frozen=True, slots=True)
class ActionFailedEvent:
    action_id: str
    error: str
    retryable: bool = True


@dataclass(frozen=True, slots=True)
class SubCaseEnded:
    call_id: str
    outcome: str
    status: str
    data: Mapping[str, Any] = field(default_factory=frozen_map)


@dataclass(frozen=True, slots=True)
class TaskHandedBack:
    """An agent hands a task back by hand to a shallower level (``careflow task hand-back``);
    the case goes where the task's ``hand_back`` outcome says."""

    task_id: str
    reason: str
    actor: str = "agent"
    to_level: str | None = None
    knowledge: Mapping[str, Any] | None = None  # {kind: linked|drafted|none, article?, reason?}


@dataclass(frozen=True, slots=True)
class IncidentRetried:
    """An operator retries an incident (``RaiseIncident.incident_id``): the node runs again."""

    incident_id: str
    actor: str = "operator"


Event = (
    CaseStarted
    | TaskCompleted
    | TaskEscalated
    | TaskHandedBack
    | Signal
    | TimerFired
    | ActionCompleted
    | ActionFailedEvent
    | SubCaseEnded
    | IncidentRetried
)


# ---- commands: what must happen (outputs of step) ---------------------------------------


@dataclass(frozen=True, slots=True)
class CreateTask:
    task_id: str
    node: str
    level: str
    title: str
    role: str | None = None
    skills: tuple[str, ...] = ()
    outcomes: tuple[str, ...] = ()
    due_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class CancelTask:
    task_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class ScheduleTimer:
    """A durable timer row. ``kind``: timeout | retry | wait_timeout | sla_warning |
    sla_breach | sla_escalation. The runtime feeds ``TimerFired(timer_id)`` back."""

    timer_id: str
    kind: str
    due_at: datetime
    node: str | None = None
    payload: Mapping[str, Any] = field(default_factory=frozen_map)


@dataclass(frozen=True, slots=True)
class CancelTimer:
    timer_id: str


@dataclass(frozen=True, slots=True)
class RunAction:
    """Run a registered action; the runtime answers with ActionCompleted / ActionFailedEvent."""

    action_id: str
    node: str
    action: str
    inputs: Mapping[str, Any]
    attempt: int
    idempotency_key: str


@dataclass(frozen=True, slots=True)
class SendMessage:
    """An outbound message through the outbox (at least once, deduped by the key)."""

    message_id: str
    channel: str | None  # None: the customer's channel
    template: str | None
    body: str
    subject: str = ""
    to: str | None = None
    automatic: bool = True  # automatic mail carries Auto-Submitted: auto-replied
    idempotency_key: str = ""


@dataclass(frozen=True, slots=True)
class StartSubCase:
    call_id: str
    sop: str
    data: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class RaiseIncident:
    node: str
    error: str
    attempt: int
    action_id: str | None = None
    #: what an operator passes back in IncidentRetried to run the node again
    incident_id: str | None = None


@dataclass(frozen=True, slots=True)
class CaseEnded:
    outcome: str
    status: str
    level: str | None


@dataclass(frozen=True, slots=True)
class Audit:
    """One entry of the append-only audit trail: who, which node, what rule matched."""

    kind: str  # entered | left | decision | task_created | task_completed | escalated | ...
    node: str | None
    actor: str = "system"
    detail: Mapping[str, Any] = field(default_factory=frozen_map)


Command = (
    CreateTask
    | CancelTask
    | ScheduleTimer
    | CancelTimer
    | RunAction
    | SendMessage
    | StartSubCase
    | RaiseIncident
    | CaseEnded
    | Audit
)


# ---- fast positional constructors for the interpreter's hot paths -----------------------


new_token: Callable[..., Token] = fast_constructor(Token)
new_state: Callable[..., CaseState] = fast_constructor(CaseState)
new_audit: Callable[..., Audit] = fast_constructor(Audit)
new_clock_ref: Callable[..., ClockRef] = fast_constructor(ClockRef)
new_schedule_timer: Callable[..., ScheduleTimer] = fast_constructor(ScheduleTimer)
new_cancel_timer: Callable[..., CancelTimer] = fast_constructor(CancelTimer)
new_run_action: Callable[..., RunAction] = fast_constructor(RunAction)
new_create_task: Callable[..., CreateTask] = fast_constructor(CreateTask)
new_open_task: Callable[..., OpenTask] = fast_constructor(OpenTask)
