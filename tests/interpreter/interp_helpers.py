"""Shared helpers of the interpreter tests: compile inline SOPs, drive a case by events."""

from __future__ import annotations

import textwrap
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from engine.actions import ActionRegistry, load_actions
from engine.interpreter import StepContext, initial_state, step
from engine.interpreter.types import (
    ActionCompleted,
    CaseStarted,
    CaseState,
    Command,
    CreateTask,
    Event,
    RunAction,
    ScheduleTimer,
    Signal,
    TaskCompleted,
    TimerFired,
)
from engine.sop import CompiledSop, compile_file, compile_text

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday, 09:00 UTC
SOPS = Path(__file__).parent / "sops"
REPO = Path(__file__).parents[2]


def sop(body: str, *, data: str = "", handlers: str = "", sop_id: str = "t") -> CompiledSop:
    """Compile an SOP from its ``nodes:`` body (indented YAML) plus optional data/handlers."""
    text = f"kind: sop\nid: {sop_id}\nversion: '1.0.0'\ntitle: test\n"
    if data:
        text += "data:\n" + textwrap.indent(textwrap.dedent(data).strip("\n"), "  ") + "\n"
    text += "nodes:\n" + textwrap.indent(textwrap.dedent(body).strip("\n"), "  ") + "\n"
    if handlers:
        text += "on_event:\n" + textwrap.indent(textwrap.dedent(handlers).strip("\n"), "  ") + "\n"
    return compile_text(text, file="<test>")


@dataclass
class Driver:
    """Feeds events to one case, keeps every state, command and event (for replays)."""

    compiled: CompiledSop
    ctx: StepContext = field(default_factory=StepContext)
    case_id: str = "C1"
    now: datetime = T0
    registry: ActionRegistry | None = None
    auto_actions: bool = False
    state: CaseState = field(init=False)
    events: list[tuple[Event, datetime]] = field(default_factory=list)
    commands: list[Command] = field(default_factory=list)
    last: tuple[Command, ...] = ()

    def __post_init__(self) -> None:
        self.state = initial_state(self.compiled, self.case_id)

    def send(self, event: Event) -> tuple[Command, ...]:
        self.state, out = step(self.compiled, self.state, event, self.now, self.ctx)
        self.events.append((event, self.now))
        self.commands.extend(out)
        self.last = out
        if self.auto_actions:
            for cmd in out:
                if isinstance(cmd, RunAction):
                    reg = self.registry or load_actions()
                    self.send(reg.execute(cmd, case_id=self.case_id, now=self.now))
        return out

    def start(self, **data: Any) -> tuple[Command, ...]:
        return self.send(CaseStarted(data=data))

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)

    # ---- queries -------------------------------------------------------------------
    def of(self, kind: type, cmds: Iterable[Command] | None = None) -> list[Any]:
        return [c for c in (self.last if cmds is None else cmds) if isinstance(c, kind)]

    def task_id(self, node: str) -> str:
        return next(t.task_id for t in self.state.tasks.values() if t.node == node)

    def complete(self, node: str, outcome: str, **fields: Any) -> tuple[Command, ...]:
        knowledge = fields.pop("knowledge", None)
        return self.send(TaskCompleted(self.task_id(node), outcome, fields, knowledge=knowledge))

    def action(self, node: str) -> RunAction:
        return [c for c in self.commands if isinstance(c, RunAction) and c.node == node][-1]

    def finish_action(self, node: str, result: Any) -> tuple[Command, ...]:
        return self.send(ActionCompleted(self.action(node).action_id, result))

    def fire(self, timer: ScheduleTimer) -> tuple[Command, ...]:
        self.now = max(self.now, timer.due_at)
        return self.send(TimerFired(timer.timer_id, timer.due_at, self.now))

    def timer(self, kind: str) -> ScheduleTimer:
        live = set(self.state.timers)
        return [c for c in self.commands if isinstance(c, ScheduleTimer) and c.kind == kind
                and c.timer_id in live][-1]

    def signal(self, name: str, **payload: Any) -> tuple[Command, ...]:
        return self.send(Signal(name, payload))

    def at(self) -> list[str]:
        return sorted(t.node for t in self.state.tokens)

    def created(self) -> list[CreateTask]:
        return self.of(CreateTask, self.commands)


@pytest.fixture
def ctx() -> StepContext:
    return StepContext()


def load_org_context() -> StepContext:
    """The real organisation documents of sop_definitions/org as a StepContext."""
    from engine.sla import BusinessCalendar
    from engine.sop import load_document
    from engine.sop.model import CalendarSpec, LevelsDoc, SlaPolicyDoc

    calendars: dict[str, Any] = {}
    policies: list[SlaPolicyDoc] = []
    levels = None
    for path in sorted((REPO / "sop_definitions" / "org").glob("*.yaml")):
        doc = load_document(path)
        if isinstance(doc, CalendarSpec):
            calendars[doc.id] = BusinessCalendar.from_spec(doc, path.parent)
        elif isinstance(doc, SlaPolicyDoc):
            policies.append(doc)
        elif isinstance(doc, LevelsDoc):
            levels = doc
    return StepContext(calendars=calendars, policies=tuple(policies), levels=levels,
                       default_calendar="office_nl")


@pytest.fixture(scope="session")
def org_ctx() -> StepContext:
    return load_org_context()


@pytest.fixture(scope="session")
def password_reset() -> CompiledSop:
    return compile_file(REPO / "sop_definitions" / "password_reset.yaml")


def _case(i: int) -> dict[str, str]:
    forgot = "I forgot my password, please send me a reset link"
    locked = "I am locked out and no longer have access to my recovery e-mail"
    path = ("self_service" if i % 10 < 6 else "resolved_l1" if i % 10 < 9 else "resolved_l2")
    return {"request_text": forgot if path == "self_service" else locked,
            "customer_tier": "gold" if i % 7 == 0 else "standard",
            "email": f"user{i}@example.com", "path": path}


def run_reference_case(compiled: CompiledSop, ctx: StepContext, i: int) -> Driver:
    """Drive case i of the deterministic mix to its end, like the peers' bench does."""
    case = _case(i)
    path = case.pop("path")
    d = Driver(compiled, ctx, case_id=f"C{i:07d}", registry=load_actions(), auto_actions=True)
    d.start(**case)
    if path == "self_service":
        assert d.at() == ["await_confirmation"]
        d.signal("customer_confirmed", confirmed=True, channel="email")
    else:
        assert d.at() == ["verify_identity"]
        outcome = "escalate" if path == "resolved_l2" else "verified"
        d.complete("verify_identity", outcome, verify_outcome=outcome)
        if path == "resolved_l2":
            assert d.at() == ["specialist_fix"]
            d.complete("specialist_fix", "fixed", fix_outcome="fixed",
                       fix_note="MFA device re-enrolled",
                       knowledge={"kind": "linked", "article": "KB-42"})
    assert d.state.status == "resolved"
    assert d.state.outcome == path
    return d
