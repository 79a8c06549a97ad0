"""``ParsedMail`` -> ``ChannelEvent``: kind (message / auto_reply / bounce), customer, thread.

Bounces are recognised first (a delivery-status report, or a system sender with an
attached original): kind ``bounce``, the original Message-ID as ``in_reply_to`` so intake
attaches it to the original case, and ``metadata["bounce"]`` = ``permanent`` (5.x.x) or
``temporary`` (4.x.x). Then automatic mail (``loops.auto_reason``) becomes ``auto_reply``.
Everything else is a ``message`` from a person.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from connectors.base import ChannelEvent, ThreadRefs
from connectors.email.loops import auto_reason
from connectors.email.parse import ParsedMail
from connectors.email.threadrefs import DEFAULT_RULES, extract_thread, token_of_message_id

__all__ = ["bounce_kind", "external_id", "mail_to_event"]


def external_id(mail: ParsedMail) -> str:
    """The inbox key: the Message-ID, or the raw bytes' SHA-256 when there is none."""
    return mail.message_id or f"sha256:{mail.sha256}"


def bounce_kind(mail: ParsedMail) -> str | None:
    """``permanent`` / ``temporary`` for a delivery failure report, else None."""
    statuses = [s for s in mail.dsn_status if s[:1] in {"4", "5"}]
    is_dsn = mail.is_report and "delivery-status" in (mail.header("content-type") or "").lower()
    from_system = mail.from_addr.split("@", 1)[0].lower() in {"mailer-daemon", "postmaster"}
    if not (is_dsn or statuses or (from_system and mail.original_message_id)):
        return None
    if any(s.startswith("5") for s in statuses):
        return "permanent"
    if statuses:
        return "temporary"
    return "permanent" if is_dsn or from_system else None


def mail_to_event(
    mail: ParsedMail,
    *,
    received_at: datetime,
    rules: Sequence[str] = DEFAULT_RULES,
    domain: str | None = None,
    loop_id: str = "careflow",
    extra: dict[str, Any] | None = None,
) -> ChannelEvent:
    """Build the channel event for one parsed inbound message.

    ``received_at`` (the poll time, from the injected clock) is ``occurred_at``: the SLA
    starts when we received the mail, not at the sender's claimed ``Date:``, which is kept
    in ``metadata["date"]``.
    """
    match = extract_thread(mail, rules, domain=domain)
    metadata: dict[str, Any] = {
        "thread_rule": match.rule,
        "thread_candidates": [list(c) for c in match.candidates],
        "from": mail.from_addr,
        "to": list(mail.to[:50]),
        "cc": list(mail.cc[:50]),
        "date": mail.date.isoformat() if mail.date else None,
        "size": mail.size,
        "sha256": mail.sha256,
        "html_only": mail.html_only,
    }
    if mail.notes:
        metadata["notes"] = list(mail.notes)
    customer = {"email": mail.from_addr} if mail.from_addr else {}
    if mail.from_name:
        customer["name"] = mail.from_name
    thread = match.refs
    kind = "message"
    bounce = bounce_kind(mail)
    if bounce is not None:
        kind = "bounce"
        original = mail.original_message_id
        thread = ThreadRefs(
            message_id=mail.message_id,
            in_reply_to=original,
            references=(original,) if original else (),
            case_token=(token_of_message_id(original, domain) if original else None)
            or match.refs.case_token,
        )
        metadata.update(
            bounce=bounce,
            bounce_status=list(mail.dsn_status),
            bounce_recipients=list(mail.dsn_recipients),
            original_message_id=original,
        )
        customer = {"email": mail.dsn_recipients[0]} if mail.dsn_recipients else {}
        if bounce == "permanent" and mail.dsn_recipients:
            metadata["undeliverable"] = list(mail.dsn_recipients)
    else:
        reason = auto_reason(mail, loop_id=loop_id)
        if reason is not None:
            kind = "auto_reply"
            metadata["auto_reason"] = reason
    metadata.update(extra or {})
    return ChannelEvent(
        channel="email",
        external_id=external_id(mail),
        direction="inbound",
        occurred_at=received_at,
        kind=kind,
        customer=customer,
        thread=thread,
        subject=mail.subject,
        body=mail.text,
        attachments=mail.attachments,
        metadata=metadata,
    )
