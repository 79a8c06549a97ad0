"""Intake: a channel event in, the customer and the case it belongs to out.

``ingest(session, event, library=, clock=)`` runs the whole pipeline in the caller's
transaction:

1. inbox -- deduplicate on (channel, external id): a re-delivery is ``duplicate``;
2. correlate by case token and thread references (engine.intake.correlate);
3. identity -- resolve the customer (engine.crm; the case's customer when correlated);
4. correlate by the customer's open case waiting on this channel;
5. a correlated message becomes a pending ``Signal("customer_reply")`` of its case;
   an uncorrelated one starts the SOP the routing rules pick, or is only recorded;
6. record the interaction on the customer's timeline, with the rule that matched.

Anything that cannot be processed goes to the dead-letter store with its reason (status
``dead_letter``); intake never raises for a bad event. The HTTP API splits the pipeline in
two (``accept`` in the request, ``process_inbox`` in the background) so nothing acknowledged
is lost.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from connectors.base import ChannelEvent, EventFormatError, event_from_dict, event_to_dict
from engine.clock import Clock
from engine.crm.customers import Resolution, resolve_customer
from engine.crm.timeline import record_inbound
from engine.errors import CareflowError
from engine.intake.codec import event_json
from engine.intake.correlate import Correlation, correlate_thread, correlate_waiting
from engine.intake.inbox import accept, dead_letter
from engine.intake.routing import RouteDecision, route
from engine.interpreter.types import CaseStarted, Signal
from engine.sop.model import RoutingDoc
from engine.store.models import InboxRow
from engine.store.models_crm import CustomerRow

__all__ = [
    "IntakeLibrary",
    "IntakeResult",
    "INPUT_NAMES",
    "IntakeStatus",
    "SIGNAL_NAME",
    "ingest",
    "ingest_payload",
    "process_inbox",
    "process_pending",
]

SIGNAL_NAME = "customer_reply"
#: kinds that may start a case when nothing correlates
STARTING_KINDS = frozenset({"message", "form", "call_new"})
#: kinds that become a Signal when they correlate (call answer/hangup and auto-replies are
#: recorded on the case's timeline only: no SLA re-arm for out-of-office mail)
SIGNALLING_KINDS = frozenset({"message", "form", "call_new", "bounce"})


class IntakeStatus(StrEnum):
    STARTED = "started"
    CORRELATED = "correlated"
    RECORDED = "recorded"
    DUPLICATE = "duplicate"
    DEAD_LETTER = "dead_letter"
    IGNORED = "ignored"


@dataclass(frozen=True, slots=True)
class IntakeResult:
    """What intake did with one event, and why (``rule``: which correlation/routing rule)."""

    status: IntakeStatus
    case_id: str | None = None
    customer_id: str | None = None
    rule: str | None = None
    reason: str = ""
    inbox_id: int | None = None
    dead_letter_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "case_id": self.case_id,
            "customer_id": self.customer_id,
            "rule": self.rule,
            "reason": self.reason,
            "inbox_id": self.inbox_id,
            "dead_letter_id": self.dead_letter_id,
        }


class IntakeLibrary(Protocol):
    """What intake needs of engine.sop.library.Library."""

    @property
    def routing(self) -> RoutingDoc | None: ...

    def sop(self, sop_id: str, version: str | None = None) -> Any: ...


class _Unroutable(CareflowError):
    pass


#: the input names intake fills (docs/connectors.md); web-form ``fields`` may add more
INPUT_NAMES = (
    "request_text",
    "text",
    "subject",
    "body",
    "channel",
    "email",
    "phone",
    "handle",
    "customer_number",
    "customer_name",
    "name",
    "customer_id",
    "customer_tier",
    "language",
    "intent",
)


def _case_data(compiled: Any, event: ChannelEvent, customer_id: str, tier: str) -> dict[str, Any]:
    """Values for the SOP's ``input`` fields, taken from the event (by field name)."""
    c = event.customer
    text = "\n\n".join(p for p in (event.subject.strip(), event.body.strip()) if p)
    offered: dict[str, Any] = {
        "request_text": text,
        "text": text,
        "subject": event.subject,
        "body": event.body,
        "channel": event.channel,
        "email": c.get("email"),
        "phone": c.get("phone"),
        "handle": c.get("handle"),
        "customer_number": c.get("customer_number"),
        "customer_name": c.get("name"),
        "name": c.get("name"),
        "customer_id": customer_id,
        "customer_tier": tier,
        "language": event.metadata.get("language") or None,
        "intent": event.metadata.get("intent") or None,
    }
    form = event.metadata.get("fields")
    if isinstance(form, Mapping):
        offered.update({str(k): v for k, v in form.items()})
    data: dict[str, Any] = {}
    for name, spec in compiled.spec.data.items():
        if not spec.input or offered.get(name) is None:
            continue
        value = offered[name]
        if spec.type == "string" and not isinstance(value, str):
            continue
        if spec.enum and value not in spec.enum:
            continue
        data[name] = value
    return data


def _start(
    session: Session,
    library: IntakeLibrary,
    decision: RouteDecision,
    event: ChannelEvent,
    customer_id: str,
    now: datetime,
) -> str:
    from engine.store.cases import NewCase, register_sop_version, start_case

    try:
        compiled = library.sop(decision.sop)
    except KeyError as exc:
        raise _Unroutable(
            f"{decision.rule} names SOP {decision.sop!r}, which the library does not have"
        ) from exc
    register_sop_version(session, compiled, now=now)
    customer = session.get(CustomerRow, customer_id)
    tier = customer.tier if customer is not None else "standard"
    started = CaseStarted(
        data=_case_data(compiled, event, customer_id, tier),
        priority=decision.priority,
        tier=tier,
        channel=event.channel,
        customer_id=customer_id,
        actor=f"channel:{event.channel}",
    )
    return start_case(
        session,
        NewCase(
            sop_id=compiled.id,
            sop_hash=compiled.hash,
            sop_version=str(compiled.version),
            event_json=event_json(started),
            priority=decision.priority,
            tier=tier,
            channel=event.channel,
            customer_id=customer_id,
            actor=started.actor,
        ),
        now=now,
    )


def _signal(session: Session, case_id: str, event: ChannelEvent, now: datetime) -> None:
    from engine.store.cases import post_event

    payload = {
        "channel": event.channel,
        "kind": event.kind,
        "subject": event.subject,
        "body": event.body,
        "external_id": event.external_id,
        "occurred_at": event.occurred_at.isoformat(),
        "customer": dict(event.customer),
        "metadata": event_to_dict(event)["metadata"],
        "attachments": [a.name for a in event.attachments],
    }
    sig = Signal(
        name=SIGNAL_NAME,
        payload=payload,
        event_id=f"{event.channel}:{event.external_id}",
        actor="customer",
    )
    post_event(session, case_id, "Signal", event_json(sig), now=now, actor="customer")


def _verified_kinds(event: ChannelEvent) -> tuple[str, ...]:
    raw = event.metadata.get("verified")
    if isinstance(raw, (list, tuple)):
        return tuple(str(k) for k in raw)
    return ()


def _process(
    session: Session,
    event: ChannelEvent,
    inbox_id: int,
    library: IntakeLibrary | None,
    now: datetime,
) -> IntakeResult:
    corr: Correlation = correlate_thread(session, event)
    who: Resolution = resolve_customer(
        session,
        event.customer,
        source=event.channel,
        now=now,
        verified=_verified_kinds(event),
        known_customer=corr.customer_id,
    )
    cid = who.customer_id
    if corr.case_id is None and event.direction == "inbound":
        corr = correlate_waiting(session, event, cid) if not corr.closed_case else corr
    reason = "; ".join(who.invalid)
    if corr.case_id is not None:
        signalled = event.direction == "inbound" and event.kind in SIGNALLING_KINDS
        if signalled:
            _signal(session, corr.case_id, event, now)
        record_inbound(
            session,
            event,
            customer_id=cid,
            case_id=corr.case_id,
            rule=corr.rule,
            now=now,
            inbox_id=inbox_id,
        )
        status = IntakeStatus.CORRELATED if signalled else IntakeStatus.RECORDED
        return IntakeResult(status, corr.case_id, cid, corr.rule, reason, inbox_id)
    if event.direction != "inbound" or event.kind not in STARTING_KINDS:
        record_inbound(
            session,
            event,
            customer_id=cid,
            case_id=None,
            rule="recorded",
            now=now,
            inbox_id=inbox_id,
        )
        why = f"{event.direction} {event.kind}: recorded only"
        return IntakeResult(
            IntakeStatus.RECORDED,
            None,
            cid,
            None,
            "; ".join(p for p in (why, reason) if p),
            inbox_id,
        )
    decision = route(library.routing if library is not None else None, event)
    if decision is None:
        record_inbound(
            session,
            event,
            customer_id=cid,
            case_id=None,
            rule="recorded",
            now=now,
            inbox_id=inbox_id,
        )
        return IntakeResult(
            IntakeStatus.RECORDED,
            None,
            cid,
            None,
            "; ".join(p for p in ("no routing rule matched", reason) if p),
            inbox_id,
        )
    assert library is not None
    case_id = _start(session, library, decision, event, cid, now)
    record_inbound(
        session,
        event,
        customer_id=cid,
        case_id=case_id,
        rule=decision.rule,
        now=now,
        inbox_id=inbox_id,
    )
    notes = [*decision.skipped, reason] + (
        [f"previous case {corr.closed_case} is closed"] if corr.closed_case else []
    )
    return IntakeResult(
        IntakeStatus.STARTED,
        case_id,
        cid,
        decision.rule,
        "; ".join(p for p in notes if p),
        inbox_id,
    )


def process_inbox(
    session: Session, inbox_id: int, *, library: IntakeLibrary | None, clock: Clock
) -> IntakeResult:
    """Process an accepted inbox row (status ``received``) exactly once.

    A failure inside processing rolls back the partial work (savepoint), stores a dead
    letter with the reason and marks the inbox row ``dead_letter``; it never raises for a
    bad event. Database errors are re-raised: the row stays ``received`` for a retry.
    """
    now = clock.now()
    lock = session.get_bind().dialect.name == "postgresql"  # SQLite: BEGIN IMMEDIATE locks
    row = session.get(InboxRow, inbox_id, with_for_update=lock)
    if row is None:
        raise CareflowError(f"no inbox row {inbox_id}")
    if row.status != "received":
        return IntakeResult(
            IntakeStatus.DUPLICATE,
            row.case_id,
            None,
            None,
            f"inbox row already {row.status}",
            inbox_id,
        )
    try:
        event = event_from_dict(row.payload)
        with session.begin_nested():
            result = _process(session, event, inbox_id, library, now)
    except SQLAlchemyError:
        raise  # the store is in trouble, not the event: leave the row 'received' for a retry
    except Exception as exc:  # noqa: BLE001 -- a bad event (or a bug) must never stop intake
        reason = f"{type(exc).__name__}: {exc}"
        dl = dead_letter(
            session,
            f"inbox:{row.channel}",
            reason,
            {"inbox_id": inbox_id, "event": row.payload},
            now=now,
        )
        row.status = IntakeStatus.DEAD_LETTER.value
        session.flush()
        return IntakeResult(IntakeStatus.DEAD_LETTER, None, None, None, reason, inbox_id, dl)
    row.status = result.status.value
    row.case_id = result.case_id
    session.flush()
    return result


def ingest(
    session: Session, event: ChannelEvent, *, library: IntakeLibrary | None, clock: Clock
) -> IntakeResult:
    """Run the whole intake pipeline for one event in the caller's transaction."""
    inbox_id, duplicate = accept(session, event, now=clock.now())
    if duplicate:
        existing = session.get(InboxRow, inbox_id)
        return IntakeResult(
            IntakeStatus.DUPLICATE,
            existing.case_id if existing else None,
            None,
            None,
            f"already received as inbox row {inbox_id}",
            inbox_id,
        )
    return process_inbox(session, inbox_id, library=library, clock=clock)


def ingest_payload(
    session: Session, data: Any, *, source: str, library: IntakeLibrary | None, clock: Clock
) -> IntakeResult:
    """Validate decoded channel-event JSON and ingest it; invalid JSON goes to dead letters."""
    try:
        event = event_from_dict(data)
    except EventFormatError as exc:
        dl = dead_letter(session, source, str(exc), {"event": data}, now=clock.now())
        return IntakeResult(IntakeStatus.DEAD_LETTER, reason=str(exc), dead_letter_id=dl)
    return ingest(session, event, library=library, clock=clock)


def process_pending(
    session: Session, *, library: IntakeLibrary | None, clock: Clock, limit: int = 500
) -> list[IntakeResult]:
    """Process inbox rows still ``received`` (after a crash between ack and processing)."""
    ids = list(
        session.scalars(
            select(InboxRow.id)
            .where(InboxRow.status == "received")
            .order_by(InboxRow.id)
            .limit(limit)
        )
    )
    return [process_inbox(session, i, library=library, clock=clock) for i in ids]
