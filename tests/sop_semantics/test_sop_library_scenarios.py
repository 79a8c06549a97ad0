"""The library SOPs run: key paths of each, driven through the pure interpreter with the
real organisation (levels, calendars, SLA policies). Action results are given by the test
(the actions themselves are specified in tests/interpreter); everything else is real."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from sop_semantics_helpers import HERE

from engine.interpreter import StepContext, initial_state, step
from engine.interpreter.types import (
    ActionCompleted,
    CaseEnded,
    CaseStarted,
    CaseState,
    Command,
    CreateTask,
    RaiseIncident,
    RunAction,
    ScheduleTimer,
    SendMessage,
    Signal,
    StartSubCase,
    SubCaseEnded,
    TaskCompleted,
    TimerFired,
)
from engine.sla import BusinessCalendar
from engine.sop.compiler import CompiledSop
from engine.sop.library import Library
from engine.sop.pipeline import compile_file

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday morning


@pytest.fixture(scope="module")
def org(library: Library) -> StepContext:
    calendars = {cid: BusinessCalendar.from_spec(spec, library.root / "org")
                 for cid, spec in library.calendars.items()}
    return StepContext(calendars=calendars, policies=library.policies, levels=library.levels,
                       default_calendar="office_nl")


@dataclass
class Case:
    """One case of a library SOP, moved by events; keeps every command."""

    compiled: CompiledSop
    ctx: StepContext
    now: datetime = T0
    state: CaseState = field(init=False)
    commands: list[Command] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.state = initial_state(self.compiled, "C1")

    def send(self, event: Any) -> None:
        self.state, out = step(self.compiled, self.state, event, self.now, self.ctx)
        self.commands.extend(out)

    def start(self, tier: str | None = None, channel: str | None = None, **data: Any) -> None:
        self.send(CaseStarted(data=data, tier=tier, channel=channel))

    def at(self) -> list[str]:
        return sorted(t.node for t in self.state.tokens)

    def complete(self, node: str, outcome: str, knowledge: Any = None, **fields: Any) -> None:
        task = next(t.task_id for t in self.state.tasks.values() if t.node == node)
        self.send(TaskCompleted(task, outcome, fields, knowledge=knowledge))

    def finish(self, node: str, result: Any) -> None:
        action = [c for c in self.commands if isinstance(c, RunAction) and c.node == node][-1]
        self.send(ActionCompleted(action.action_id, result))

    def timeout(self, node: str) -> None:
        live = set(self.state.timers)
        timer = [c for c in self.commands if isinstance(c, ScheduleTimer) and c.node == node
                 and c.timer_id in live][-1]
        self.now = max(self.now, timer.due_at)
        self.send(TimerFired(timer.timer_id, timer.due_at, self.now))

    def signal(self, name: str, **payload: Any) -> None:
        self.send(Signal(name, payload))

    def messages(self, template: str) -> list[SendMessage]:
        return [c for c in self.commands if isinstance(c, SendMessage) and c.template == template]

    def ended(self) -> CaseEnded:
        (end,) = [c for c in self.commands if isinstance(c, CaseEnded)]
        return end

    def value(self, name: str) -> Any:
        return self.state.data[name]


def case(library: Library, org: StepContext, sop_id: str) -> Case:
    return Case(library.sops[sop_id], org)


KNOWLEDGE = {"kind": "drafted", "article": "KB-DRAFT-7"}


def test_complaint_reminds_three_times_then_closes(library: Library, org: StepContext) -> None:
    c = case(library, org, "complaint_handling")
    c.start(tier="gold", request_text="Broken on arrival", email="a@example.com")
    assert c.value("priority") == "high"  # gold customers get a higher priority
    assert c.messages("complaint_acknowledgement")
    c.complete("l1_review", "need_information", severity="major")
    assert c.at() == ["await_reply"]
    for expected in (1, 2, 3):
        c.timeout("await_reply")
        assert len(c.messages("complaint_reminder")) == expected
        assert c.value("reminders_sent") == expected
        assert c.at() == ["await_reply"]
    c.timeout("await_reply")
    assert c.messages("complaint_closed_no_reply")
    end = c.ended()
    assert (end.outcome, end.status) == ("no_customer_reply", "closed")


def test_complaint_reply_resumes_and_escalation_hands_back(library: Library,
                                                            org: StepContext) -> None:
    c = case(library, org, "complaint_handling")
    c.start(request_text="Wrong invoice twice", email="b@example.com")
    c.complete("l1_review", "need_information", severity="minor")
    c.signal("customer_replied", body="Here is the order number")
    assert c.at() == ["l1_follow_up"]
    assert c.value("customer_reply")["body"] == "Here is the order number"
    c.complete("l1_follow_up", "escalate")
    assert c.at() == ["l2_investigate"]
    assert [t.level for t in c.commands if isinstance(t, CreateTask)][-1] == "L2"
    c.complete("l2_investigate", "resolved", knowledge=KNOWLEDGE, root_cause="billing_error",
               resolution_summary="Credited the double charge")
    assert c.messages("complaint_resolution")[0].body == "Credited the double charge"
    assert (c.ended().outcome, c.ended().status) == ("resolved", "resolved")
    assert c.state.level == "L1"  # handed back with the knowledge


def test_complaint_handlers_change_priority_and_cancel(library: Library,
                                                       org: StepContext) -> None:
    c = case(library, org, "complaint_handling")
    c.start(request_text="Rude agent", email="c@example.com")
    c.signal("priority_changed", priority="critical")
    assert c.value("priority") == "critical"
    assert c.at() == ["l1_review"]  # non-interrupting
    c.signal("withdrawn")
    assert (c.ended().outcome, c.ended().status) == ("withdrawn", "cancelled")


def test_billing_refund_runs_identity_check_then_billing(library: Library,
                                                         org: StepContext) -> None:
    c = case(library, org, "billing_question")
    c.start(request_text="Please refund the double payment", email="d@example.com",
            customer_id="K-100")
    c.complete("l1_triage", "to_billing", topic="refund")
    (sub,) = [cmd for cmd in c.commands if isinstance(cmd, StartSubCase)]
    assert (sub.sop, dict(sub.data)) == ("identity_check",
                                         {"email": "d@example.com", "customer_id": "K-100"})
    c.send(SubCaseEnded(sub.call_id, "verified", "resolved", {"method": "one_time_code"}))
    assert c.value("identity_verified") is True
    assert c.at() == ["billing_review"]
    c.complete("billing_review", "corrected", knowledge=KNOWLEDGE, answer="Refunded 20 EUR",
               correction_eur=20.0)
    assert c.messages("billing_answer")[0].body == "Refunded 20 EUR"
    assert c.ended().outcome == "answered"


def test_billing_invoice_question_answered_at_l1(library: Library, org: StepContext) -> None:
    c = case(library, org, "billing_question")
    c.start(request_text="What is line 3?", email="e@example.com", customer_id="K-101")
    c.complete("l1_triage", "answered", topic="invoice_explanation", answer="Line 3 is VAT")
    assert c.messages("billing_answer")[0].body == "Line 3 is VAT"
    assert not [cmd for cmd in c.commands if isinstance(cmd, StartSubCase)]
    assert c.ended().outcome == "answered"


@pytest.mark.parametrize(("dealer", "messages"), [("D-17", 1), ("", 0)])
def test_warranty_claim_checks_in_parallel_and_informs_the_dealer_only_if_known(
        library: Library, org: StepContext, dealer: str, messages: int) -> None:
    c = case(library, org, "warranty_claim")
    c.start(channel="letter", request_text="My kettle broke", postal_address="Main St 1",
            dealer_id=dealer)
    c.complete("document_check", "complete", documents_complete=True, serial_number="SN1",
               purchase_date=datetime(2025, 6, 1, tzinfo=UTC))
    assert c.at() == ["check_proof", "check_serial"]
    c.complete("check_serial", "done", serial_valid=True)
    assert c.at() == ["check_proof", "checks_done"]
    c.complete("check_proof", "done", proof_valid=True)
    assert len(c.messages("warranty_dealer_notice")) == messages
    assert c.value("within_warranty") is True
    assert c.messages("warranty_approved")
    assert c.ended().outcome == "approved"


def test_warranty_claim_closes_after_two_unanswered_document_requests(
        library: Library, org: StepContext) -> None:
    c = case(library, org, "warranty_claim")
    c.start(channel="fax", request_text="Broken", postal_address="Main St 2")
    c.complete("document_check", "incomplete", documents_complete=False)
    c.timeout("await_documents")
    c.timeout("await_documents")
    assert len(c.messages("warranty_missing_documents")) == 2
    assert c.messages("warranty_closed_incomplete")
    assert (c.ended().outcome, c.ended().status) == ("documents_missing", "closed")


def test_chat_confident_answer_confirmed_is_a_deflection(library: Library,
                                                         org: StepContext) -> None:
    c = case(library, org, "general_enquiry_chat")
    c.start(channel="chat", request_text="How do I change my address?")
    c.finish("kb_answer", {"confident": True, "reply_text": "Go to Settings > Address.",
                           "suggestions": ["KB-12"]})
    assert c.messages("kb_answer")[0].body == "Go to Settings > Address."
    c.signal("customer_replied", body="yes thanks")
    c.finish("record_reply", {"outcome": "confirmed", "solved": True})
    assert (c.ended().outcome, c.ended().status) == ("resolved_confirmed", "resolved")


def test_chat_not_confident_goes_to_l1_with_suggestions(library: Library,
                                                        org: StepContext) -> None:
    c = case(library, org, "general_enquiry_chat")
    c.start(channel="chat", request_text="Something unusual")
    c.finish("kb_answer", {"confident": False, "reply_text": None, "suggestions": ["KB-1"]})
    assert c.at() == ["l1_chat"]
    assert c.value("suggestions") == ["KB-1"]
    assert c.state.level == "L1"
    c.complete("l1_chat", "answered", answer="Here you go")
    assert c.ended().outcome == "resolved_l1"


def test_chat_without_confirmation_is_a_potential_deflection(library: Library,
                                                             org: StepContext) -> None:
    c = case(library, org, "general_enquiry_chat")
    c.start(channel="chat", request_text="Opening hours?")
    c.finish("kb_answer", {"confident": True, "reply_text": "9 to 5", "suggestions": []})
    c.timeout("ask_solved")
    c.finish("record_potential", {"outcome": "potential", "solved": False})
    assert (c.ended().outcome, c.ended().status) == ("resolved_potential", "closed")


def test_software_update_notice_closes_itself_without_questions(library: Library,
                                                                org: StepContext) -> None:
    c = case(library, org, "software_update_notice")
    c.start(channel="system", email="f@example.com", product="Router X",
            software_version="2.4.1")
    (notice,) = c.messages("software_update_notice")
    assert notice.subject == "Update 2.4.1 for your Router X"
    c.timeout("await_questions")
    assert (c.ended().outcome, c.ended().status) == ("informed", "closed")


def test_identity_check_by_one_time_code(library: Library, org: StepContext) -> None:
    c = case(library, org, "identity_check")
    c.start(email="g@example.com", customer_id="K-102")
    c.signal("identity_code_entered", valid=True)
    assert c.value("method") == "one_time_code"
    assert c.ended().outcome == "verified"


def test_implicit_termination_pattern_ends_when_the_last_path_ends(org: StepContext) -> None:
    c = Case(compile_file(HERE / "valid" / "implicit_termination.yaml"), org)
    c.start()
    assert c.messages("satisfaction_survey")  # the survey path ended at once
    assert not [cmd for cmd in c.commands if isinstance(cmd, CaseEnded)]
    c.finish("archive", {"archived": True})
    assert (c.ended().outcome, c.ended().status) == ("archived", "closed")


def test_general_enquiry_goes_to_l2_and_comes_back_with_knowledge(library: Library,
                                                                  org: StepContext) -> None:
    c = case(library, org, "general_enquiry")
    c.start(channel="letter", subject="Recycling", request_text="Do you take back old devices?")
    c.finish("suggest_articles", {"suggestions": ["KB-3"], "hits": []})
    assert c.value("suggestions") == ["KB-3"]
    c.complete("l1_answer", "needs_specialist")
    c.complete("l2_answer", "answered", knowledge=KNOWLEDGE, answer="Yes, at every store.")
    (answer,) = c.messages("general_answer")
    assert (answer.subject, answer.body) == ("Re: Recycling", "Yes, at every store.")
    assert answer.channel is None  # the customer's own channel (a letter here)
    assert c.state.level == "L1"
    assert c.ended().outcome == "answered"


@pytest.mark.parametrize("sop_id", ["complaint_handling", "billing_question", "warranty_claim",
                                    "password_reset", "general_enquiry", "general_enquiry_chat",
                                    "software_update_notice"])
def test_a_phone_contact_without_email_starts_cleanly(library: Library, org: StepContext,
                                                      sop_id: str) -> None:
    """Only what the intake knows of a phone call: no e-mail, no form fields."""
    c = case(library, org, sop_id)
    spec = library.sops[sop_id].spec
    offered = {"request_text": "Please call me back", "subject": "", "body": "Please call me back",
               "channel": "phone", "phone": "+31201234567", "customer_id": "K-1",
               "customer_tier": "standard"}
    c.start(channel="phone", **{k: v for k, v in offered.items() if k in spec.data})
    assert not [cmd for cmd in c.commands if isinstance(cmd, RaiseIncident)]
    assert c.state.tokens, "the case is under way"
