"""org/routing.yaml routes realistic inbound contacts to the right library SOP."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connectors.base import ChannelEvent
from engine.intake.routing import route
from engine.sop.library import Library


def _event(channel: str, subject: str = "", body: str = "", **metadata: str) -> ChannelEvent:
    return ChannelEvent(channel=channel, external_id=f"{channel}-{subject}-{body}"[:60],
                        direction="inbound", occurred_at=datetime(2026, 3, 2, 9, tzinfo=UTC),
                        subject=subject, body=body, metadata=metadata)


@pytest.mark.parametrize(
    ("event", "sop", "priority"),
    [
        (_event("letter", body="My kettle is defective, I claim warranty."), "warranty_claim", None),
        (_event("fax", body="Guarantee claim for the attached receipt"), "warranty_claim", None),
        (_event("email", subject="Complaint about your delivery"), "complaint_handling", "high"),
        (_event("phone", intent="complaint"), "complaint_handling", "high"),
        (_event("email", body="I am locked out of my account"), "password_reset", None),
        (_event("web", subject="Question about invoice 2026-117"), "billing_question", None),
        (_event("chat", body="What are your opening hours?"), "general_enquiry_chat", None),
        (_event("system", intent="software_update"), "software_update_notice", None),
        (_event("email", subject="Hello", body="Just a question"), "general_enquiry", None),
    ],
    ids=lambda v: v.channel + ":" + (v.subject or v.body or str(dict(v.metadata)))[:24]
    if isinstance(v, ChannelEvent) else str(v),
)
def test_contact_is_routed_to_its_sop(library: Library, event: ChannelEvent, sop: str,
                                      priority: str | None) -> None:
    decision = route(library.routing, event)
    assert decision is not None
    assert (decision.sop, decision.priority) == (sop, priority)
    assert decision.skipped == ()
    assert decision.sop in library.sops


def test_letter_that_is_no_warranty_claim_falls_through(library: Library) -> None:
    decision = route(library.routing, _event("letter", body="Please change my address"))
    assert decision is not None
    assert (decision.sop, decision.rule) == ("general_enquiry", "fallback")
