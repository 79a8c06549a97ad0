"""Customers and identity resolution: who is this contact, by verified identifiers only.

Rules (docs/connectors.md, "Identity"):

- a contact whose identifiers include a *verified* identifier of an active customer is
  linked to that customer automatically (``matched_by`` names the identifier);
- otherwise a new customer is created with the contact's identifiers as *unverified*, and
  every other customer holding the same unverified e-mail/phone/handle or the same name
  becomes a *merge suggestion* -- a human decides (engine.crm.merge);
- identifiers of a merged customer count for the survivor (``merged_into`` is followed).

A verified identifier belongs to at most one active customer; verifying one that another
customer already holds verified is refused (merge them instead).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from engine.crm.identifiers import KINDS, Identifier, guess_kind, normalise, normalise_all
from engine.errors import CareflowError
from engine.store.models_crm import CustomerRow, IdentifierRow, MergeSuggestionRow

__all__ = [
    "CrmError",
    "Resolution",
    "active_id",
    "add_identifier",
    "add_to_organisation",
    "find_customer",
    "find_customers",
    "new_customer",
    "resolve_customer",
    "set_tier",
    "suggest_merge",
    "verify_identifier",
]

VERIFIED = "verified"
UNVERIFIED = "unverified"


class CrmError(CareflowError):
    """A CRM operation is not possible (unknown customer, conflicting verified identifier,
    merge already undone ...). ``customer_id`` names the customer concerned."""

    def __init__(self, message: str, *, customer_id: str | None = None) -> None:
        self.customer_id = customer_id
        super().__init__(f"{message} [customer={customer_id}]" if customer_id else message)


@dataclass(frozen=True, slots=True)
class Resolution:
    """Who a contact is: the customer, whether it was created, and why."""

    customer_id: str
    created: bool
    matched_by: str | None  # "verified email=..." | "case" | None (new)
    suggestions: tuple[int, ...] = ()
    invalid: tuple[str, ...] = ()  # identifiers that could not be normalised


def new_customer_id() -> str:
    return "K" + uuid.uuid4().hex[:15].upper()


def active_id(session: Session, customer_id: str) -> str:
    """Follow ``merged_into`` to the active customer.

    Raises:
        CrmError: no such customer.
    """
    seen: set[str] = set()
    current = customer_id
    while True:
        row = session.get(CustomerRow, current)
        if row is None:
            raise CrmError("no such customer", customer_id=current)
        if row.merged_into is None or current in seen:
            return current
        seen.add(current)
        current = row.merged_into


def new_customer(
    session: Session,
    *,
    now: datetime,
    display_name: str = "",
    tier: str = "standard",
    customer_id: str | None = None,
) -> CustomerRow:
    row = CustomerRow(
        id=customer_id or new_customer_id(),
        display_name=display_name[:300],
        tier=tier,
        status="active",
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    return row


def _holders(session: Session, ident: Identifier, *, verified_only: bool) -> list[IdentifierRow]:
    q = select(IdentifierRow).where(
        IdentifierRow.kind == ident.kind, IdentifierRow.value == ident.value
    )
    if verified_only:
        q = q.where(IdentifierRow.verification == VERIFIED)
    return list(session.scalars(q.order_by(IdentifierRow.id)))


def add_identifier(
    session: Session,
    customer_id: str,
    kind: str,
    value: str,
    *,
    source: str,
    now: datetime,
    verified: bool = False,
    actor: str | None = None,
    region: str | None = None,
) -> IdentifierRow:
    """Attach an identifier (normalised) to a customer, or refresh its ``last_seen``.

    Raises:
        InvalidIdentifier: the value is not a valid identifier of ``kind``.
        CrmError: ``verified`` and another active customer holds it verified.
    """
    ident = normalise(kind, value, region=region)
    if verified:
        _check_verified_free(session, customer_id, ident)
    row = session.scalars(
        select(IdentifierRow).where(
            IdentifierRow.customer_id == customer_id,
            IdentifierRow.kind == ident.kind,
            IdentifierRow.value == ident.value,
        )
    ).first()
    if row is None:
        row = IdentifierRow(
            customer_id=customer_id,
            kind=ident.kind,
            value=ident.value,
            verification=UNVERIFIED,
            source=source,
            first_seen=now,
            last_seen=now,
        )
        session.add(row)
    row.last_seen = now
    if verified and row.verification != VERIFIED:
        row.verification = VERIFIED
        row.verified_at = now
        row.verified_by = actor or source
    session.flush()
    return row


def _check_verified_free(session: Session, customer_id: str, ident: Identifier) -> None:
    me = active_id(session, customer_id)
    for holder in _holders(session, ident, verified_only=True):
        other = active_id(session, holder.customer_id)
        if other != me:
            raise CrmError(
                f"{ident} is already verified for customer {other}; merge the two "
                "customers instead",
                customer_id=customer_id,
            )


def verify_identifier(
    session: Session,
    customer_id: str,
    kind: str,
    value: str,
    *,
    actor: str,
    now: datetime,
    region: str | None = None,
) -> IdentifierRow:
    """Mark an identifier verified (an agent checked it, or the customer proved it)."""
    cid = active_id(session, customer_id)
    return add_identifier(
        session,
        cid,
        kind,
        value,
        source=f"verified-by:{actor}",
        now=now,
        verified=True,
        actor=actor,
        region=region,
    )


def suggest_merge(
    session: Session, a: str, b: str, basis: str, *, now: datetime, score: float = 0.5
) -> int | None:
    """Record that ``a`` and ``b`` are probably the same person (once per basis)."""
    if a == b:
        return None
    first, second = sorted((a, b))
    existing = session.scalars(
        select(MergeSuggestionRow).where(
            MergeSuggestionRow.customer_a == first,
            MergeSuggestionRow.customer_b == second,
            MergeSuggestionRow.basis == basis,
        )
    ).first()
    if existing is not None:
        return existing.id
    row = MergeSuggestionRow(
        customer_a=first,
        customer_b=second,
        basis=basis[:400],
        score=score,
        status="open",
        created_at=now,
    )
    session.add(row)
    session.flush()
    return row.id


def _verified_match(session: Session, idents: list[Identifier]) -> tuple[str, Identifier] | None:
    by_strength = sorted(idents, key=lambda i: KINDS.index(i.kind))
    for ident in by_strength:
        holders = _holders(session, ident, verified_only=True)
        if holders:
            return active_id(session, holders[0].customer_id), ident
    return None


def _probable_duplicates(
    session: Session, customer_id: str, idents: list[Identifier], name: str
) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for ident in idents:
        for holder in _holders(session, ident, verified_only=False):
            other = active_id(session, holder.customer_id)
            if other != customer_id:
                out.append((other, f"{ident} ({holder.verification})"))
    if name.strip():
        rows = session.scalars(
            select(CustomerRow.id).where(
                func.lower(CustomerRow.display_name) == name.strip().lower(),
                CustomerRow.status == "active",
                CustomerRow.id != customer_id,
            )
        )
        out.extend((other, f"name={name.strip()}") for other in rows)
    return out


def resolve_customer(
    session: Session,
    customer: Mapping[str, str],
    *,
    source: str,
    now: datetime,
    verified: Collection[str] = (),
    known_customer: str | None = None,
    region: str | None = None,
) -> Resolution:
    """Find or create the customer a contact comes from, and remember its identifiers.

    ``verified`` lists identifier kinds the source vouches for (a logged-in portal's
    customer number, a CTI line's caller id marked trusted); ``known_customer`` is the
    customer already known from correlation (a reply in a case's thread).
    """
    idents, bad = normalise_all(customer, region=region)
    invalid = tuple(str(b) for b in bad)
    name = (customer.get("name") or "").strip()
    matched_by: str | None = None
    created = False
    if known_customer is not None:
        cid, matched_by = active_id(session, known_customer), "case"
    else:
        match = _verified_match(session, idents)
        if match is not None:
            cid, ident = match
            matched_by = f"verified {ident}"
        else:
            cid = new_customer(session, now=now, display_name=name).id
            created = True
    row = session.get(CustomerRow, cid)
    if row is not None and name and not row.display_name:
        row.display_name = name[:300]
    suggestions: list[int] = []
    for ident in idents:
        vouched = ident.kind in verified
        try:
            add_identifier(
                session,
                cid,
                ident.kind,
                ident.value,
                source=source,
                now=now,
                verified=vouched,
                actor=source,
            )
        except CrmError:
            # verified elsewhere: keep it unverified here and let a human merge
            add_identifier(session, cid, ident.kind, ident.value, source=source, now=now)
    if created:
        for other, basis in _probable_duplicates(session, cid, idents, name):
            sid = suggest_merge(session, other, cid, basis, now=now)
            if sid is not None and sid not in suggestions:
                suggestions.append(sid)
    return Resolution(cid, created, matched_by, tuple(suggestions), invalid)


def find_customers(session: Session, key: str, *, region: str | None = None) -> list[str]:
    """Active customers matching ``key``: a customer id, or any identifier (any verification).

    ``key`` may be written as ``kind:value`` or be guessed (e-mail, phone, handle, number).
    """
    key = key.strip()
    if session.get(CustomerRow, key) is not None:
        return [active_id(session, key)]
    kind, _, rest = key.partition(":")
    if kind in KINDS and rest and kind != "handle":
        candidates = [(kind, rest)]
    else:
        candidates = [(guess_kind(key), key)]
    out: list[str] = []
    for k, v in candidates:
        try:
            ident = normalise(k, v, region=region)
        except ValueError:
            continue
        rows = session.scalars(
            select(IdentifierRow.customer_id).where(
                and_(IdentifierRow.kind == ident.kind, IdentifierRow.value == ident.value)
            )
        )
        for cid in rows:
            a = active_id(session, cid)
            if a not in out:
                out.append(a)
    return out


def find_customer(session: Session, key: str, *, region: str | None = None) -> str:
    """The one active customer ``key`` names (id, e-mail, phone, handle, customer number).

    Raises:
        CrmError: nobody, or several customers (with their ids: merge them or be specific).
    """
    found = find_customers(session, key, region=region)
    if not found:
        raise CrmError(f"no customer matches {key!r}")
    if len(found) > 1:
        raise CrmError(f"{key!r} matches several customers: {', '.join(found)}")
    return found[0]


def add_to_organisation(
    session: Session, customer_id: str, organisation: str, *, now: datetime, role: str = ""
) -> str:
    """Make a customer a member of an organisation (created by name if new); returns its id.

    Membership is many-to-many: a consultant may serve several organisations.
    """
    from engine.store.models_crm import CustomerOrganisationRow, OrganisationRow

    cid = active_id(session, customer_id)
    org = session.scalars(
        select(OrganisationRow).where(OrganisationRow.name == organisation)
    ).first()
    if org is None:
        org = OrganisationRow(
            id="O" + uuid.uuid4().hex[:15].upper(), name=organisation[:300], created_at=now
        )
        session.add(org)
        session.flush()
    link = session.scalars(
        select(CustomerOrganisationRow).where(
            CustomerOrganisationRow.customer_id == cid,
            CustomerOrganisationRow.organisation_id == org.id,
        )
    ).first()
    if link is None:
        session.add(
            CustomerOrganisationRow(
                customer_id=cid, organisation_id=org.id, role=role, created_at=now
            )
        )
    elif role:
        link.role = role
    session.flush()
    return org.id


def set_tier(session: Session, customer_id: str, tier: str, *, now: datetime) -> None:
    """Set the customer's loyalty tier (new cases get tier-dependent SLA targets)."""
    row = session.get(CustomerRow, active_id(session, customer_id))
    if row is None:
        raise CrmError("no such customer", customer_id=customer_id)
    row.tier, row.updated_at = tier, now
    session.flush()
