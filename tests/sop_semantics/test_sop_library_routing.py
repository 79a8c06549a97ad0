"""org/routing.yaml routes realistic inbound contacts -- in English, Dutch and German -- to
the right library SOP, reading subject and body together."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sop_semantics_helpers import ROOT

from connectors.base import ChannelEvent
from engine.intake.routing import route
from engine.sop.library import Library

DEMO_CONTACTS = ROOT / "engine" / "demo" / "data" / "contacts.jsonl"
#: the SOP each labelled topic of the demo data belongs to (general: by channel)
TOPIC_SOP = {"password_reset": "password_reset", "access_problem": "password_reset",
             "billing": "billing_question", "complaint": "complaint_handling",
             "warranty": "warranty_claim"}


def _event(channel: str, subject: str = "", body: str = "", **metadata: str) -> ChannelEvent:
    return ChannelEvent(channel=channel, external_id=f"{channel}:{subject}:{body}"[:80],
                        direction="inbound", occurred_at=datetime(2026, 3, 2, 9, tzinfo=UTC),
                        subject=subject, body=body, metadata=metadata)


SAMPLES = [
    # complaints (priority high)
    ("email", "Disappointed", "The repair took six weeks and nobody called me back. This is "
     "unacceptable.", "complaint_handling"),
    ("phone", "Slechte service", "Ik ben erg ontevreden over de monteur die twee keer niet kwam.",
     "complaint_handling"),
    ("letter", "Ärger mit dem Kundendienst", "Ich bin sehr unzufrieden, der Termin wurde dreimal "
     "verschoben.", "complaint_handling"),
    # warranty
    ("letter", "Broken kettle", "The kettle I bought in March is defective, can I get it "
     "replaced under guarantee?", "warranty_claim"),
    ("fax", "Stofzuiger", "Mijn stofzuiger is na een half jaar kapot gegaan.", "warranty_claim"),
    ("email", "Toaster", "Der Toaster ist nach vier Monaten kaputt, bitte um Ersatz.",
     "warranty_claim"),
    # access
    ("web", "Can't get in", "The app says my login is wrong although I typed it correctly.",
     "password_reset"),
    ("chat", "Website", "Ik kan niet meer inloggen op de website.", "password_reset"),
    ("email", "Hilfe", "Ich kann mich nicht mehr einloggen, bitte helfen Sie mir.",
     "password_reset"),
    # billing
    ("email", "Returned order", "When will I get the refund for my returned order?",
     "billing_question"),
    ("phone", "Dubbele afschrijving", "Er is twee keer geld afgeschreven van mijn rekening.",
     "billing_question"),
    ("web", "Frage", "Warum wurde diesen Monat zweimal abgebucht?", "billing_question"),
    # general: the chat SOP on chat, the channel-agnostic fallback elsewhere
    ("email", "Stores", "Is there a shop in Utrecht where I can see the products?",
     "general_enquiry"),
    ("phone", "Vraag", "Verkopen jullie ook cadeaubonnen?", "general_enquiry"),
    ("chat", "Frage", "Haben Sie auch Geschenkgutscheine?", "general_enquiry_chat"),
]


@pytest.mark.parametrize(("channel", "subject", "body", "sop"), SAMPLES,
                         ids=[f"{s[3]}:{s[0]}:{s[1]}" for s in SAMPLES])
def test_contact_is_routed_to_its_sop(library: Library, channel: str, subject: str, body: str,
                                      sop: str) -> None:
    decision = route(library.routing, _event(channel, subject, body))
    assert decision is not None
    assert decision.sop == sop
    assert decision.skipped == ()
    assert decision.priority == ("high" if sop == "complaint_handling" else None)


def test_keywords_count_in_the_subject_too(library: Library) -> None:
    decision = route(library.routing, _event("email", "Rechnung 2026-117", "Siehe Anhang."))
    assert decision is not None and decision.sop == "billing_question"


@pytest.mark.parametrize(("intent", "sop"), [("software_update", "software_update_notice"),
                                             ("complaint", "complaint_handling"),
                                             ("billing", "billing_question")])
def test_an_explicit_intent_wins(library: Library, intent: str, sop: str) -> None:
    channel = "system" if intent == "software_update" else "web"
    decision = route(library.routing, _event(channel, "x", "y", intent=intent))
    assert decision is not None and decision.sop == sop


def test_every_routed_sop_exists(library: Library) -> None:
    assert library.routing is not None
    targets = {rule.sop for rule in library.routing.rules} | {library.routing.fallback}
    assert targets <= set(library.sops)


@pytest.mark.skipif(not DEMO_CONTACTS.exists(), reason="demo data not present")
def test_the_demo_day_routes_without_a_mistake(library: Library) -> None:
    wrong = []
    lines = Path(DEMO_CONTACTS).read_text(encoding="utf-8").splitlines()
    for line in lines:
        row = json.loads(line)
        want = TOPIC_SOP.get(row["topic"]) or (
            "general_enquiry_chat" if row["channel"] == "chat" else "general_enquiry")
        decision = route(library.routing, _event(row["channel"], row["subject"], row["body"],
                                                 language=row["language"]))
        if decision is None or decision.sop != want:
            wrong.append((row["id"], row["topic"], decision.sop if decision else None))
    assert len(lines) > 100
    assert wrong == []


#: the case-data inputs engine.intake fills from a channel event, by field name
#: (engine/intake/pipeline.py ``_case_data``; also any web-form ``fields``)
INTAKE_INPUTS = frozenset({
    "request_text", "text", "subject", "body", "channel", "email", "phone", "handle",
    "customer_number", "customer_name", "name", "customer_id", "customer_tier", "language",
    "intent",
})


def test_routed_sops_need_only_inputs_the_intake_fills(library: Library) -> None:
    assert library.routing is not None
    routed = {rule.sop for rule in library.routing.rules} | {library.routing.fallback}
    for sop_id in sorted(routed):
        spec = library.sops[sop_id].spec
        required = {name for name, f in spec.data.items() if f.input and f.default is None}
        assert required <= INTAKE_INPUTS, (sop_id, required - INTAKE_INPUTS)
        assert "request_text" in spec.data or sop_id == "software_update_notice", sop_id
