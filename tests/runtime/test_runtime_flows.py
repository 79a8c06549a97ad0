"""End to end through the REAL Prefect flows: the password_reset SOP's three paths, SLA
timers on a simulated clock, the outbox, incidents and their retry (SQLite file and PG)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.errors import ActionFailed, RunError
from engine.runtime import ops
from engine.runtime.registry import unregister_runtime
from engine.runtime.sops import SopProvider
from engine.runtime.worker import make_runtime, run_until_idle
from engine.store import audit
from engine.store.models import AuditRow, CaseEventRow, CaseRow, IncidentRow, OutboxRow, TimerRow
from engine.store.tasks import list_tasks

pytestmark = pytest.mark.usefixtures("prefect_harness")

SELF = {"request_text": "I forgot my password, please send a reset link", "email": "a@example.com"}
LOCKED = {"request_text": "I am locked out and have no access to my recovery e-mail",
          "email": "b@example.com"}


@pytest.fixture
def rt(engine, clock, library_sops):  # noqa: ANN001, ANN201
    runtime = make_runtime(engine, clock, sops=library_sops)
    yield runtime
    unregister_runtime(runtime.key)


def _case(rt, cid):  # noqa: ANN001, ANN202
    with Session(rt.engine) as s:
        return s.get(CaseRow, cid)


def _open_task(rt, cid):  # noqa: ANN001, ANN202
    with Session(rt.engine) as s:
        (task,) = list_tasks(s, case_id=cid)
        return task


def test_the_three_paths_of_password_reset(rt) -> None:  # noqa: ANN001
    self_service = ops.start_case(rt, "password_reset", SELF, customer_id="cust-1")
    level1 = ops.start_case(rt, "password_reset", LOCKED)
    level2 = ops.start_case(rt, "password_reset", {**LOCKED, "customer_tier": "gold"})
    rep = run_until_idle(runtime=rt, use_prefect=True)
    assert rep.cases == 3 and rep.flow_runs >= 1
    assert _case(rt, self_service).level == "e"
    assert _open_task(rt, level1).node == "verify_identity"

    ops.send_event(rt, self_service, "customer_confirmed", {"confirmed": True, "channel": "web"})
    ops.complete_task(rt, _open_task(rt, level1).id, "verified", {"verify_outcome": "verified"},
                      agent="ann")
    ops.complete_task(rt, _open_task(rt, level2).id, "escalate", {"verify_outcome": "escalate"},
                      agent="ann")
    run_until_idle(runtime=rt, use_prefect=True)
    fix = _open_task(rt, level2)
    assert (fix.node, fix.level) == ("specialist_fix", "L2")
    ops.complete_task(rt, fix.id, "fixed", {"fix_outcome": "fixed"}, agent="bob",
                      knowledge={"kind": "none", "reason": "new failure mode"})
    run_until_idle(runtime=rt, use_prefect=True)

    got = {cid: (_case(rt, cid).status, _case(rt, cid).outcome)
           for cid in (self_service, level1, level2)}
    assert got == {self_service: ("resolved", "self_service"), level1: ("resolved", "resolved_l1"),
                   level2: ("resolved", "resolved_l2")}
    last_seq = {cid: _case(rt, cid).seq for cid in got}
    with Session(rt.engine) as s:
        for cid in got:
            trail = list(s.scalars(select(AuditRow).where(AuditRow.case_id == cid)
                                   .order_by(AuditRow.seq)))
            assert trail[0].kind == "case_started" and "case_ended" in {a.kind for a in trail}
            assert list(audit.check_trails(s, [cid])) == []
            seqs = s.scalars(select(CaseEventRow.seq).where(CaseEventRow.case_id == cid,
                                                            CaseEventRow.seq.is_not(None))
                             .order_by(CaseEventRow.seq)).all()
            assert seqs == list(range(1, last_seq[cid] + 1))


def test_prefect_records_the_batches_and_their_artifact(rt) -> None:  # noqa: ANN001
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.sorting import ArtifactSort, FlowRunSort

    ops.start_case(rt, "password_reset", LOCKED)
    run_until_idle(runtime=rt, use_prefect=True)
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(limit=200, sort=FlowRunSort.START_TIME_DESC)
        names = {client.read_flow(r.flow_id).name for r in runs}
        # the typed client sends null filters, which this server version refuses: ask plainly
        artifacts = client._client.post("/artifacts/filter", json={
            "limit": 50, "offset": 0, "sort": ArtifactSort.ID_DESC.value}).json()
    assert "careflow-advance-batch" in names
    assert any(a["key"] == "careflow-batch" and "claimed" in (a["data"] or "") for a in artifacts)


def test_the_flow_runs_of_a_worker_share_one_prefect_client() -> None:
    """prefect_settings holds one API client for its block (the session's here): a flow
    run does not build its own (a TLS context from the CA bundle and a version check)."""
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.context import SyncClientContext

    seen = []

    @flow(name="careflow-test-client", persist_result=False)
    def probe() -> None:
        seen.append(get_client(sync_client=True))

    probe()
    probe()
    held = SyncClientContext.get()
    assert held is not None and seen == [held.client, held.client]


def test_one_advance_flow_run_commits_several_batches_while_cases_stay_runnable(rt) -> None:  # noqa: ANN001
    from engine.runtime import flows

    ids = [ops.start_case(rt, "password_reset", LOCKED) for _ in range(5)]
    out = flows.advance_batch(rt.key, 2, 2)  # two batches of two, then the run ends
    assert (out["batches"], out["claimed"], out["committed"]) == (2, 4, 4)
    out = flows.advance_batch(rt.key, 2, 10)  # one case left: a short batch drains the queue
    assert (out["batches"], out["claimed"]) == (1, 1)
    assert flows.advance_batch(rt.key, 2, 10) == {"batches": 0, "claimed": 0}
    assert all(_open_task(rt, cid).node == "verify_identity" for cid in ids)


def test_an_advance_run_yields_to_due_timers_and_to_its_time_budget(rt, clock) -> None:  # noqa: ANN001
    """A run takes batch after batch only while nothing else waits: after a batch that
    leaves a timer due (once it has worked ``yield_after_s``), and once it has worked
    ``max_s`` seconds, it ends (the next pass fires the timers first)."""
    from engine.runtime import flows
    from engine.runtime.due import has_due_timers

    ops.start_case(rt, "password_reset", LOCKED)
    assert flows.advance_batch(rt.key, 10, 10)["claimed"] == 1  # its SLA timers are armed
    clock.advance(timedelta(days=3))
    assert has_due_timers(rt)
    for _ in range(9):
        ops.start_case(rt, "password_reset", LOCKED)
    out = flows.advance_batch(rt.key, 2, 10)
    assert (out["batches"], out["claimed"]) == (1, 2)  # a timer is due: the run ends
    assert rt.advancer.holds_cases  # holding the next batch, leased in its commit: ...
    out = flows.advance_batch(rt.key, 2, 2, yield_after_s=60.0)  # not yet: it goes on
    assert (out["batches"], out["claimed"]) == (2, 4) and has_due_timers(rt)  # ... run first
    assert not rt.advancer.holds_cases  # (its last batch leased nothing ahead)
    flows.fire_due_timers(rt.key)
    out = flows.advance_batch(rt.key, 1, 10, max_s=1e-9)  # the budget is spent at once
    assert out["batches"] == 1
    rep = run_until_idle(runtime=rt, use_prefect=True)
    assert rep.cases >= 3 and not has_due_timers(rt)


def test_invalid_task_input_is_refused_with_what_is_allowed(rt) -> None:  # noqa: ANN001
    cid = ops.start_case(rt, "password_reset", LOCKED)
    run_until_idle(runtime=rt, use_prefect=False)
    task = _open_task(rt, cid)
    with pytest.raises(RunError, match="outcome 'verifed' is not allowed.*did you mean 'verified'"):
        ops.complete_task(rt, task.id, "verifed", {"verify_outcome": "verified"}, agent="ann")
    with pytest.raises(RunError, match="needs field\\(s\\) verify_outcome"):
        ops.complete_task(rt, task.id, "verified", {}, agent="ann")
    with pytest.raises(RunError, match="'maybe' is not one of verified, escalate"):
        ops.complete_task(rt, task.id, "verified", {"verify_outcome": "maybe"}, agent="ann")
    assert _open_task(rt, cid).status == "open"


def test_sla_timers_fire_on_the_simulated_clock_and_escalate(rt, clock) -> None:  # noqa: ANN001
    cid = ops.start_case(rt, "password_reset", LOCKED)
    run_until_idle(runtime=rt, use_prefect=True)
    with Session(rt.engine) as s:
        armed = s.scalar(select(func.count()).select_from(TimerRow)
                         .where(TimerRow.case_id == cid, TimerRow.status == "pending"))
    assert armed >= 2
    clock.advance(timedelta(days=1))
    rep = run_until_idle(runtime=rt, use_prefect=True)
    assert rep.timers_fired >= 2
    case = _case(rt, cid)
    assert case.level in ("L2", "specialist")
    with Session(rt.engine) as s:
        fired = s.scalars(select(TimerRow).where(TimerRow.status == "fired")).all()
        assert fired and all(t.lateness_s is not None and t.lateness_s >= 0 for t in fired)
        kinds = s.scalars(select(AuditRow.kind).where(AuditRow.case_id == cid)).all()
    assert "timer_misfire" in kinds  # fired after a 1-day jump: lateness recorded


def test_outbox_sends_through_connectors_and_never_drops_an_unserved_channel(rt) -> None:  # noqa: ANN001
    from connectors import registry
    from connectors.memory import MemoryConnector

    registry.load_connectors()
    registry.register("mem-email-test", MemoryConnector, replace=True, channels=("testmail",))
    cid = ops.start_case(rt, "password_reset", LOCKED)
    run_until_idle(runtime=rt, use_prefect=False)
    now = rt.clock.now()
    with Session(rt.engine) as s, s.begin():
        for mid, channel in (("m-mail", "testmail"), ("m-pigeon", "pigeon")):
            s.add(OutboxRow(id=mid, case_id=cid, idempotency_key=mid, channel=channel,
                            payload={"to": "b@example.com", "subject": "hi", "body": "x"},
                            status="pending", attempts=0, next_attempt_at=now, created_at=now))
    try:
        run_until_idle(runtime=rt, use_prefect=True)
        with Session(rt.engine) as s:
            mail, pigeon = s.get(OutboxRow, "m-mail"), s.get(OutboxRow, "m-pigeon")
        assert (mail.status, mail.attempts) == ("sent", 1)
        assert registry.default_registry.for_channel("testmail").sent[0].idempotency_key == "m-mail"
        assert pigeon.status == "failed" and "no connector serves channel 'pigeon'" in pigeon.last_error
    finally:
        registry.default_registry.unregister("mem-email-test")


LOOKUP_SOP = """\
kind: sop
id: link_demo
version: "1.0.0"
title: Send a link
data:
  email: {type: string, input: true}
  link: {type: object}
nodes:
  start: {type: start, next: send}
  send:
    type: action
    title: Send the link
    action: send_reset_link
    inputs:
      to: ${ email }
    set:
      link: result
    next: done
  done: {type: end, outcome: sent}
"""


class FlakyLinkService:
    """``send_reset_link`` against a service that is down until ``up`` is set."""

    def __init__(self) -> None:
        self.up = False
        self.calls = 0

    def __call__(self, inputs, ctx):  # noqa: ANN001, ANN204
        self.calls += 1
        if not self.up:
            raise ActionFailed("link service is down", retryable=False)
        return {"sent": True, "to": inputs["to"]}


def test_a_failed_action_raises_an_incident_and_its_retry_redelivers_it(engine, clock,
                                                                       tmp_path: Path) -> None:  # noqa: ANN001
    from engine.actions.registry import ActionRegistry
    from engine.runtime.actions import ActionRunner

    (tmp_path / "link.yaml").write_text(LOOKUP_SOP)
    service = FlakyLinkService()
    registry = ActionRegistry()
    registry.register("send_reset_link", service)
    rt = make_runtime(engine, clock, sops=SopProvider(tmp_path))
    rt.advancer.actions = ActionRunner(registry)
    try:
        cid = ops.start_case(rt, "link_demo", {"email": "c@example.com"})
        run_until_idle(runtime=rt, use_prefect=True)
        with Session(rt.engine) as s:
            (incident,) = s.scalars(select(IncidentRow)).all()
        assert incident.status == "open" and "link service is down" in incident.error
        assert _case(rt, cid).status == "open"
        service.up = True
        ops.retry_incident(rt, incident.id, actor="op")
        run_until_idle(runtime=rt, use_prefect=True)
        case = _case(rt, cid)
        assert (case.status, case.outcome) == ("resolved", "sent")
        assert case.state["data"]["link"] == {"sent": True, "to": "c@example.com"}
        assert service.calls == 2  # the failed action once more; nothing else re-ran
        with pytest.raises(RunError, match="is retried, not open"):
            ops.retry_incident(rt, incident.id)
    finally:
        unregister_runtime(rt.key)


def test_billing_hands_a_task_back_to_level_1_with_the_article(rt) -> None:  # noqa: ANN001
    from engine.errors import TaskConflict

    cid = ops.start_case(rt, "billing_question", {"request_text": "Why is line 3 on my invoice?",
                                                  "customer_id": "K-1"})
    run_until_idle(runtime=rt, use_prefect=False)
    triage = _open_task(rt, cid)
    ops.complete_task(rt, triage.id, "to_billing", {"topic": "other"}, agent="ann")
    run_until_idle(runtime=rt, use_prefect=False)
    review = _open_task(rt, cid)
    assert (review.node, review.level, _case(rt, cid).level) == ("billing_review", "L2", "L2")

    with pytest.raises(RunError, match="requires a knowledge outcome"):
        ops.hand_back_task(rt, review.id, "L1 can answer this", agent="bea")
    with pytest.raises(RunError, match="known, shallower level"):
        ops.hand_back_task(rt, review.id, "x", agent="bea", to_level="specialist",
                           knowledge={"kind": "linked", "article": "KB-EN-BILL-1"})
    ops.hand_back_task(rt, review.id, "L1 can answer this", agent="bea",
                       knowledge={"kind": "linked", "article": "KB-EN-BILL-1"})
    with pytest.raises(TaskConflict):  # queued once; the interpreter cancels the task
        run_until_idle(runtime=rt, use_prefect=False)
        ops.hand_back_task(rt, review.id, "again", agent="bea",
                           knowledge={"kind": "none", "reason": "x"})
    back = _open_task(rt, cid)
    assert (back.node, back.level) == ("l1_triage", "L1")
    case = _case(rt, cid)
    assert case.level == "L1" and case.state["hand_backs"] == 1
    assert case.state["knowledge"] == {"kind": "linked", "article": "KB-EN-BILL-1"}
    with Session(rt.engine) as s:
        kinds = [a.kind for a in s.scalars(select(AuditRow).where(AuditRow.case_id == cid)
                                           .order_by(AuditRow.seq))]
    assert "handed_back" in kinds


def test_a_task_without_a_hand_back_outcome_says_so(rt) -> None:  # noqa: ANN001
    cid = ops.start_case(rt, "password_reset", LOCKED)
    run_until_idle(runtime=rt, use_prefect=False)
    with pytest.raises(RunError, match="no 'hand_back' outcome.*outcomes: verified, escalate"):
        ops.hand_back_task(rt, _open_task(rt, cid).id, "x", agent="ann")


def test_a_lingering_advance_run_takes_work_that_arrives_while_it_waits(rt) -> None:  # noqa: ANN001
    """A worker's flow run waits up to linger_s for new work (a burst that arrives after the
    queue drained costs no new flow run); without linger it ends when the queue is empty."""
    import threading

    from engine.runtime import flows

    first = ops.start_case(rt, "password_reset", SELF)
    late: list[str] = []

    def arrive_after_the_first_batch() -> None:
        while _case(rt, first).seq == 0:
            threading.Event().wait(0.01)
        late.append(ops.start_case(rt, "password_reset", LOCKED))

    arrival = threading.Thread(target=arrive_after_the_first_batch)
    arrival.start()
    try:
        out = flows.advance_batch(rt.key, 500, 10, linger_s=5.0)
    finally:
        arrival.join()
    assert (out["batches"], out["claimed"]) == (2, 2)  # both cases, one flow run
    assert _open_task(rt, late[0]).node == "verify_identity"

    ops.start_case(rt, "password_reset", SELF)
    out = flows.advance_batch(rt.key, 500, 10)  # no linger: ends once the queue is empty
    assert (out["batches"], out["claimed"]) == (1, 1)
