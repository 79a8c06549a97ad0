"""Intake: dedup, routing, correlation rules, customer resolution, dead letters."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from connectors.base import ChannelEvent, ThreadRefs, event_to_dict
from engine.clock import SimulatedClock
from engine.crm.timeline import customer_view, record_outbound
from engine.intake.deadletters import get_dead_letter, list_dead_letters, retry_dead_letter
from engine.intake.pipeline import IntakeStatus, ingest, ingest_payload
from engine.store.models import CaseEventRow, CaseRow, DeadLetterRow, InboxRow


def mail(clock: SimulatedClock, ext: str, **kw: Any) -> ChannelEvent:
    base: dict[str, Any] = {
        "channel": "email", "external_id": ext, "direction": "inbound",
        "occurred_at": clock.now(), "customer": {"email": "alice@example.org", "name": "Alice"},
        "thread": ThreadRefs(message_id=ext), "subject": "Printer broken", "body": "It jams.",
    }
    base.update(kw)
    return ChannelEvent(**base)


def count(session: Session, model: Any) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_new_contact_starts_the_routed_sop_with_its_inputs(session: Session, library: Any,
                                                          clock: SimulatedClock) -> None:
    r = ingest(session, mail(clock, "<m1@x>"), library=library, clock=clock)
    assert r.status is IntakeStatus.STARTED
    assert r.rule == "routing[1]"
    case = session.get(CaseRow, r.case_id)
    assert case is not None
    assert (case.sop_id, case.channel, case.customer_id) == ("support", "email", r.customer_id)
    started = session.scalars(select(CaseEventRow).where(CaseEventRow.case_id == r.case_id)).one()
    assert started.kind == "CaseStarted"
    data = started.event["data"]
    assert data["request_text"] == "Printer broken\n\nIt jams."
    assert data["email"] == "alice@example.org"
    inbox = session.scalars(select(InboxRow)).one()
    assert (inbox.status, inbox.case_id) == ("started", r.case_id)


def test_first_matching_rule_wins_and_sets_priority(session: Session, library: Any,
                                                    clock: SimulatedClock) -> None:
    r = ingest(session, mail(clock, "<m2@x>", subject="I want to COMPLAIN"), library=library,
               clock=clock)
    case = session.get(CaseRow, r.case_id)
    assert case is not None
    assert (r.rule, case.sop_id, case.priority) == ("routing[0]", "complaint", "high")


def test_duplicate_delivery_is_processed_once(session: Session, library: Any,
                                              clock: SimulatedClock) -> None:
    event = mail(clock, "<dup@x>")
    first = ingest(session, event, library=library, clock=clock)
    for _ in range(2):
        again = ingest(session, event, library=library, clock=clock)
        assert again.status is IntakeStatus.DUPLICATE
        assert again.case_id == first.case_id
    assert count(session, InboxRow) == 1
    assert count(session, CaseRow) == 1
    # 72 hours later the same item is still recognised (inbox retention >= 7 days)
    clock.advance(timedelta(hours=72))
    assert ingest(session, event, library=library, clock=clock).status is IntakeStatus.DUPLICATE


def test_reply_correlates_by_thread_and_becomes_a_signal(session: Session, library: Any,
                                                         clock: SimulatedClock) -> None:
    first = ingest(session, mail(clock, "<q1@x>"), library=library, clock=clock)
    clock.advance(timedelta(minutes=5))
    reply = mail(clock, "<q2@x>", subject="Re: Printer broken", body="Still jams",
                 thread=ThreadRefs(message_id="<q2@x>", in_reply_to="<q1@x>",
                                   references=("<q1@x>",)))
    r = ingest(session, reply, library=library, clock=clock)
    assert (r.status, r.case_id, r.rule) == (IntakeStatus.CORRELATED, first.case_id, "thread")
    signal = session.scalars(select(CaseEventRow).where(
        CaseEventRow.case_id == first.case_id, CaseEventRow.kind == "Signal")).one()
    assert signal.status == "pending"
    assert signal.event["name"] == "customer_reply"
    assert signal.event["payload"]["body"] == "Still jams"
    assert signal.event["payload"]["kind"] == "message"
    case = session.get(CaseRow, first.case_id)
    assert case is not None and case.runnable


def test_reply_to_our_outbound_message_correlates(session: Session, library: Any,
                                                  clock: SimulatedClock) -> None:
    from connectors.base import OutboundMessage

    first = ingest(session, mail(clock, "<o1@x>"), library=library, clock=clock)
    record_outbound(session, OutboundMessage("<ack-1@careflow>", first.case_id, "email",
                                             "alice@example.org", "We got it", "Hi", "k1"),
                    now=clock.now())
    # a different sender address (forwarded from a colleague) still threads by reference
    reply = mail(clock, "<o2@x>", customer={"email": "bob@example.org"},
                 thread=ThreadRefs(message_id="<o2@x>", in_reply_to="<ack-1@careflow>"))
    r = ingest(session, reply, library=library, clock=clock)
    assert (r.status, r.case_id, r.rule) == (IntakeStatus.CORRELATED, first.case_id, "thread")
    assert r.customer_id == first.customer_id  # the case's customer, not a new one


def test_case_token_beats_thread_and_closed_cases_do_not_correlate(
        session: Session, library: Any, clock: SimulatedClock) -> None:
    a = ingest(session, mail(clock, "<t1@x>"), library=library, clock=clock)
    b = ingest(session, mail(clock, "<t2@x>", customer={"email": "carol@example.org"}),
               library=library, clock=clock)
    tok = mail(clock, "<t3@x>", thread=ThreadRefs(message_id="<t3@x>", case_token=b.case_id,
                                                  in_reply_to="<t1@x>"))
    r = ingest(session, tok, library=library, clock=clock)
    assert (r.case_id, r.rule) == (b.case_id, "case_token")
    case_a = session.get(CaseRow, a.case_id)
    assert case_a is not None
    case_a.status = "resolved"
    session.flush()
    late = mail(clock, "<t4@x>", thread=ThreadRefs(message_id="<t4@x>", in_reply_to="<t1@x>"))
    r2 = ingest(session, late, library=library, clock=clock)
    assert r2.status is IntakeStatus.STARTED
    assert r2.case_id != a.case_id
    assert f"previous case {a.case_id} is closed" in r2.reason


def test_open_case_of_the_customer_on_the_channel_correlates(
        session: Session, library: Any, clock: SimulatedClock) -> None:
    sms = {"channel": "sms", "customer": {"phone": "+31 6 12345678"}, "thread": ThreadRefs()}
    first = ingest(session, mail(clock, "s1", **sms), library=library, clock=clock)
    assert first.status is IntakeStatus.STARTED
    # the phone is unverified, so the second SMS makes a new customer ... unless verified
    from engine.crm.customers import verify_identifier

    verify_identifier(session, first.customer_id or "", "phone", "+31612345678", actor="agent7",
                      now=clock.now())
    r = ingest(session, mail(clock, "s2", **sms), library=library, clock=clock)
    assert (r.status, r.case_id, r.rule) == (IntakeStatus.CORRELATED, first.case_id,
                                            "customer_channel")


def test_no_routing_match_is_recorded_on_the_timeline(session: Session, library: Any,
                                                      clock: SimulatedClock) -> None:
    letter = mail(clock, "sha-1", channel="letter", customer={"customer_number": "C-1"},
                  thread=ThreadRefs())
    r = ingest(session, letter, library=library, clock=clock)
    assert r.status is IntakeStatus.RECORDED
    assert "no routing rule matched" in r.reason
    view = customer_view(session, r.customer_id or "")
    assert [e.channel for e in view.entries] == ["letter"]
    # without a library nothing is started either
    r2 = ingest(session, mail(clock, "<nolib@x>"), library=None, clock=clock)
    assert r2.status is IntakeStatus.RECORDED


def test_auto_replies_and_call_updates_are_recorded_not_signalled(
        session: Session, library: Any, clock: SimulatedClock) -> None:
    first = ingest(session, mail(clock, "<a1@x>"), library=library, clock=clock)
    ooo = mail(clock, "<a2@x>", kind="auto_reply",
               thread=ThreadRefs(message_id="<a2@x>", in_reply_to="<a1@x>"))
    r = ingest(session, ooo, library=library, clock=clock)
    assert (r.status, r.case_id) == (IntakeStatus.RECORDED, first.case_id)
    assert count(session, CaseEventRow) == 1  # only the CaseStarted
    stray_bounce = mail(clock, "<b1@x>", kind="bounce", thread=ThreadRefs(message_id="<b1@x>"))
    assert ingest(session, stray_bounce, library=library, clock=clock).status is IntakeStatus.RECORDED
    assert count(session, CaseRow) == 1  # a bounce never starts a case


def test_invalid_payload_goes_to_dead_letters_and_intake_continues(
        session: Session, library: Any, clock: SimulatedClock) -> None:
    bad = {"channel": "email", "external_id": "", "direction": "inbound"}
    r = ingest_payload(session, bad, source="test", library=library, clock=clock)
    assert r.status is IntakeStatus.DEAD_LETTER
    letter = get_dead_letter(session, r.dead_letter_id or 0)
    assert letter.source == "test"
    assert "occurred_at" in letter.reason or "external_id" in letter.reason
    good = event_to_dict(mail(clock, "<after@x>"))
    assert ingest_payload(session, good, source="test", library=library,
                          clock=clock).status is IntakeStatus.STARTED


def test_unroutable_event_is_dead_lettered_and_retry_reingests(
        session: Session, library: Any, clock: SimulatedClock) -> None:
    from dataclasses import replace

    from engine.sop.model import RoutingDoc, RoutingRuleSpec

    assert library.routing is not None
    broken_rule = RoutingRuleSpec(sop="no_such_sop", span=library.routing.span)
    broken = replace(library, routing=RoutingDoc((broken_rule,), library.routing.span))
    r = ingest(session, mail(clock, "<r1@x>"), library=broken, clock=clock)
    assert r.status is IntakeStatus.DEAD_LETTER
    assert "no_such_sop" in r.reason
    assert count(session, CaseRow) == 0  # the partial work was rolled back
    assert session.scalars(select(InboxRow)).one().status == "dead_letter"
    assert [d.id for d in list_dead_letters(session)] == [r.dead_letter_id]
    # retry with the broken routing again: still a dead letter, same letter, new reason
    again = retry_dead_letter(session, r.dead_letter_id or 0, library=broken, clock=clock)
    assert again.status is IntakeStatus.DEAD_LETTER
    assert count(session, DeadLetterRow) == 1
    assert "retry at" in get_dead_letter(session, r.dead_letter_id or 0).reason
    # after the fix the retry starts the case and the letter is marked retried
    fixed = retry_dead_letter(session, r.dead_letter_id or 0, library=library, clock=clock)
    assert fixed.status is IntakeStatus.STARTED
    assert list_dead_letters(session) == []
    assert session.scalars(select(InboxRow)).one().status == "started"


@pytest.mark.parametrize("kind", ["call_answer", "call_hangup"])
def test_call_updates_without_a_call_are_recorded(session: Session, library: Any,
                                                  clock: SimulatedClock, kind: str) -> None:
    ev = mail(clock, f"x:{kind}", channel="phone", kind=kind, customer={"phone": "+31201234567"},
              thread=ThreadRefs(in_reply_to="call:x"))
    assert ingest(session, ev, library=library, clock=clock).status is IntakeStatus.RECORDED


def test_new_case_gets_the_customers_tier(session: Session, library: Any,
                                          clock: SimulatedClock) -> None:
    from engine.crm.customers import set_tier, verify_identifier

    first = ingest(session, mail(clock, "<g1@x>"), library=library, clock=clock)
    verify_identifier(session, first.customer_id or "", "email", "alice@example.org", actor="a",
                      now=clock.now())
    set_tier(session, first.customer_id or "", "gold", now=clock.now())
    case = session.get(CaseRow, first.case_id)
    assert case is not None
    case.status = "resolved"
    session.flush()
    second = ingest(session, mail(clock, "<g2@x>"), library=library, clock=clock)
    assert second.customer_id == first.customer_id
    new = session.get(CaseRow, second.case_id)
    assert new is not None and new.tier == "gold"
    started = session.scalars(select(CaseEventRow).where(CaseEventRow.case_id == new.id)).one()
    assert started.event["tier"] == "gold" and started.event["data"]["customer_tier"] == "gold"


def test_permanent_bounce_marks_the_address_undeliverable(session: Session, library: Any,
                                                          clock: SimulatedClock) -> None:
    from engine.crm.timeline import is_deliverable

    first = ingest(session, mail(clock, "<u1@x>"), library=library, clock=clock)
    bounce = mail(clock, "<dsn1@x>", kind="bounce", customer={"email": "mailer-daemon@x.org"},
                  thread=ThreadRefs(message_id="<dsn1@x>", case_token=first.case_id),
                  metadata={"bounce": "permanent", "undeliverable": ["Alice@Example.org"]})
    r = ingest(session, bounce, library=library, clock=clock)
    assert (r.status, r.case_id, r.customer_id) == (IntakeStatus.CORRELATED, first.case_id,
                                                   first.customer_id)
    assert not is_deliverable(session, "alice@example.org")
    assert not is_deliverable(session, "alice@example.org", customer_id=first.customer_id)
    assert is_deliverable(session, "bob@example.org")
    temporary = mail(clock, "<dsn2@x>", kind="bounce", thread=ThreadRefs(case_token=first.case_id),
                     metadata={"bounce": "temporary", "undeliverable": ["carl@example.org"]})
    ingest(session, temporary, library=library, clock=clock)
    assert is_deliverable(session, "carl@example.org")  # 4.x.x is informational only


def test_reply_to_the_message_id_the_connector_generated(session: Session, library: Any,
                                                         clock: SimulatedClock) -> None:
    from connectors.base import Delivery, OutboundMessage

    first = ingest(session, mail(clock, "<z1@x>"), library=library, clock=clock)
    msg = OutboundMessage("out-1", first.case_id, "email", "alice@example.org", "Re: Printer",
                          "We are on it", "k-z1")
    record_outbound(session, msg, now=clock.now(),
                    delivery=Delivery("out-1", "<cf.abc.123@careflow.example>", "sent"))
    reply = mail(clock, "<z2@x>", thread=ThreadRefs(message_id="<z2@x>",
                                                    references=("<cf.abc.123@careflow.example>",)))
    r = ingest(session, reply, library=library, clock=clock)
    assert (r.case_id, r.rule) == (first.case_id, "thread")
    view = customer_view(session, first.customer_id or "")
    assert [e.direction for e in view.entries if e.type == "interaction"] == [
        "inbound", "outbound", "inbound"]


def test_an_unexpected_error_while_processing_is_a_dead_letter(session: Session, library: Any,
                                                               clock: SimulatedClock) -> None:
    class Exploding:
        routing = library.routing

        def sop(self, sop_id: str, version: str | None = None) -> Any:
            raise RuntimeError("library backend unavailable")

    r = ingest(session, mail(clock, "<boom@x>"), library=Exploding(), clock=clock)
    assert r.status is IntakeStatus.DEAD_LETTER
    assert r.reason == "RuntimeError: library backend unavailable"
    assert ingest(session, mail(clock, "<fine@x>"), library=library,
                  clock=clock).status is IntakeStatus.STARTED
