"""The advance loop (pure Python, no Prefect): claim runnable cases, run them, commit a batch.

One batch:

1. claim up to ``batch`` runnable cases with a lease (one short write transaction, or none:
   see "claiming ahead" below), then read their states and pending inputs (a read
   transaction, no write lock);
2. for each case, fold its pending inputs through the pure interpreter in arrival order;
   pure actions (engine.actions.registry.pure_action) run inside the step; every
   ``RunAction`` is executed in-process at once and its result fed back into ``step``
   until the case is quiescent (waiting or ended);
3. turn the batch into rows (audit hash chains, JSON), then write states, event log,
   audit, tasks, timers, outbox, incidents, sub-cases for the whole batch in ONE
   transaction (engine.store.apply), fenced by the lease; the write lock is held for the
   statements only.

Claiming ahead (``run_batch(..., claim_next=True)``, what a flow run that goes on to
another batch asks for): the transaction that commits a batch also leases the next one, so
a busy worker takes SQLite's write lock, and syncs the disk, once per batch instead of
twice, and writes the claimed cases' pages once. The next ``run_batch`` works on the cases
held (``holds_cases``); ``release_held`` gives them back (a worker that stops). A worker
that dies holding them loses their leases like those of a batch in flight: other workers
take the cases over when the leases end, and the fence keeps the late one out.

An input the interpreter refuses (TransitionNotAllowed) is recorded as ``rejected`` with
its reason and an audit entry; a stale input (a timer the case no longer has) as
``ignored``. A bug that makes ``step`` raise anything else fails only that case: its
input is rejected and an incident is raised, the rest of the batch commits.
"""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from engine.clock import Clock
from engine.errors import CareflowError, TransitionNotAllowed
from engine.heap import collector_paused
from engine.interpreter import codec
from engine.interpreter import types as t
from engine.interpreter.step import initial_state, step
from engine.runtime.actions import ActionRunner
from engine.runtime.sops import SopProvider
from engine.store.apply import AppliedEvent, CaseAdvance, commit_advances, prepare_commit
from engine.store.cases import NewCase, case_rows, pending_events
from engine.store.claims import ClaimedCase, claim_runnable_cases, release_cases, with_states
from engine.store.db import read_session

__all__ = ["Advancer", "BatchReport"]

_UNSET = object()

#: internal events (action results) one case may produce in one advance before it is cut
MAX_INTERNAL_EVENTS = 1000


@dataclass(frozen=True, slots=True)
class BatchReport:
    """What one advance batch did (also the Prefect artifact's content)."""

    claimed: int = 0
    committed: int = 0
    stale: int = 0
    events: int = 0
    rejected: int = 0
    actions: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


class _CaseRun:
    """Mutable working set of one case while its inputs are applied."""

    def __init__(self, claimed: ClaimedCase, state: t.CaseState) -> None:
        self.claimed = claimed
        self.state = state
        self.events: list[AppliedEvent] = []
        self.commands: list[Any] = []
        self.cmd_seq: list[int] = []
        self.sub_cases: list[dict[str, Any]] = []
        self.sub_events: list[dict[str, Any]] = []
        self.actions = 0
        self.rejected = 0
        self.raw_state: Any = _UNSET  # set when the state could not be decoded: keep it as is

    def emit(self, cmds: Sequence[Any]) -> None:
        self.commands.extend(cmds)
        self.cmd_seq.extend([self.state.seq] * len(cmds))


class Advancer:
    """Advances batches of runnable cases against one case database."""

    def __init__(self, engine: Engine, sops: SopProvider, clock: Clock, *, worker: str = "worker",
                 actions: ActionRunner | None = None, lease_s: float = 60.0) -> None:
        self.engine = engine
        self.sops = sops
        self.clock = clock
        self.worker = worker
        self.actions = actions or ActionRunner()
        self.lease_s = lease_s
        #: (the provider's context, the action runner, the context with its pure actions)
        self._ctx: tuple[Any, Any, Any] = (None, None, None)
        #: the cases leased ahead by the last batch's commit, for the next batch
        self._held: list[ClaimedCase] = []

    def context(self) -> Any:
        """The SOPs' StepContext with the action runner's pure actions as
        ``inline_actions`` (made again when the provider's context or the runner changes)."""
        base, runner, ctx = self._ctx
        current = self.sops.context
        if base is not current or runner is not self.actions:
            ctx = dataclasses.replace(current, inline_actions=self.actions.inline)
            self._ctx = (current, self.actions, ctx)
        return ctx

    # ---- one batch ----------------------------------------------------------------------

    @property
    def holds_cases(self) -> bool:
        """Cases are leased to this advancer for its next batch (claimed ahead)."""
        return bool(self._held)

    def release_held(self) -> int:
        """Give back the leases of the cases claimed ahead (a worker that stops); returns
        how many. They are runnable again at once."""
        held, self._held = self._held, []
        if held:
            with Session(self.engine) as session, session.begin():
                release_cases(session, self.worker, [c.id for c in held], self.clock.now())
        return len(held)

    def run_batch(self, batch: int = 500, *, claim_next: bool = False) -> BatchReport:
        """Claim, advance and commit up to ``batch`` cases; returns what happened.

        The batch is the cases claimed ahead by the batch before, if any, else a claim of
        its own. ``claim_next``: its commit also leases the next batch (see the module's
        "claiming ahead"). The cyclic collector is paused for the batch (engine.heap)."""
        with collector_paused():
            return self._run_batch(batch, claim_next)

    def _claim(self, batch: int, now: datetime) -> list[ClaimedCase]:
        """The cases held from the last batch's commit, else up to ``batch`` claimed now."""
        held, self._held = self._held, []
        if held:
            return held
        with Session(self.engine) as session, session.begin():
            return claim_runnable_cases(session, self.worker, batch, self.lease_s, now,
                                        with_state=False)

    def _run_batch(self, batch: int, claim_next: bool) -> BatchReport:
        started = time.perf_counter()
        now = self.clock.now()
        leased = self._claim(batch, now)
        if not leased:
            return BatchReport(seconds=time.perf_counter() - started)
        # states and inputs are read after the claim committed: the write lock (SQLite)
        # is held for the lease update alone; the lease keeps other workers off these cases
        with read_session(self.engine) as session, session.begin():
            claimed = with_states(session, leased)
            pending = pending_events(session, [c.id for c in claimed])
        ctx = self.context()
        runs = [self._advance_safely(c, pending.get(c.id, []), now, ctx) for c in claimed]
        advances = [self._to_advance(r) for r in runs]
        try:
            # rows computed before the write lock is taken (engine.store.apply)
            prepared = prepare_commit(advances, self.engine.dialect.name, now, codec)
            with Session(self.engine) as session, session.begin():
                result = commit_advances(session, advances, self.worker, now, codec,
                                         prepared=prepared)
                ahead = (claim_runnable_cases(session, self.worker, batch, self.lease_s, now,
                                              with_state=False) if claim_next else [])
            self._held = ahead  # (only once the transaction that leased them committed)
        except Exception:
            with Session(self.engine) as session, session.begin():
                release_cases(session, self.worker, [c.id for c in claimed], now)
            raise
        return BatchReport(
            claimed=len(claimed), committed=len(result.committed), stale=len(result.stale),
            events=sum(len(r.events) for r in runs), rejected=sum(r.rejected for r in runs),
            actions=sum(r.actions for r in runs), counts=dict(result.counts),
            seconds=time.perf_counter() - started,
        )

    # ---- one case -----------------------------------------------------------------------

    def _initial(self, compiled: Any, c: ClaimedCase) -> t.CaseState:
        state = initial_state(compiled, c.id)
        if c.parent_case_id is not None:
            state = dataclasses.replace(state, parent=(c.parent_case_id, c.parent_call_id or ""))
        return state

    def _advance(self, c: ClaimedCase, pending: Sequence[Any], now: datetime, ctx: Any) -> _CaseRun:
        compiled = self.sops.by_hash(c.sop_hash, engine=self.engine)
        state = codec.state_from_json(c.state) if c.state is not None else self._initial(compiled, c)
        run = _CaseRun(c, state)
        for row in pending:
            try:
                event = codec.event_from_json(row.event)
            except Exception as exc:  # noqa: BLE001 -- an undecodable input is rejected, kept
                self._reject(run, row.id, row.kind, row.event, row.actor, f"cannot decode: {exc}")
                continue
            if isinstance(event, t.TimerFired):
                self._note_lateness(run, event)
            self._apply(run, compiled, event, now, ctx, pending_id=row.id, event_json=row.event,
                        actor=row.actor)
        return run

    def _advance_safely(self, c: ClaimedCase, pending: Sequence[Any], now: datetime,
                        ctx: Any) -> _CaseRun:
        """``_advance``; a case that cannot run at all (unknown SOP version, corrupt state)
        gets its inputs rejected with the reason and an incident, instead of failing the batch."""
        try:
            return self._advance(c, pending, now, ctx)
        except CareflowError as exc:
            state = t.CaseState(case_id=c.id, sop_id=c.sop_id, sop_version=c.sop_version,
                                sop_hash=c.sop_hash, seq=c.seq)
            if c.state is not None:
                try:
                    state = codec.state_from_json(c.state)
                except Exception:  # noqa: BLE001 -- keep the minimal state; the incident says why
                    pass
            run = _CaseRun(c, state)
            run.raw_state = c.state
            for i, row in enumerate(pending):
                self._reject(run, row.id, row.kind, row.event, row.actor, str(exc), incident=i == 0)
            return run

    def _note_lateness(self, run: _CaseRun, event: t.TimerFired) -> None:
        lateness = (event.fired_at - event.due_at).total_seconds()
        if lateness >= 1.0:
            run.emit([t.Audit("timer_misfire", None, "timer",
                              {"timer": event.timer_id, "due_at": event.due_at.isoformat(),
                               "fired_at": event.fired_at.isoformat(),
                               "lateness_s": round(lateness, 3), "policy": "fire_once"})])

    def _reject(self, run: _CaseRun, pending_id: int | None, kind: str, event_json: Any,
                actor: str | None, error: str, *, incident: bool = False) -> None:
        run.rejected += 1
        run.events.append(AppliedEvent(pending_id, None, kind, event_json, actor, error))
        run.emit([t.Audit("event_rejected", None, actor or "system", {"event": kind, "error": error})])
        if incident:
            run.emit([t.RaiseIncident(node="(engine)", error=f"{kind}: {error}", attempt=0)])

    def _apply(self, run: _CaseRun, compiled: Any, event: Any, now: datetime, ctx: Any, *,
               pending_id: int | None, event_json: Any, actor: str | None) -> None:
        queue: deque[tuple[Any, int | None, Any, str | None]] = deque(
            [(event, pending_id, event_json, actor)])
        internal = 0
        while queue:
            ev, pid, ev_json, who = queue.popleft()
            kind = type(ev).__name__
            if ev_json is None:
                ev_json = codec.event_to_json(ev)
            try:
                new_state, cmds = step(compiled, run.state, ev, now, ctx)
            except TransitionNotAllowed as exc:
                self._reject(run, pid, kind, ev_json, who, str(exc))
                continue
            except CareflowError as exc:
                self._reject(run, pid, kind, ev_json, who, str(exc), incident=True)
                continue
            if new_state is run.state and not cmds:
                run.events.append(AppliedEvent(pid, None, kind, ev_json, who, None))  # ignored
                continue
            run.state = new_state
            run.events.append(AppliedEvent(pid, new_state.seq, kind, ev_json, who))
            run.emit(cmds)
            for cmd in cmds:
                if isinstance(cmd, t.RunAction):
                    internal += 1
                    run.actions += 1
                    if internal > MAX_INTERNAL_EVENTS:
                        raise CareflowError(f"case {run.state.case_id}: more than "
                                            f"{MAX_INTERNAL_EVENTS} action results in one advance")
                    queue.append((self.actions.run(cmd, run.state, now), None, None, "system"))
                elif isinstance(cmd, t.StartSubCase):
                    self._sub_case(run, cmd, now)

    def _sub_case(self, run: _CaseRun, cmd: t.StartSubCase, now: datetime) -> None:
        child = self.sops.by_id(cmd.sop)
        st = run.state
        started = t.CaseStarted(data=cmd.data, priority=st.priority, tier=st.tier,
                                channel=st.channel, customer_id=st.customer_id, actor="system")
        rows, events = case_rows([NewCase(
            sop_id=child.id, sop_hash=child.hash, sop_version=str(child.version),
            event_json=codec.event_to_json(started), case_id=cmd.call_id,
            priority=st.priority, tier=st.tier, channel=st.channel, customer_id=st.customer_id,
            parent_case_id=st.case_id, parent_call_id=cmd.call_id)], now)
        run.sub_cases.extend(rows)
        run.sub_events.extend(events)

    def _to_advance(self, run: _CaseRun) -> CaseAdvance:
        c = run.claimed
        return CaseAdvance(
            case_id=c.id, expected_version=c.version, state=run.state,
            state_json=(codec.state_to_json(run.state) if run.raw_state is _UNSET
                        else run.raw_state), events=tuple(run.events),
            commands=tuple(run.commands), event_seq_of_command=tuple(run.cmd_seq),
            audit_seq=c.audit_seq, audit_hash=c.audit_hash, sub_cases=tuple(run.sub_cases),
            sub_case_events=tuple(run.sub_events), claimed_meta=c.meta,
        )
