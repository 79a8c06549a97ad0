"""The SOP language as frozen data: what a process designer wrote, with where they wrote it.

This module is the contract between the loader (YAML -> these values), the compiler
(these values -> networkx graph) and the interpreter. It holds no behaviour beyond small
derived properties, imports nothing but the standard library, and every value is frozen.

Expressions are kept as ``Expr`` (CEL source text + span); turning them into programs is
the compiler's job (engine.sop.expressions). Durations are kept as ``Duration`` (source
text + seconds); business-calendar interpretation belongs to engine.sla.

Node types (``NodeSpec.type``), one line each -- the full reference is docs/sop-reference.md:

- ``start``        where every case begins (exactly one).
- ``action``       an automated step (e-level/system) calling a registered action, with retry/backoff and an error route.
- ``set``          assigns case fields from CEL expressions.
- ``decision``     exclusive choice: ordered branches with CEL conditions, first match wins, plus ``otherwise``.
- ``parallel``     parallel split (all branches) or multi-choice (branches with ``when``), synchronised by its ``join``.
- ``join``         synchronising merge of the branches its parallel activated.
- ``human_task``   work for a person at a competence level: assignment, outcomes, form fields, timeout.
- ``escalate``     moves the case to a deeper competence level, with a reason.
- ``hand_back``    returns the case to a shallower level, with a knowledge outcome.
- ``wait``         waits for channel events (deferred choice when several) with correlation and a timeout.
- ``loop``         bounded loop: counts entries, goes to ``body`` up to ``max`` times, then to ``exit``.
- ``sla_start`` / ``sla_pause`` / ``sla_resume`` / ``sla_stop``  SLA clock operations.
- ``sla_check``    routes on the clock's state: ok / warning / breached.
- ``call``         runs another SOP as a sub-case and waits for its outcome.
- ``end``          ends a path (and the case when it is the last path, or ``terminate: true``) with an outcome.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import TypeVar

from engine.errors import SourceSpan

__all__ = [
    "AgentSpec",
    "AgentsDoc",
    "BranchSpec",
    "CalendarSpec",
    "DataFieldSpec",
    "Document",
    "Duration",
    "EscalationStepSpec",
    "EventHandlerSpec",
    "Expr",
    "FormFieldSpec",
    "LevelSpec",
    "LevelsDoc",
    "MetricSpec",
    "NodeSpec",
    "NodeType",
    "OutcomeSpec",
    "RetrySpec",
    "RoutingDoc",
    "RoutingRuleSpec",
    "SlaPolicyDoc",
    "SopSpec",
    "TimeoutSpec",
    "WaitOnSpec",
    "WarningSpec",
    "frozen_map",
]

EMPTY: Mapping[str, object] = MappingProxyType({})


K = TypeVar("K")
V = TypeVar("V")


def frozen_map(items: Mapping[K, V] | None = None) -> Mapping[K, V]:
    """A read-only view of a copy of ``items`` (insertion order kept)."""
    return MappingProxyType(dict(items or {}))


class NodeType(StrEnum):
    START = "start"
    ACTION = "action"
    SET = "set"
    DECISION = "decision"
    PARALLEL = "parallel"
    JOIN = "join"
    HUMAN_TASK = "human_task"
    ESCALATE = "escalate"
    HAND_BACK = "hand_back"
    WAIT = "wait"
    LOOP = "loop"
    SLA_START = "sla_start"
    SLA_PAUSE = "sla_pause"
    SLA_RESUME = "sla_resume"
    SLA_STOP = "sla_stop"
    SLA_CHECK = "sla_check"
    CALL = "call"
    END = "end"


SLA_CLOCK_OPS = frozenset(
    {NodeType.SLA_START, NodeType.SLA_PAUSE, NodeType.SLA_RESUME, NodeType.SLA_STOP}
)
#: node types at which a case stops and waits for the outside world
WAIT_STATES = frozenset({NodeType.HUMAN_TASK, NodeType.WAIT, NodeType.CALL, NodeType.JOIN})


@dataclass(frozen=True, slots=True)
class Expr:
    """A CEL expression as written: source text and where it stands."""

    source: str
    span: SourceSpan


@dataclass(frozen=True, slots=True)
class Duration:
    """A duration as written (``PT4H``, ``3h30m``) and its length in seconds.

    ``business`` is True when the author asked for business time (``business: true`` or a
    ``calendar``); the SLA layer interprets it against a calendar.
    """

    text: str
    seconds: int
    span: SourceSpan


@dataclass(frozen=True, slots=True)
class DataFieldSpec:
    """One declared case-data field; gives CEL expressions their types."""

    name: str
    type: str  # string | integer | number | boolean | timestamp | duration | object | array
    span: SourceSpan
    description: str = ""
    enum: tuple[object, ...] = ()
    input: bool = False  # provided when the case starts (or by the opening channel event)
    default: object = None
    items: str | None = None  # element type for arrays


@dataclass(frozen=True, slots=True)
class RetrySpec:
    """Retry policy of an action: ``max_attempts`` total tries, exponential backoff."""

    max_attempts: int = 1
    delay: Duration | None = None  # before the 2nd attempt
    backoff: float = 2.0  # multiplier per further attempt
    max_delay: Duration | None = None


@dataclass(frozen=True, slots=True)
class TimeoutSpec:
    """After ``after`` (business time when ``calendar`` is set), go to ``next``."""

    after: Duration
    next: str
    span: SourceSpan
    calendar: str | None = None


@dataclass(frozen=True, slots=True)
class BranchSpec:
    """A branch of a decision or parallel: optional condition, target, label."""

    next: str
    span: SourceSpan
    when: Expr | None = None
    label: str = ""


@dataclass(frozen=True, slots=True)
class OutcomeSpec:
    """An allowed outcome of a human task and where it leads."""

    name: str
    next: str
    span: SourceSpan
    label: str = ""
    roles: tuple[str, ...] = ()  # who may choose it; empty = anyone allowed on the task
    knowledge: str = "none"  # none | optional | required: a knowledge outcome must be recorded


@dataclass(frozen=True, slots=True)
class FormFieldSpec:
    """A field a human task collects; written to case data under ``name``."""

    name: str
    type: str
    span: SourceSpan
    required: bool = False
    enum: tuple[object, ...] = ()
    description: str = ""


@dataclass(frozen=True, slots=True)
class WaitOnSpec:
    """One event a wait node listens for (several = deferred choice: first one wins)."""

    event: str
    next: str
    span: SourceSpan
    when: Expr | None = None  # may read ``event``
    set: Mapping[str, Expr] = field(default_factory=frozen_map)


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """One node of the flowchart. Which fields matter depends on ``type``."""

    id: str
    type: NodeType
    span: SourceSpan
    title: str = ""
    description: str = ""
    level: str | None = None  # competence level (lane)
    next: str | None = None
    # action
    action: str | None = None
    inputs: Mapping[str, object] = field(default_factory=frozen_map)  # literal or Expr
    set: Mapping[str, Expr] = field(default_factory=frozen_map)  # set / action results / call results
    retry: RetrySpec = field(default_factory=RetrySpec)
    on_error: str | None = None
    # decision / parallel
    branches: tuple[BranchSpec, ...] = ()
    otherwise: str | None = None
    join: str | None = None  # parallel: the join that synchronises it
    # human task
    instructions: str = ""
    role: str | None = None
    skills: tuple[str, ...] = ()
    outcomes: tuple[OutcomeSpec, ...] = ()
    form: tuple[FormFieldSpec, ...] = ()
    four_eyes: bool = False
    # human task / wait / call
    timeout: TimeoutSpec | None = None
    # escalate / hand_back
    to: str | None = None
    reason: str = ""
    knowledge: str = "none"  # hand_back: none | optional | required
    # wait
    on: tuple[WaitOnSpec, ...] = ()
    correlate: str = "case"  # case | thread | customer
    # loop
    counter: str | None = None
    max: int | None = None
    body: str | None = None
    exit: str | None = None
    # sla
    clock: str | None = None
    metric: str | None = None
    policy: str | None = None
    ok: str | None = None
    warning: str | None = None
    breached: str | None = None
    # call
    sop: str | None = None
    # end
    outcome: str | None = None
    status: str = "resolved"  # resolved | closed | cancelled
    terminate: bool = False

    def outcome_spec(self, name: str) -> OutcomeSpec | None:
        """The outcome called ``name`` (a human task's), or None."""
        return next((o for o in self.outcomes if o.name == name), None)

    def successors(self) -> tuple[tuple[str, str], ...]:
        """Every (target node id, edge label) this node may lead to, in declared order."""
        out: list[tuple[str, str]] = []
        t = self.type
        if self.next is not None and t not in (NodeType.END,):
            out.append((self.next, ""))
        if t is NodeType.DECISION:
            out += [(b.next, b.label or (b.when.source if b.when else "")) for b in self.branches]
            if self.otherwise is not None:
                out.append((self.otherwise, "otherwise"))
        elif t is NodeType.PARALLEL:
            out += [(b.next, b.label or (b.when.source if b.when else "")) for b in self.branches]
        elif t is NodeType.HUMAN_TASK:
            out += [(o.next, o.label or o.name) for o in self.outcomes]
        elif t is NodeType.WAIT:
            out += [(w.next, w.event) for w in self.on]
        elif t is NodeType.LOOP:
            out += [(x, lbl) for x, lbl in ((self.body, "repeat"), (self.exit, "done")) if x]
        elif t is NodeType.SLA_CHECK:
            out += [
                (x, lbl)
                for x, lbl in ((self.ok, "ok"), (self.warning, "warning"), (self.breached, "breached"))
                if x
            ]
        if self.on_error is not None:
            out.append((self.on_error, "error"))
        if self.timeout is not None:
            out.append((self.timeout.next, f"timeout {self.timeout.after.text}"))
        return tuple(out)


@dataclass(frozen=True, slots=True)
class EventHandlerSpec:
    """A case-wide event handler: reacts wherever the case stands.

    ``interrupt: true`` cancels the active positions (all of them, or only those in
    ``scope``: cancel activity) and continues at ``next`` (cancel case when ``next`` is an
    end). Non-interrupting handlers only apply ``set`` (e.g. a priority change).
    """

    event: str
    span: SourceSpan
    when: Expr | None = None
    interrupt: bool = False
    next: str | None = None
    set: Mapping[str, Expr] = field(default_factory=frozen_map)
    scope: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SopSpec:
    """A whole SOP document (``kind: sop``)."""

    id: str
    version: str
    title: str
    span: SourceSpan
    nodes: Mapping[str, NodeSpec]
    data: Mapping[str, DataFieldSpec] = field(default_factory=frozen_map)
    on_event: tuple[EventHandlerSpec, ...] = ()
    owner: str = ""
    purpose: str = ""
    category: str = ""
    itil: str = "service_request"  # incident | service_request | problem | change | information
    source: str = ""  # the file it came from

    @property
    def start(self) -> NodeSpec:
        return next(n for n in self.nodes.values() if n.type is NodeType.START)


# ---- organisation documents -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LevelSpec:
    """A competence level: e-level (automated), L1, L2, specialists ... ordered by ``rank``."""

    id: str
    name: str
    rank: int
    span: SourceSpan
    automated: bool = False
    description: str = ""
    ola: str | None = None  # SLA policy id of this level's operational-level agreement


@dataclass(frozen=True, slots=True)
class LevelsDoc:
    """``kind: levels``: the organisation's competence levels."""

    levels: tuple[LevelSpec, ...]
    span: SourceSpan
    source: str = ""


@dataclass(frozen=True, slots=True)
class CalendarSpec:
    """``kind: calendar``: a business calendar.

    ``week`` maps ``mon``..``sun`` to ``("08:00", "12:00")`` intervals; an interval whose end
    is not after its start runs overnight into the next day. ``"24x7"`` is spelled as
    ``always: true``.
    """

    id: str
    timezone: str
    span: SourceSpan
    week: Mapping[str, tuple[tuple[str, str], ...]] = field(default_factory=frozen_map)
    always: bool = False
    recurring_holidays: tuple[str, ...] = ()  # MM-DD
    closures: tuple[str, ...] = ()  # YYYY-MM-DD
    country: str | None = None  # holidays package country code
    subdivision: str | None = None
    ical: str | None = None  # path, relative to the calendar file
    description: str = ""
    source: str = ""


@dataclass(frozen=True, slots=True)
class WarningSpec:
    """Warn at ``percent`` of the target, or ``minutes_before`` the due time."""

    span: SourceSpan
    percent: float | None = None
    minutes_before: int | None = None


@dataclass(frozen=True, slots=True)
class EscalationStepSpec:
    """A rung of the escalation ladder, ``after`` the breach: move to a level and/or notify."""

    after: Duration
    span: SourceSpan
    to_level: str | None = None
    notify: str | None = None


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """Targets and behaviour of one SLA metric inside a policy."""

    metric: str  # first_response | next_reply | periodic_update | resolution_first | resolution_total | ola
    span: SourceSpan
    target: Duration | None = None  # default target
    by_priority: Mapping[str, Duration] = field(default_factory=frozen_map)
    by_tier: Mapping[str, Duration] = field(default_factory=frozen_map)
    unit: str = "business_hours"  # business_hours | business_days | wall
    warnings: tuple[WarningSpec, ...] = ()
    escalation: tuple[EscalationStepSpec, ...] = ()
    on_reopen: str = "resume"  # resume | restart | new_case
    pause_if_breached: bool = True
    counts_as_response: tuple[str, ...] = ("human_reply", "phone_call")


@dataclass(frozen=True, slots=True)
class SlaPolicyDoc:
    """``kind: sla_policy``: which cases it applies to (``when``), in explicit ``order``."""

    id: str
    order: int
    calendar: str
    span: SourceSpan
    metrics: Mapping[str, MetricSpec]
    when: Expr | None = None  # over priority, tier, channel, category, sop
    description: str = ""
    reopen_window: Duration | None = None
    source: str = ""


@dataclass(frozen=True, slots=True)
class RoutingRuleSpec:
    """Which SOP an inbound contact starts: first matching rule wins."""

    sop: str
    span: SourceSpan
    channels: tuple[str, ...] = ()  # empty = any channel
    when: Expr | None = None  # over the channel event (subject, body, channel, intent ...)
    priority: str | None = None


@dataclass(frozen=True, slots=True)
class RoutingDoc:
    """``kind: routing``: inbound routing rules plus the fallback SOP."""

    rules: tuple[RoutingRuleSpec, ...]
    span: SourceSpan
    fallback: str | None = None
    source: str = ""


@dataclass(frozen=True, slots=True)
class AgentSpec:
    """A person (or bot) who works on human tasks: at which levels, in which roles.

    ``level_spans`` holds where each entry of ``levels`` is written (same order), so a
    reference error points at the level itself.
    """

    id: str
    name: str
    levels: tuple[str, ...]
    span: SourceSpan
    roles: tuple[str, ...] = ()
    skills: tuple[str, ...] = ()
    level_spans: tuple[SourceSpan, ...] = ()


@dataclass(frozen=True, slots=True)
class AgentsDoc:
    """``kind: agents``: who may work on and decide human tasks (enforced by the runtime)."""

    agents: tuple[AgentSpec, ...]
    span: SourceSpan
    source: str = ""

    def get(self, agent_id: str) -> AgentSpec | None:
        """The agent with id ``agent_id``, or None."""
        return next((a for a in self.agents if a.id == agent_id), None)


Document = SopSpec | LevelsDoc | CalendarSpec | SlaPolicyDoc | RoutingDoc | AgentsDoc
