"""The customer's one timeline: record every interaction, read them back with the cases.

Intake records every inbound event (``record_inbound``); the outbox dispatcher records
every outbound message it delivered (``record_outbound``), so the timeline holds both
directions on every channel. ``customer_view`` returns the customer, their identifiers
and organisations, and one time-ordered list of interactions and cases.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.base import ChannelEvent, Delivery, OutboundMessage
from engine.crm.customers import CrmError, active_id
from engine.store.models_crm import (
    CustomerOrganisationRow,
    CustomerRow,
    IdentifierRow,
    InteractionRow,
    OrganisationRow,
)

__all__ = [
    "EXCERPT_CHARS",
    "CustomerView",
    "TimelineEntry",
    "customer_view",
    "is_deliverable",
    "record_inbound",
    "record_outbound",
]

EXCERPT_CHARS = 500


def _excerpt(text: str) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1] + "\u2026"


def record_inbound(
    session: Session,
    event: ChannelEvent,
    *,
    customer_id: str | None,
    case_id: str | None,
    rule: str | None,
    now: datetime,
    inbox_id: int | None = None,
) -> InteractionRow:
    """Put an inbound (or connector-reported outbound) channel event on the timeline."""
    detail: dict[str, Any] = {}
    for key in (
        "callId",
        "queue",
        "user",
        "cause",
        "answeringNumber",
        "duration_s",
        "bounce",
        "undeliverable",
    ):
        if key in event.metadata:
            detail[key] = event.metadata[key]
    if event.attachments:
        detail["attachments"] = [a.name for a in event.attachments]
    row = InteractionRow(
        customer_id=customer_id,
        case_id=case_id,
        channel=event.channel,
        direction=event.direction,
        kind=event.kind,
        external_id=event.external_id,
        message_id=event.thread.message_id,
        subject=event.subject[:2000],
        excerpt=_excerpt(event.body),
        occurred_at=event.occurred_at,
        recorded_at=now,
        rule=rule,
        public=event.kind not in ("bounce", "auto_reply"),
        inbox_id=inbox_id,
        detail=detail,
    )
    session.add(row)
    session.flush()
    return row


def record_outbound(
    session: Session,
    msg: OutboundMessage,
    *,
    now: datetime,
    delivery: Delivery | None = None,
    customer_id: str | None = None,
) -> InteractionRow:
    """Put a sent message on the timeline (called by the outbox dispatcher after ``send``).

    The customer is ``customer_id`` or the customer of ``msg.case_id``. The id the message
    went out with is stored -- ``msg.thread.message_id``, else the connector's
    ``delivery.external_id`` (the e-mail connector returns the Message-ID it generated),
    else ``msg.message_id`` -- so a reply that references it correlates to the case.
    """
    if customer_id is None and msg.case_id:
        from engine.store.models import CaseRow

        case = session.get(CaseRow, msg.case_id)
        customer_id = case.customer_id if case is not None else None
    row = InteractionRow(
        customer_id=customer_id,
        case_id=msg.case_id,
        channel=msg.channel,
        direction="outbound",
        kind="message",
        external_id=delivery.external_id if delivery else None,
        message_id=(
            msg.thread.message_id or (delivery.external_id if delivery else None) or msg.message_id
        ),
        subject=msg.subject[:2000],
        excerpt=_excerpt(msg.body),
        occurred_at=now,
        recorded_at=now,
        rule="outbound",
        public=True,
        detail={
            "to": msg.to,
            "automatic": msg.automatic,
            "status": delivery.status if delivery else "queued",
        },
    )
    session.add(row)
    session.flush()
    return row


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One line of the customer view: an interaction or a case."""

    at: datetime
    type: str  # interaction | case
    channel: str | None
    direction: str | None
    kind: str
    case_id: str | None
    summary: str
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CustomerView:
    customer_id: str
    display_name: str
    tier: str
    identifiers: tuple[tuple[str, str, str, str], ...]  # (kind, value, verification, source)
    organisations: tuple[str, ...]
    merged_from: tuple[str, ...]
    entries: tuple[TimelineEntry, ...]

    @property
    def channels(self) -> frozenset[str]:
        return frozenset(e.channel for e in self.entries if e.channel)

    @property
    def case_ids(self) -> frozenset[str]:
        return frozenset(e.case_id for e in self.entries if e.case_id)


def _case_entries(session: Session, customer_id: str) -> list[TimelineEntry]:
    from engine.store.models import CaseRow

    out = []
    for case in session.scalars(select(CaseRow).where(CaseRow.customer_id == customer_id)):
        out.append(
            TimelineEntry(
                at=case.created_at,
                type="case",
                channel=case.channel,
                direction=None,
                kind=f"case {case.status}",
                case_id=case.id,
                summary=f"{case.sop_id} v{case.sop_version} level={case.level or '-'} "
                f"priority={case.priority}" + (f" outcome={case.outcome}" if case.outcome else ""),
                detail={"status": case.status, "level": case.level, "sop": case.sop_id},
            )
        )
    return out


def customer_view(
    session: Session, customer_id: str, *, include_internal: bool = True
) -> CustomerView:
    """Everything about one customer in one time-ordered list.

    Raises:
        CrmError: no such customer.
    """
    cid = active_id(session, customer_id)
    customer = session.get(CustomerRow, cid)
    if customer is None:
        raise CrmError("no such customer", customer_id=customer_id)
    idents = tuple(
        (r.kind, r.value, r.verification, r.source)
        for r in session.scalars(
            select(IdentifierRow)
            .where(IdentifierRow.customer_id == cid)
            .order_by(IdentifierRow.kind, IdentifierRow.value)
        )
    )
    orgs = tuple(
        session.scalars(
            select(OrganisationRow.name)
            .join(
                CustomerOrganisationRow,
                CustomerOrganisationRow.organisation_id == OrganisationRow.id,
            )
            .where(CustomerOrganisationRow.customer_id == cid)
        )
    )
    merged_from = tuple(
        session.scalars(select(CustomerRow.id).where(CustomerRow.merged_into == cid))
    )
    q = select(InteractionRow).where(InteractionRow.customer_id == cid)
    if not include_internal:
        q = q.where(InteractionRow.public.is_(True))
    entries = [
        TimelineEntry(
            at=r.occurred_at,
            type="interaction",
            channel=r.channel,
            direction=r.direction,
            kind=r.kind,
            case_id=r.case_id,
            summary=(
                f"{r.subject} \u2014 {r.excerpt}"
                if r.subject and r.excerpt
                else r.subject or r.excerpt
            ),
            detail={"rule": r.rule, "external_id": r.external_id, **(r.detail or {})},
        )
        for r in session.scalars(q)
    ]
    entries += _case_entries(session, cid)
    entries.sort(key=lambda e: (e.at, 0 if e.type == "case" else 1))
    return CustomerView(
        cid, customer.display_name, customer.tier, idents, orgs, merged_from, tuple(entries)
    )


def is_deliverable(session: Session, address: str, *, customer_id: str | None = None) -> bool:
    """False when a permanent bounce (``metadata.bounce == "permanent"``, addresses in
    ``metadata.undeliverable``, as the e-mail connector reports them) named ``address``.

    The outbox checks it before automatic mail, so a dead address gets no more
    notifications (Zammad 0950). ``customer_id`` narrows the search to that customer's
    timeline (bounces correlate to the original case, hence to its customer).
    """
    wanted = address.strip().lower()
    q = select(InteractionRow.detail).where(InteractionRow.kind == "bounce")
    if customer_id is not None:
        q = q.where(InteractionRow.customer_id == active_id(session, customer_id))
    details: list[Any] = list(session.scalars(q))
    for detail in details:
        if not isinstance(detail, dict) or detail.get("bounce") != "permanent":
            continue
        listed = detail.get("undeliverable") or []
        if isinstance(listed, list) and wanted in {str(a).strip().lower() for a in listed}:
            return False
    return True
