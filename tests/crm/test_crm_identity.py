"""CRM: identifier normal forms, verified-only linking, suggestions, merge/unmerge round trip."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from connectors.base import ChannelEvent, ThreadRefs
from engine.clock import SimulatedClock
from engine.crm.customers import (
    CrmError,
    add_identifier,
    find_customer,
    find_customers,
    resolve_customer,
    verify_identifier,
)
from engine.crm.identifiers import InvalidIdentifier, normalise, normalise_all
from engine.crm.merge import dismiss_suggestion, merge, unmerge
from engine.crm.timeline import customer_view
from engine.intake.pipeline import ingest
from engine.store.models import CaseRow
from engine.store.models_crm import (
    CustomerOrganisationRow,
    CustomerRow,
    IdentifierRow,
    MergeRow,
    MergeSuggestionRow,
    OrganisationRow,
)


@pytest.mark.parametrize(
    ("kind", "raw", "normal"),
    [
        ("email", "  Alice@Example.ORG ", "alice@example.org"),
        ("email", "mailto:bob@x.nl", "bob@x.nl"),
        ("phone", "020 123 4567", "+31201234567"),
        ("phone", "+31 (0)20-123 4567", "+31201234567"),
        ("phone", "0031201234567", "+31201234567"),
        ("phone", "+49 30 1234567", "+49301234567"),
        ("handle", "Twitter:@Alice", "twitter:@alice"),
        ("handle", "@bob", "social:@bob"),
        ("customer_number", " C-1001 ", "C-1001"),
    ],
)
def test_identifiers_have_one_normal_form(kind: str, raw: str, normal: str) -> None:
    assert normalise(kind, raw, region="NL").value == normal


def test_phone_region_is_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAREFLOW_PHONE_REGION", "DE")
    assert normalise("phone", "030 1234567").value == "+49301234567"


@pytest.mark.parametrize(("kind", "raw"), [("email", "not-an-address"), ("phone", "12"),
                                           ("phone", "call me"), ("fax", "1"), ("email", "")])
def test_invalid_identifiers_are_refused_with_kind_and_value(kind: str, raw: str) -> None:
    with pytest.raises(InvalidIdentifier) as err:
        normalise(kind, raw)
    assert err.value.kind == kind


def test_bad_identifier_does_not_lose_the_rest() -> None:
    found, bad = normalise_all({"email": "a@b.nl", "phone": "xx", "name": "A"})
    assert [str(i) for i in found] == ["email=a@b.nl"]
    assert len(bad) == 1 and bad[0].kind == "phone"


def test_unverified_match_is_a_suggestion_not_a_link(session: Session,
                                                     clock: SimulatedClock) -> None:
    a = resolve_customer(session, {"email": "sam@example.org", "name": "Sam"}, source="email",
                         now=clock.now())
    b = resolve_customer(session, {"email": "SAM@example.org"}, source="web", now=clock.now())
    assert a.created and b.created and a.customer_id != b.customer_id
    assert len(b.suggestions) == 1
    sug = session.get(MergeSuggestionRow, b.suggestions[0])
    assert sug is not None and "email=sam@example.org (unverified)" in sug.basis
    c = resolve_customer(session, {"phone": "0611111111", "name": "sam"}, source="sms",
                         now=clock.now())
    assert c.created and any("name=sam" in (session.get(MergeSuggestionRow, s) or sug).basis
                             for s in c.suggestions)


def test_verified_identifier_links_automatically(session: Session, clock: SimulatedClock) -> None:
    a = resolve_customer(session, {"email": "tom@example.org"}, source="email", now=clock.now())
    verify_identifier(session, a.customer_id, "email", "tom@example.org", actor="agent",
                      now=clock.now())
    b = resolve_customer(session, {"email": "Tom@Example.org", "phone": "+31699999999"},
                         source="web", now=clock.now())
    assert (b.customer_id, b.created, b.matched_by) == (a.customer_id, False,
                                                        "verified email=tom@example.org")
    # the new phone is remembered, unverified, with its source
    row = session.scalars(select(IdentifierRow).where(IdentifierRow.kind == "phone")).one()
    assert (row.customer_id, row.verification, row.source) == (a.customer_id, "unverified", "web")


def test_a_verified_identifier_belongs_to_one_customer(session: Session,
                                                       clock: SimulatedClock) -> None:
    a = resolve_customer(session, {"email": "uma@example.org"}, source="email", now=clock.now())
    b = resolve_customer(session, {"email": "uma@example.org"}, source="web", now=clock.now())
    verify_identifier(session, a.customer_id, "email", "uma@example.org", actor="x", now=clock.now())
    with pytest.raises(CrmError, match="already verified for customer"):
        verify_identifier(session, b.customer_id, "email", "uma@example.org", actor="x",
                          now=clock.now())


def test_source_vouched_identifiers_are_verified(session: Session, clock: SimulatedClock) -> None:
    a = resolve_customer(session, {"customer_number": "C-7"}, source="web", now=clock.now(),
                         verified=("customer_number",))
    b = resolve_customer(session, {"customer_number": "C-7", "email": "v@x.nl"}, source="web",
                         now=clock.now())
    assert b.customer_id == a.customer_id and b.matched_by == "verified customer_number=C-7"


def _timeline_customer(session: Session, library: Any, clock: SimulatedClock, ext: str,
                       email: str) -> str:
    ev = ChannelEvent(channel="email", external_id=ext, direction="inbound",
                      occurred_at=clock.now(), customer={"email": email},
                      thread=ThreadRefs(message_id=ext), subject="Hello", body="Question")
    result = ingest(session, ev, library=library, clock=clock)
    assert result.customer_id is not None
    return result.customer_id


def test_merge_and_unmerge_round_trip(session: Session, library: Any, clock: SimulatedClock) -> None:
    a = _timeline_customer(session, library, clock, "<x1@x>", "wendy@example.org")
    clock.advance(timedelta(hours=1))
    b = _timeline_customer(session, library, clock, "<x2@x>", "wendy.work@example.com")
    add_identifier(session, b, "phone", "+31612340000", source="agent", now=clock.now())
    org = OrganisationRow(id="O1", name="Acme", created_at=clock.now())
    session.add(org)
    session.flush()
    session.add(CustomerOrganisationRow(customer_id=b, organisation_id="O1", role="buyer",
                                        created_at=clock.now()))
    session.flush()
    before_a, before_b = customer_view(session, a), customer_view(session, b)

    merge_id = merge(session, a, b, actor="supervisor1", reason="same person, two addresses",
                     now=clock.now())
    merged = customer_view(session, a)
    assert merged.merged_from == (b,)
    assert merged.organisations == ("Acme",)
    assert {i[1] for i in merged.identifiers} == {"wendy@example.org", "wendy.work@example.com",
                                                  "+31612340000"}
    assert len([e for e in merged.entries if e.type == "interaction"]) == 2
    assert len(merged.case_ids) == 2
    assert {c.customer_id for c in session.scalars(select(CaseRow))} == {a}
    # lookups through the merged customer's identifiers land on the survivor
    assert find_customer(session, "wendy.work@example.com") == a
    assert customer_view(session, b).customer_id == a
    row = session.get(MergeRow, merge_id)
    assert row is not None and (row.actor, row.reason) == ("supervisor1", "same person, two addresses")
    with pytest.raises(CrmError, match="already merged"):
        merge(session, a, b, actor="x", reason="again", now=clock.now())

    unmerge(session, merge_id, actor="supervisor2", now=clock.now(), reason="different people")
    after_a, after_b = customer_view(session, a), customer_view(session, b)
    assert after_a.identifiers == before_a.identifiers
    assert after_b.identifiers == before_b.identifiers
    assert after_a.entries == before_a.entries and after_b.entries == before_b.entries
    assert after_b.organisations == ("Acme",) and after_a.organisations == ()
    assert session.get(CustomerRow, b).status == "active"  # type: ignore[union-attr]
    assert row.undone_by == "supervisor2" and row.undo_reason == "different people"
    with pytest.raises(CrmError, match="already undone"):
        unmerge(session, merge_id, actor="x", now=clock.now())


def test_merge_closes_suggestions_and_dismiss(session: Session, clock: SimulatedClock) -> None:
    a = resolve_customer(session, {"email": "xena@example.org"}, source="email", now=clock.now())
    b = resolve_customer(session, {"email": "xena@example.org"}, source="web", now=clock.now())
    c = resolve_customer(session, {"email": "xena@example.org"}, source="sms", now=clock.now())
    merge(session, a.customer_id, b.customer_id, actor="s", reason="same", now=clock.now())
    statuses = dict(session.execute(select(MergeSuggestionRow.id, MergeSuggestionRow.status)).all())
    assert statuses[b.suggestions[0]] == "merged"
    open_ids = [sid for sid, st in statuses.items() if st == "open"]
    assert open_ids and set(open_ids) <= set(c.suggestions)
    dismiss_suggestion(session, open_ids[0], actor="s", now=clock.now())
    assert session.get(MergeSuggestionRow, open_ids[0]).status == "dismissed"  # type: ignore[union-attr]


def test_merge_needs_a_reason_and_two_customers(session: Session, clock: SimulatedClock) -> None:
    a = resolve_customer(session, {"email": "y@x.nl"}, source="email", now=clock.now())
    with pytest.raises(CrmError, match="reason"):
        merge(session, a.customer_id, a.customer_id, actor="s", reason=" ", now=clock.now())
    with pytest.raises(CrmError, match="itself"):
        merge(session, a.customer_id, a.customer_id, actor="s", reason="r", now=clock.now())
    with pytest.raises(CrmError, match="no such customer"):
        merge(session, a.customer_id, "K404", actor="s", reason="r", now=clock.now())
    assert session.scalar(select(func.count()).select_from(MergeRow)) == 0


def test_find_customers_by_any_identifier(session: Session, clock: SimulatedClock) -> None:
    a = resolve_customer(session, {"email": "z@x.nl", "phone": "0201112222",
                                   "handle": "twitter:@zed", "customer_number": "N-9"},
                         source="web", now=clock.now())
    for key in (a.customer_id, "Z@X.NL", "020 111 2222", "twitter:@Zed", "N-9",
                "customer_number:N-9", "email:z@x.nl"):
        assert find_customers(session, key) == [a.customer_id], key
    assert find_customers(session, "nobody@x.nl") == []
    with pytest.raises(CrmError, match="no customer matches"):
        find_customer(session, "nobody@x.nl")
