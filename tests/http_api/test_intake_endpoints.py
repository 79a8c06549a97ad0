"""Intake endpoints end to end over real HTTP: web form, CTI call flow, chat, social, SMS,
dead letters, the customer status link, health, and one customer across channels."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import func, select

from connectors.base import ChannelEvent, ThreadRefs
from connectors.http.app import status_link
from engine.crm.customers import find_customer, verify_identifier
from engine.crm.timeline import customer_view
from engine.intake.pipeline import IntakeStatus, ingest
from engine.store.models import CaseEventRow, CaseRow, DeadLetterRow, InboxRow
from engine.store.models_crm import CustomerRow, InteractionRow


def cases(server: Any) -> list[CaseRow]:
    with server.sf() as s:
        return list(s.scalars(select(CaseRow).order_by(CaseRow.created_at)))


def test_web_form_starts_a_case(server: Any) -> None:
    r = server.post("webform", {"submission_id": "f-1", "email": "Eve@Example.org", "name": "Eve",
                                "subject": "Upgrade", "message": "Please upgrade my plan",
                                "fields": {"plan": "gold"}})
    assert r.status_code == 202
    body = r.json()
    assert body["status"] == "accepted" and body["inbox_id"] > 0
    server.wait_processed()
    [case] = cases(server)
    assert (case.sop_id, case.channel) == ("support", "web")
    with server.sf() as s:
        inbox = s.get(InboxRow, body["inbox_id"])
        assert inbox is not None and (inbox.status, inbox.case_id) == ("started", case.id)
        view = customer_view(s, case.customer_id or "")
    assert ("email", "eve@example.org", "unverified", "web") in view.identifiers
    assert [e.kind for e in view.entries] == ["case open", "form"]
    # the same submission re-sent under another delivery id is a duplicate
    again = server.post("webform", {"submission_id": "f-1", "message": "Please upgrade my plan"})
    assert again.status_code == 200 and again.json()["status"] == "duplicate"


def test_cti_call_flow_is_one_case_with_three_interactions(server: Any) -> None:
    call = {"callId": "c-77", "from": "020 123 4567", "to": "+31 85 000 0000", "direction": "in"}
    assert server.post("cti", {**call, "event": "newCall", "queue": "support"}).status_code == 202
    server.wait_processed()
    assert server.post("cti", {**call, "event": "answer", "user": "Agent Smith",
                               "answeringNumber": "+31850000001"}, form=True).status_code == 202
    assert server.post("cti", {**call, "event": "hangup", "cause": "normalClearing",
                               "duration_s": "95"}, form=True).status_code == 202
    server.wait_processed()
    [case] = cases(server)
    assert case.channel == "phone"
    with server.sf() as s:
        rows = list(s.scalars(select(InteractionRow).order_by(InteractionRow.id)))
        events = s.scalar(select(func.count()).select_from(CaseEventRow))
        view = customer_view(s, case.customer_id or "")
    assert [(r.kind, r.case_id, r.rule) for r in rows] == [
        ("call_new", case.id, "routing[1]"), ("call_answer", case.id, "thread"),
        ("call_hangup", case.id, "thread")]
    assert rows[2].detail["cause"] == "normalClearing"
    assert events == 1  # answer/hangup are recorded, not signalled
    assert ("phone", "+31201234567", "unverified", "phone") in view.identifiers


def test_chat_messages_of_one_conversation_form_one_case(server: Any) -> None:
    for i, text in enumerate(["Hi there", "My order is late"]):
        r = server.post("chat", {"conversation_id": "conv-9", "message_id": f"m{i}",
                                 "text": text, "email": "finn@example.org"})
        assert r.status_code == 202
        server.wait_processed()
    [case] = cases(server)
    with server.sf() as s:
        kinds = [(e.kind, e.event.get("name")) for e in s.scalars(
            select(CaseEventRow).where(CaseEventRow.case_id == case.id).order_by(CaseEventRow.id))]
    assert kinds == [("CaseStarted", None), ("Signal", "customer_reply")]


def test_social_and_sms_intake(server: Any) -> None:
    assert server.post("social", {"network": "twitter", "post_id": "p1", "handle": "@Gina",
                                  "text": "Your app crashed", "author_name": "Gina"}).status_code == 202
    assert server.post("sms", {"MessageSid": "SM1", "From": "+31612345678", "To": "+3197010",
                               "Body": "Where is my parcel?"}, form=True).status_code == 202
    server.wait_processed()
    assert sorted(c.channel for c in cases(server)) == ["sms", "social"]
    with server.sf() as s:
        handles = s.scalars(select(InteractionRow.channel)).all()
    assert sorted(handles) == ["sms", "social"]


def test_authentic_but_malformed_body_is_a_dead_letter_with_its_reason(server: Any) -> None:
    r = server.post("cti", {"event": "newCall", "from": "+31201234567", "to": "1",
                            "direction": "sideways"})
    assert r.status_code == 422
    problem = r.json()
    assert "callId" in problem["detail"] or "direction" in problem["detail"]
    not_json = server.post("webform", None, raw=b"{not json")
    assert not_json.status_code == 422
    with server.sf() as s:
        letters = list(s.scalars(select(DeadLetterRow).order_by(DeadLetterRow.id)))
        inbox = s.scalar(select(func.count()).select_from(InboxRow))
    assert [d.source for d in letters] == ["http:cti", "http:webform"]
    assert letters[0].id == problem["dead_letter_id"]
    assert letters[1].payload["raw"] == "{not json"
    assert inbox == 0
    # intake goes on
    assert server.post("webform", {"message": "still works"}).status_code == 202


def test_dead_letter_retry_reruns_the_endpoint_adapter(server: Any) -> None:
    from connectors.http.adapters import PARSERS
    from engine.intake.deadletters import retry_dead_letter

    r = server.post("webform", {"message": ""})  # min_length 1
    assert r.status_code == 422
    with server.sf() as s, s.begin():
        letter = s.get(DeadLetterRow, r.json()["dead_letter_id"])
        assert letter is not None
        letter.payload = {**letter.payload, "body": {**letter.payload["body"], "message": "fixed"}}
    with server.sf() as s, s.begin():
        result = retry_dead_letter(s, r.json()["dead_letter_id"], library=None,
                                   clock=server.clock, parsers=PARSERS)
    assert result.status is IntakeStatus.RECORDED


def test_status_link_shows_status_and_public_timeline_only(server: Any) -> None:
    server.post("webform", {"email": "hal@example.org", "message": "Broken screen"})
    server.wait_processed()
    [case] = cases(server)
    link = status_link(server.url, case.id, server.status_secret,
                       server.clock.now() + timedelta(days=7))
    r = httpx.get(link)
    assert r.status_code == 200
    view = r.json()
    assert (view["case_id"], view["status"]) == (case.id, "open")
    assert [t["kind"] for t in view["timeline"]] == ["form"]
    assert "customer_id" not in view and "data" not in view
    tampered = link.replace(case.id, case.id[:-1] + ("0" if case.id[-1] != "0" else "1"))
    assert httpx.get(tampered).status_code == 403
    expired = status_link(server.url, case.id, server.status_secret,
                          server.clock.now() - timedelta(seconds=1))
    assert httpx.get(expired).status_code == 403
    wrong_key = status_link(server.url, case.id, "guess", server.clock.now() + timedelta(days=1))
    assert httpx.get(wrong_key).status_code == 403


def test_health_and_openapi(server: Any) -> None:
    from connectors.memory import MemoryConnector
    from connectors.registry import default_registry

    default_registry.register("mem-health", MemoryConnector, channels=("test-health",),
                              replace=True)
    conn = default_registry.for_channel("test-health", {"name": "mem-health"})
    try:
        h = httpx.get(f"{server.url}/v1/health").json()
        assert h["database"] is True and h["contract_version"] == "1.0"
        assert any(c["name"] == "mem-health" and c["ok"] for c in h["connectors"])
        conn.fail_next("deferred", "gateway down")  # type: ignore[attr-defined]
        from connectors.base import OutboundMessage

        conn.send(OutboundMessage("m", None, "test-health", "x", "", "", "k"))
        h = httpx.get(f"{server.url}/v1/health").json()
        assert h["status"] == "degraded"
    finally:
        default_registry.unregister("mem-health")
        default_registry._instances.pop(("mem-health", "test-health"), None)
    spec = httpx.get(f"{server.url}/openapi.json").json()
    assert {"/v1/intake/webform", "/v1/intake/chat", "/v1/intake/cti", "/v1/intake/social",
            "/v1/intake/sms", "/v1/cases/{case_id}/status", "/v1/health"} <= set(spec["paths"])
    cti = spec["paths"]["/v1/intake/cti"]["post"]["requestBody"]["content"]["application/json"]
    assert cti["schema"]["properties"]["event"]["enum"] == ["newCall", "answer", "hangup"]


def test_one_customer_one_timeline_across_email_phone_and_web(server: Any) -> None:
    """E-mail, then a call from the (verified) phone, then the web form: one customer."""
    now = server.clock.now()
    mail = ChannelEvent(channel="email", external_id="<i1@mail.example.org>", direction="inbound",
                        occurred_at=now, customer={"email": "Ivy@Example.org", "name": "Ivy"},
                        thread=ThreadRefs(message_id="<i1@mail.example.org>"),
                        subject="Router resets", body="My router resets every hour.\n-- Ivy, 020 765 4321")
    with server.sf() as s, s.begin():
        first = ingest(s, mail, library=server.app.state.intake.s.library, clock=server.clock)
        assert first.status is IntakeStatus.STARTED
        # the agent verifies Ivy on the first contact: her e-mail and her phone number
        verify_identifier(s, first.customer_id, "email", "ivy@example.org", actor="agent1", now=now)
        verify_identifier(s, first.customer_id, "phone", "020 765 4321", actor="agent1", now=now)
    r = server.post("cti", {"event": "newCall", "callId": "call-ivy", "from": "+31207654321",
                            "to": "+31850000000", "direction": "in"})
    assert r.status_code == 202
    server.wait_processed()
    r = server.post("webform", {"email": "ivy@example.org", "name": "Ivy Jones",
                                "subject": "Router again", "message": "Still resetting"})
    assert r.status_code == 202
    server.wait_processed()
    with server.sf() as s:
        customers = s.scalar(select(func.count()).select_from(CustomerRow))
        view = customer_view(s, find_customer(s, "ivy@example.org"))
        by_phone = customer_view(s, find_customer(s, "+31 20 765 4321"))
        owners = set(s.scalars(select(InteractionRow.customer_id)))
    assert customers == 1
    assert owners == {first.customer_id}
    assert view.customer_id == by_phone.customer_id == first.customer_id
    interactions = [e for e in view.entries if e.type == "interaction"]
    assert [e.channel for e in interactions] == ["email", "phone", "web"]
    assert view.channels == {"email", "phone", "web"}
    assert len(view.case_ids) == 3  # one case per concern, all on Ivy's timeline
