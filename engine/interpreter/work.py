"""The working copy of one case during one step: token moves, ids, data writes, commands.

``step`` creates one ``Work`` per event, lets the event handler and the node handlers
change it, then freezes it back into a ``CaseState``. The state's small maps (tasks,
timers, forks, joins, counters, clocks) and its case data are read in place and copied only
when the step first writes to them (``Work.own``, ``Work.assign``); the new state shares
whatever did not change. Nothing here reads the wall clock: ``now`` is the instant the step
was given.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from engine.clock import utc
from engine.errors import CalendarError, RunError
from engine.interpreter.context import StepContext
from engine.interpreter.types import (
    CancelTask,
    CaseState,
    CaseStatus,
    ClockRef,
    Command,
    OpenTask,
    RaiseIncident,
    Token,
    TokenState,
    new_audit,
    new_cancel_timer,
    new_state,
    new_token,
)
from engine.sla.duration import parse_duration
from engine.sop.model import Expr, NodeSpec, SopSpec

if TYPE_CHECKING:
    from engine.sop import CompiledSop

__all__ = ["MAX_MOVES", "Scope", "Work", "coerce", "plain"]

#: node entries allowed in one step; more means a loop without a wait state
MAX_MOVES = 10_000


_SCALARS = frozenset({str, int, float, bool, type(None), datetime, timedelta})
#: declared types whose text values ``coerce`` converts
_COERCED = frozenset({"timestamp", "duration"})


def coerce(type_name: str | None, value: Any) -> Any:
    """A value written to a declared field, in the type CEL expects for it: ISO 8601 text
    becomes a datetime for ``timestamp`` fields and a timedelta for ``duration`` fields
    (values from JSON channel events and forms arrive as text). Anything else is kept."""
    if isinstance(value, str):
        try:
            if type_name == "timestamp":
                return utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
            if type_name == "duration":
                return timedelta(seconds=parse_duration(value))
        except (ValueError, CalendarError):
            return value
    return value


def plain(value: Any) -> Any:
    """``value`` as JSON-shaped data (dict, list, scalars, datetime) for case data."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is dict or kind is MappingProxyType:
        return {str(k): plain(v) for k, v in value.items()}
    if kind is list:
        return [plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


#: per SOP spec object (kept in the entry, so its id is not reused): declared fields whose
#: text values ``coerce`` converts, with their type
_COERCED_FIELDS: dict[int, tuple[SopSpec, Mapping[str, str]]] = {}


def _coerced_fields(spec: SopSpec) -> Mapping[str, str]:
    hit = _COERCED_FIELDS.get(id(spec))
    if hit is not None and hit[0] is spec:
        return hit[1]
    fields = {name: f.type for name, f in spec.data.items() if f.type in _COERCED}
    if len(_COERCED_FIELDS) >= 1024:
        _COERCED_FIELDS.clear()
    _COERCED_FIELDS[id(spec)] = (spec, fields)
    return fields


class Scope(Mapping[str, Any]):
    """The names an expression may read, resolved lazily: only what a program reads is
    looked up, so evaluating never copies the case data. A read-only mapping of case
    fields, ``case``, ``now`` and the extras (``event``, ``result``), extras first."""

    __slots__ = ("_extra", "_work")

    def __init__(self, work: Work, extra: Mapping[str, Any]) -> None:
        self._work = work
        self._extra = extra

    def __getitem__(self, name: str) -> Any:
        if name in self._extra:
            return self._extra[name]
        if name == "case":
            return self._work.case_facts()
        if name == "now":
            return self._work.now
        return self._work.data[name]

    def __contains__(self, name: object) -> bool:
        return (name in self._extra or name == "case" or name == "now"
                or name in self._work.data)

    def __iter__(self) -> Iterator[str]:
        seen = dict.fromkeys(self._extra)
        seen.update(dict.fromkeys(("case", "now")))
        seen.update(dict.fromkeys(self._work.data))
        return iter(seen)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def pick(self, reads: frozenset[str]) -> dict[str, Any]:
        """The values of ``reads`` that exist, as a dict."""
        return {name: self[name] for name in reads if name in self}


class Work:
    """Mutable state of one case while one event is applied (never outlives the step)."""

    __slots__ = (
        "_data_owned", "_n", "_owned", "case_id", "channel", "clocks", "commands", "compiled",
        "counters", "ctx", "customer_id", "data", "emit", "escalations", "forks", "hand_backs",
        "joins", "knowledge", "level", "moves", "now", "outcome", "parent", "path", "priority",
        "ready", "seq", "spec", "state", "status", "tasks", "tier", "timers", "tokens",
    )
    # read-only views of the state's maps until ``own(name)`` makes one writable
    tasks: Mapping[str, OpenTask]
    timers: Mapping[str, str]  # timer id -> token id ("" = case)
    forks: Mapping[str, int]
    joins: Mapping[str, tuple[str, ...]]
    counters: Mapping[str, int]
    clocks: Mapping[str, ClockRef]
    #: append a command to the step's output (``commands.append`` itself)
    emit: Callable[[Command], None]

    def __init__(
        self, compiled: CompiledSop, state: CaseState, now: datetime, ctx: StepContext
    ) -> None:
        self.compiled = compiled
        self.spec = compiled.spec
        self.state = state
        self.now = now
        self.ctx = ctx
        self.seq = state.seq + 1
        self.case_id = state.case_id
        self._n = 0
        self.data: Mapping[str, Any] = state.data
        self._data_owned = False
        self.tokens: dict[str, Token] = {t.id: t for t in state.tokens}
        # the state's small maps, read-only until the step first writes one (``own``)
        self.tasks = state.tasks
        self.timers = state.timers
        self.forks = state.forks
        self.joins = state.joins
        self.counters = state.counters
        self.clocks = state.clocks
        self._owned: set[str] = set()
        self.level = state.level
        self.priority = state.priority
        self.tier = state.tier
        self.channel = state.channel
        self.customer_id = state.customer_id
        self.status = state.status
        self.outcome = state.outcome
        self.escalations = state.escalations
        self.hand_backs = state.hand_backs
        self.knowledge = state.knowledge
        self.parent = state.parent
        self.commands: list[Command] = []
        self.emit = self.commands.append
        self.ready: deque[str] = deque()
        self.moves = 0
        #: node ids entered in this step, in order (audited once per step as ``path``)
        self.path: list[str] = []

    def own(self, name: str) -> dict[Any, Any]:
        """The map ``name`` (tasks, timers, forks, joins, counters, clocks) for writing: a
        copy of the state's, made at the step's first write (reads see the same map)."""
        m = getattr(self, name)
        if name not in self._owned:
            m = m.copy() if type(m) is MappingProxyType else dict(m)
            setattr(self, name, m)
            self._owned.add(name)
        return m  # type: ignore[no-any-return]

    # ---- identity and output -------------------------------------------------------

    def new_id(self) -> str:
        """A fresh id ``case_id:seq:n``: deterministic, unique within the case."""
        self._n += 1
        return f"{self.case_id}:{self.seq}:{self._n}"

    def audit(self, kind: str, node: str | None, actor: str = "system", **detail: Any) -> None:
        self.emit(new_audit(kind, node, actor, MappingProxyType(detail)))

    @property
    def ended(self) -> bool:
        return self.status is not CaseStatus.OPEN

    # ---- expressions and data ------------------------------------------------------

    def variables(self, **extra: Any) -> Scope:
        """What CEL sees: case fields, ``case``, ``now`` and the extras (event, result)."""
        return Scope(self, extra)

    def evaluate(self, expr: Expr, variables: Scope) -> Any:
        return self.compiled.program(expr).evaluate(variables)

    def test(self, expr: Expr | None, variables: Scope) -> bool:
        if expr is None:
            return True
        return self.compiled.program(expr).evaluate(variables) is True

    def value(self, spec: Any, variables: Scope) -> Any:
        """An ``inputs`` value: Expr evaluated, mappings and lists walked, literals as is."""
        kind = type(spec)
        if kind is Expr:
            return self.compiled.program(spec).evaluate(variables)
        if kind is str or kind is int or kind is bool or spec is None:
            return spec
        if kind is dict or kind is MappingProxyType:  # node inputs: Exprs and literals, mostly
            program = self.compiled.program
            return {k: program(v).evaluate(variables) if type(v) is Expr
                    else self.value(v, variables) for k, v in spec.items()}
        if isinstance(spec, Expr):
            return self.evaluate(spec, variables)
        if isinstance(spec, Mapping):
            return {k: self.value(v, variables) for k, v in spec.items()}
        if isinstance(spec, (list, tuple)):
            return [self.value(v, variables) for v in spec]
        return spec

    def compute(self, exprs: Mapping[str, Expr], **extra: Any) -> dict[str, Any]:
        """Evaluate a ``set`` block against one snapshot (assignments are simultaneous)."""
        if not exprs:
            return {}
        variables = Scope(self, extra)
        program = self.compiled.program
        return {name: program(e).evaluate(variables) for name, e in exprs.items()}

    def assign(self, values: Mapping[str, Any]) -> None:
        """Write fields into case data; ``priority`` and ``tier``/``customer_tier`` also
        update the case's own priority and tier (SLA policy facts)."""
        if not values:
            return
        data: dict[str, Any]
        if self._data_owned:
            data = self.data  # type: ignore[assignment]
        else:
            m = self.data
            data = m.copy() if type(m) is MappingProxyType else dict(m)  # type: ignore[attr-defined]
            self.data = data
            self._data_owned = True
        coerced = _coerced_fields(self.spec)
        for key, v in values.items():
            if type(v) not in _SCALARS:
                v = plain(v)
            data[key] = coerce(coerced[key], v) if key in coerced else v
        if "priority" in values:
            p = values["priority"]
            if isinstance(p, str):
                self.priority = p
        t = values["tier"] if "tier" in values else values.get("customer_tier")
        if isinstance(t, str):
            self.tier = t

    def case_facts(self) -> dict[str, Any]:
        """CEL's ``case`` map."""
        return {
            "id": self.case_id,
            "level": self.level,
            "priority": self.priority,
            "tier": self.tier,
            "channel": self.channel,
            "sop": self.spec.id,
        }

    # ---- tokens ------------------------------------------------------------------

    def add_token(self, node: str, forks: tuple[tuple[str, str], ...] = ()) -> Token:
        token = new_token(self.new_id(), node, TokenState.READY, forks, 0, self.now, "", None,
                          None, self.seq)
        self.tokens[token.id] = token
        self.ready.append(token.id)
        return token

    def move(
        self, token: Token, target: str, forks: tuple[tuple[str, str], ...] | None = None
    ) -> Token:
        """Send ``token`` on to ``target`` (optionally with a new fork stack); it runs in
        this step."""
        moved = new_token(token.id, target, TokenState.READY,
                          token.forks if forks is None else forks, 0, self.now, "", None, None,
                          self.seq)
        self.tokens[moved.id] = moved
        self.ready.append(moved.id)
        return moved

    def park(self, token: Token, wait: str, ref: str | None, *, attempt: int | None = None,
             timer: str | None = None) -> Token:
        """Make ``token`` wait for ``wait`` (``ref`` names what it waits for)."""
        parked = new_token(token.id, token.node, TokenState.WAITING, token.forks,
                           token.attempt if attempt is None else attempt, token.entered_at,
                           wait, ref, timer, token.entered_seq)
        self.tokens[parked.id] = parked
        return parked

    def find(self, wait: str, ref: str) -> Token | None:
        for t in self.tokens.values():
            if t.ref == ref and t.wait == wait:
                return t
        return None

    def release_timer(self, token: Token) -> None:
        """Cancel the token's armed timer, if any."""
        if token.timer is not None:
            if token.timer in self.timers:
                del self.own("timers")[token.timer]
            self.emit(new_cancel_timer(token.timer))

    def drop(self, token: Token, reason: str) -> None:
        """Remove a token and everything it holds (task, timer, join arrival)."""
        self.tokens.pop(token.id, None)
        self.release_timer(token)
        if token.wait == "task" and token.ref in self.tasks:
            del self.own("tasks")[token.ref]
            self.emit(CancelTask(token.ref, reason))
        if token.wait == "join" and token.ref in self.joins:
            arrived = tuple(t for t in self.joins[token.ref] if t != token.id)
            self.own("joins")[token.ref] = arrived

    def lose(self, forks: tuple[tuple[str, str], ...]) -> None:
        """A token of ``forks`` will never reach its join: shrink what the join waits for.

        When a fork loses its last expected token the whole fork vanishes and its parent
        fork loses one in turn; when the remaining tokens have all arrived, the join fires.
        """
        stack = forks
        while stack:
            fork_id = stack[-1][1]
            remaining = self.forks.get(fork_id, 0) - 1
            if remaining > 0:
                self.own("forks")[fork_id] = remaining
                if len(self.joins.get(fork_id, ())) >= remaining:
                    self.fire_join(fork_id)
                return
            self.own("forks").pop(fork_id, None)
            self.own("joins").pop(fork_id, None)
            stack = stack[:-1]

    def fire_join(self, fork_id: str) -> None:
        """All expected tokens are at the join: the last one goes on, the others merge."""
        arrived = self.own("joins").pop(fork_id, ())
        self.own("forks").pop(fork_id, None)
        survivors = [self.tokens[t] for t in arrived if t in self.tokens]
        if not survivors:
            return
        for token in survivors[:-1]:
            del self.tokens[token.id]
        last = survivors[-1]
        node = self.compiled.node(last.node)
        self.audit("joined", node.id, fork=fork_id, branches=len(survivors))
        if node.next is None:
            raise RunError("join without next", case_id=self.case_id, node_id=node.id)
        self.move(last, node.next, forks=last.forks[:-1])

    # ---- incidents ---------------------------------------------------------------

    def incident(
        self, token: Token, node: NodeSpec, error: str, action_id: str | None = None
    ) -> None:
        """Park ``token`` on an incident an operator must retry (IncidentRetried)."""
        incident_id = action_id or self.new_id()
        self.emit(RaiseIncident(node.id, error, token.attempt, action_id, incident_id))
        self.audit("incident", node.id, error=error, incident=incident_id)
        self.park(token, "incident", incident_id)

    # ---- freeze ------------------------------------------------------------------

    def freeze(self) -> CaseState:
        """The new CaseState (seq + 1); the working maps become its read-only views."""
        old, owned, proxy = self.state, self._owned, MappingProxyType
        return new_state(
            old.case_id,
            old.sop_id,
            old.sop_version,
            old.sop_hash,
            self.status,
            MappingProxyType(self.data) if self._data_owned else old.data,  # type: ignore[arg-type]
            self.level,
            self.priority,
            self.tier,
            self.channel,
            self.customer_id,
            tuple(self.tokens.values()),
            proxy(self.joins) if "joins" in owned else old.joins,  # type: ignore[arg-type]
            proxy(self.forks) if "forks" in owned else old.forks,  # type: ignore[arg-type]
            proxy(self.counters) if "counters" in owned else old.counters,  # type: ignore[arg-type]
            proxy(self.tasks) if "tasks" in owned else old.tasks,  # type: ignore[arg-type]
            proxy(self.timers) if "timers" in owned else old.timers,  # type: ignore[arg-type]
            proxy(self.clocks) if "clocks" in owned else old.clocks,  # type: ignore[arg-type]
            self.seq,
            self.outcome,
            self.escalations,
            self.hand_backs,
            self.parent,
            self.knowledge,
            old.schema_version,
        )

