"""Random event sequences (hypothesis state machine): the interpreter's invariants hold.

Invariants: one owner per task (each open task is held by exactly one waiting token and
every task-waiting token's task is open), seq grows by exactly 1 per applied event and not
at all otherwise, an ended case stays ended and emits nothing, no token rests at an end
node, every armed timer belongs to a live token or an SLA clock.
"""

from __future__ import annotations

from datetime import timedelta

from interp_helpers import REPO, SOPS, T0, load_org_context
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from engine.actions import load_actions
from engine.errors import TaskConflict, TransitionNotAllowed
from engine.interpreter import initial_state, step
from engine.interpreter.types import (
    ActionFailedEvent,
    CaseStarted,
    CaseState,
    Event,
    IncidentRetried,
    RaiseIncident,
    RunAction,
    ScheduleTimer,
    Signal,
    TaskCompleted,
    TaskEscalated,
    TimerFired,
)
from engine.sop import compile_file
from engine.sop.model import NodeType

CTX = load_org_context()
REGISTRY = load_actions()


class CaseMachine(RuleBasedStateMachine):
    compiled = compile_file(SOPS / "machine.yaml")
    signals = ("reply", "withdrawn", "note", "poke", "nobody_listens")
    inputs: dict[str, object] = {"note": "start"}

    def __init__(self) -> None:
        super().__init__()
        self.now = T0
        self.state: CaseState = initial_state(self.compiled, "M1")
        self.timers: list[ScheduleTimer] = []
        self.actions: list[RunAction] = []
        self.incidents: list[str] = []
        self.last: Event | None = None
        self.ended_at_seq: int | None = None
        self.apply(CaseStarted(data=dict(self.inputs)))

    def apply(self, event: Event) -> None:
        before = self.state
        try:
            after, out = step(self.compiled, before, event, self.now, CTX)
        except (TransitionNotAllowed, TaskConflict):
            return  # refused: nothing changed (the state is immutable)
        if after is before:
            assert out == ()
        else:
            assert after.seq == before.seq + 1
            assert not before.status.ended, "an ended case accepted an event"
        if before.status.ended:
            assert out == ()
            assert after is before
        self.state = after
        self.last = event
        for cmd in out:
            if isinstance(cmd, ScheduleTimer):
                self.timers.append(cmd)
            elif isinstance(cmd, RunAction):
                self.actions.append(cmd)
            elif isinstance(cmd, RaiseIncident) and cmd.incident_id:
                self.incidents.append(cmd.incident_id)

    @rule(data=st.data())
    def complete_task(self, data: st.DataObject) -> None:
        if not self.state.tasks:
            return
        tasks = sorted(self.state.tasks.values(), key=lambda t: t.task_id)
        task = data.draw(st.sampled_from(tasks))
        node = self.compiled.node(task.node)
        outcome = data.draw(st.sampled_from([o.name for o in node.outcomes] + ["bogus"]))
        valid = {f.name: (f.enum[0] if f.enum else "yes") for f in node.form}
        fields = data.draw(st.sampled_from([{}, valid, {"answer": 3}]))
        knowledge = data.draw(st.sampled_from([None, {"kind": "linked", "article": "KB-1"}]))
        self.apply(TaskCompleted(task.task_id, outcome, fields, knowledge=knowledge))

    @rule(data=st.data())
    def escalate_task(self, data: st.DataObject) -> None:
        if self.state.tasks:
            task_id = data.draw(st.sampled_from(sorted(self.state.tasks)))
            self.apply(TaskEscalated(task_id, "random"))

    @rule(data=st.data(), text=st.sampled_from(["a", "b"]))
    def signal(self, data: st.DataObject, text: str) -> None:
        name = data.draw(st.sampled_from(self.signals))
        self.apply(Signal(name, {"text": text, "confirmed": True}))

    @rule(data=st.data(), hours=st.integers(0, 30))
    def fire_timer(self, data: st.DataObject, hours: int) -> None:
        if self.timers:
            timer = data.draw(st.sampled_from(self.timers))  # live, stale or duplicate
            self.now = max(self.now, timer.due_at) + timedelta(hours=hours)
            self.apply(TimerFired(timer.timer_id, timer.due_at, self.now))

    @rule(data=st.data(), fail=st.booleans(), retryable=st.booleans())
    def answer_action(self, data: st.DataObject, fail: bool, retryable: bool) -> None:
        if self.actions:
            run = data.draw(st.sampled_from(self.actions))
            if fail:
                self.apply(ActionFailedEvent(run.action_id, "boom", retryable))
            else:
                self.apply(REGISTRY.execute(run, case_id="M1", now=self.now))

    @rule(data=st.data())
    def retry_incident(self, data: st.DataObject) -> None:
        if self.incidents:
            self.apply(IncidentRetried(data.draw(st.sampled_from(self.incidents))))

    @precondition(lambda self: self.last is not None)
    @rule()
    def duplicate_delivery(self) -> None:
        assert self.last is not None
        self.apply(self.last)

    @invariant()
    def one_owner_per_task(self) -> None:
        owners = [t.ref for t in self.state.tokens if t.wait == "task"]
        assert len(owners) == len(set(owners))
        assert set(owners) == set(self.state.tasks)
        for task in self.state.tasks.values():
            (token,) = [t for t in self.state.tokens if t.id == task.token]
            assert token.ref == task.task_id

    @invariant()
    def ended_case_stays_ended(self) -> None:
        if self.state.status.ended:
            if self.ended_at_seq is None:
                self.ended_at_seq = self.state.seq
            assert self.state.seq == self.ended_at_seq
            assert not self.state.tokens
            assert not self.state.tasks
            assert not self.state.timers
        else:
            assert self.ended_at_seq is None

    @invariant()
    def no_token_at_an_end(self) -> None:
        for token in self.state.tokens:
            assert self.compiled.node(token.node).type is not NodeType.END
            assert token.wait, "a token was left ready after a step"

    @invariant()
    def timers_have_owners(self) -> None:
        token_ids = {t.id for t in self.state.tokens}
        clock_timers = {tid for ref in self.state.clocks.values() for tid in ref.timers}
        for timer_id, owner in self.state.timers.items():
            assert owner in token_ids or (owner == "" and timer_id in clock_timers)
        for token in self.state.tokens:
            if token.timer is not None:
                assert self.state.timers.get(token.timer) == token.id


class PasswordResetMachine(CaseMachine):
    """The reference SOP: SLA clocks, business-time timeouts, retries, a cancel handler."""

    compiled = compile_file(REPO / "sop_definitions" / "password_reset.yaml")
    signals = ("customer_confirmed", "withdrawn", "nobody_listens")
    inputs = {"request_text": "I forgot my password", "customer_tier": "gold",
              "email": "a@example.com"}


_SETTINGS = settings(max_examples=50, stateful_step_count=30, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow])
CaseMachine.TestCase.settings = _SETTINGS
PasswordResetMachine.TestCase.settings = _SETTINGS
TestCaseMachine = CaseMachine.TestCase
TestPasswordResetMachine = PasswordResetMachine.TestCase
