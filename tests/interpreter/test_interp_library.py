"""Every SOP in sop_definitions/ runs to an end under an autopilot (no crash, no stuck case).

The autopilot plays every role: it runs actions through the registry, completes tasks
with each declared outcome in turn (valid form values, knowledge when required), answers
sub-cases, sends the signals waits accept, and fires timers when nothing else can move.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from interp_helpers import REPO, Driver

from engine.actions import load_actions
from engine.errors import TransitionNotAllowed
from engine.interpreter import StepContext
from engine.interpreter.types import (
    ActionFailedEvent,
    IncidentRetried,
    RaiseIncident,
    RunAction,
    ScheduleTimer,
    Signal,
    StartSubCase,
    SubCaseEnded,
    TaskCompleted,
    TimerFired,
)
from engine.interpreter.waiting import awaiting
from engine.sop import CompiledSop, compile_file
from engine.sop.model import FormFieldSpec

SOP_FILES = sorted((REPO / "sop_definitions").glob("*.yaml"))
_SAMPLE = {"string": "text", "integer": 1, "number": 1.5, "boolean": True,
           "object": {}, "array": [], "timestamp": "2026-03-02T09:00:00+00:00",
           "duration": "PT1H"}


class FakeKnowledge:
    """A knowledge port that finds nothing (enough to drive kb actions)."""

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(name)


def _value(f: FormFieldSpec) -> Any:
    return f.enum[0] if f.enum else _SAMPLE.get(f.type, "x")


def _inputs(compiled: CompiledSop) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, f in compiled.spec.data.items():
        if f.input:
            out[name] = f.enum[0] if f.enum else _SAMPLE.get(f.type, "x")
    return out


def autopilot(  # noqa: C901 - one loop that plays every role, in priority order
        compiled: CompiledSop, ctx: StepContext, choice: int) -> Driver:
    registry = load_actions()
    d = Driver(compiled, ctx, case_id=f"A{choice}")
    d.start(**_inputs(compiled))
    pending: list[RunAction] = []
    calls: list[StartSubCase] = []
    retried: set[str] = set()
    for _ in range(300):
        if d.state.status.ended:
            break
        pending += [c for c in d.last if isinstance(c, RunAction)]
        calls += [c for c in d.last if isinstance(c, StartSubCase)]
        incidents = [c for c in d.last if isinstance(c, RaiseIncident)]
        waits = awaiting(compiled, d.state)
        live_actions = {w.ref for w in waits if w.kind == "action"}
        pending = [p for p in pending if p.action_id in live_actions]
        if incidents and incidents[0].incident_id not in retried:
            retried.add(incidents[0].incident_id or "")
            d.send(IncidentRetried(incidents[0].incident_id or ""))
            continue
        if pending:
            run = pending.pop(0)
            event = registry.execute(run, case_id=d.case_id, now=d.now)
            if isinstance(event, ActionFailedEvent):
                event = ActionFailedEvent(event.action_id, event.error, retryable=False)
            d.send(event)
            continue
        live_calls = {w.ref for w in waits if w.kind == "call"}
        if any(c.call_id in live_calls for c in calls):
            call = next(c for c in calls if c.call_id in live_calls)
            d.send(SubCaseEnded(call.call_id, "resolved", "resolved", {}))
            continue
        if d.state.tasks:
            task = sorted(d.state.tasks.values(), key=lambda t: t.task_id)[0]
            node = compiled.node(task.node)
            outcome = node.outcomes[choice % len(node.outcomes)]
            fields = {f.name: _value(f) for f in node.form}
            knowledge = {"kind": "linked", "article": "KB-1"} \
                if outcome.knowledge == "required" else None
            d.send(TaskCompleted(task.task_id, outcome.name, fields, knowledge=knowledge))
            continue
        sent = False
        for w in waits:
            for name in w.events[choice % max(1, len(w.events)):] + w.events:
                try:
                    d.send(Signal(name, {"text": "thanks", "confirmed": True, "valid": True}))
                    sent = True
                    break
                except TransitionNotAllowed:
                    continue
            if sent:
                break
        if sent:
            continue
        live = [c for c in d.commands if isinstance(c, ScheduleTimer)
                and c.timer_id in d.state.timers]
        if live:
            timer = min(live, key=lambda c: c.due_at)
            d.now = max(d.now, timer.due_at) + timedelta(seconds=1)
            d.send(TimerFired(timer.timer_id, timer.due_at, d.now))
            continue
        break
    return d


@pytest.mark.parametrize("path", SOP_FILES, ids=lambda p: p.name)
@pytest.mark.parametrize("choice", [0, 1, 2])
def test_every_sop_runs_to_an_end(path: Path, choice: int, org_ctx: StepContext) -> None:
    compiled = compile_file(path)
    d = autopilot(compiled, org_ctx, choice)
    stuck = awaiting(compiled, d.state)
    assert d.state.status.ended, f"stuck at {stuck}"
    assert not d.state.tokens
    assert not d.state.timers
    assert not d.state.tasks
