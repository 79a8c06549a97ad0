"""``OutboundMessage`` -> RFC 5322 bytes, with threading headers and loop protection.

Every header value that may carry inbound or user text (subject, display names, extra
headers) goes through ``headers.safe_header_text``: on CPython 3.11.7 a decoded subject
containing an encoded newline injects a ``Bcc:`` line otherwise (CVE-2024-6923, R14).
Threading: our Message-ID ``<cf.{token}.{hash}@{domain}>`` (stable per idempotency key,
so a re-sent message has the same id and the receiver can drop it), In-Reply-To/References
from ``msg.thread``, the body watermark ``[ref:cf-token]`` and the subject tag
``[Case#token]``. Automatic mail carries ``Auto-Submitted: auto-replied`` (RFC 3834) and
every message carries our loop header.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

from connectors.base import OutboundMessage
from connectors.email.config import EmailConfig
from connectors.email.headers import safe_header_text
from connectors.email.loops import LOOP_HEADER
from connectors.email.parse import split_msgids
from connectors.email.threadrefs import make_message_id, subject_tag, valid_token, watermark
from engine.errors import ConnectorError

__all__ = ["ComposedMail", "case_token_for", "compose"]

#: headers a caller's ``msg.headers`` may not set: they are ours or structural
_RESERVED = frozenset(
    {
        "from",
        "to",
        "cc",
        "bcc",
        "subject",
        "message-id",
        "in-reply-to",
        "references",
        "date",
        "auto-submitted",
        "content-type",
        "content-transfer-encoding",
        "mime-version",
        "sender",
        "reply-to",
        "return-path",
        LOOP_HEADER.lower(),
    }
)


@dataclass(frozen=True, slots=True)
class ComposedMail:
    """The bytes to hand to SMTP, the Message-ID they carry, and the envelope."""

    data: bytes
    message_id: str
    sender: str
    recipients: tuple[str, ...]


def case_token_for(msg: OutboundMessage) -> str | None:
    """The token for threading: ``msg.thread.case_token``, else the case id if it fits."""
    for candidate in (msg.thread.case_token, msg.case_id):
        if candidate and valid_token(candidate):
            return candidate
    return None


_ADDR_SPEC = re.compile(r"^[^@\s<>,;:\"()\[\]\\]+@[^@\s<>,;:\"()\[\]\\]+$")


def _address(raw: str, name: str) -> Address:
    """One recipient from ``Name <addr>`` or ``addr``; never a group or a list.

    The address is taken from the LAST angle brackets before any decoding, so a display
    name like ``=?utf-8?q?Ann=0ABcc:_x@evil?=`` can neither inject a header nor turn the
    value into an RFC 5322 group that redirects the mail.
    """
    text = re.sub(r"[\x00-\x1f\x7f]+", " ", raw).strip()
    display = ""
    if text.endswith(">") and "<" in text:
        display, _, rest = text[:-1].rpartition("<")
        spec = rest.strip()
    else:
        spec = text
    if not _ADDR_SPEC.match(spec):
        raise ConnectorError(name, f"not a single e-mail address: {raw[:100]!r}", retryable=False)
    user, _, domain = spec.partition("@")
    try:
        return Address(
            display_name=safe_header_text(display.strip().strip('"')), username=user, domain=domain
        )
    except (ValueError, IndexError) as exc:
        raise ConnectorError(
            name, f"not an e-mail address: {raw[:100]!r}: {exc}", retryable=False
        ) from exc


def compose(msg: OutboundMessage, config: EmailConfig, *, now: datetime) -> ComposedMail:
    """Build the message for ``msg``.

    Raises:
        ConnectorError: the recipient or sender is not an address (not retryable).
    """
    token = case_token_for(msg)
    unique = hashlib.sha256(msg.idempotency_key.encode("utf-8")).hexdigest()[:20]
    given = split_msgids(msg.thread.message_id)
    message_id = given[0] if given else make_message_id(token, config.domain, unique=unique)
    subject = safe_header_text(msg.subject)
    if token and subject_tag(token).lower() not in subject.lower():
        subject = f"{subject} {subject_tag(token)}".strip()
    body = msg.body
    if token and watermark(token) not in body:
        body = f"{body.rstrip()}\n\n{watermark(token)}\n"

    out = EmailMessage(policy=SMTP)
    sender = Address(
        display_name=safe_header_text(config.from_name),
        addr_spec=safe_header_text(config.from_address),
    )
    recipient = _address(msg.to, config.name)
    out["From"] = sender
    out["To"] = recipient
    out["Subject"] = subject
    out["Date"] = format_datetime(now)
    out["Message-ID"] = message_id
    reply_to = split_msgids(msg.thread.in_reply_to)
    refs = [i for ref in msg.thread.references for i in split_msgids(ref)]
    refs += [i for i in reply_to if i not in refs]
    if reply_to:
        out["In-Reply-To"] = reply_to[0]
    if refs:
        out["References"] = " ".join(refs[-20:])
    if msg.automatic:
        out["Auto-Submitted"] = "auto-replied"
        out["X-Auto-Response-Suppress"] = "All"
    out[LOOP_HEADER] = safe_header_text(config.loop_id)
    for key, value in msg.headers.items():
        name = safe_header_text(key).replace(" ", "-").replace(":", "")
        if not name or name.lower() in _RESERVED:
            continue
        out[name] = safe_header_text(value)
    out.set_content(body)
    return ComposedMail(
        data=out.as_bytes(),
        message_id=message_id,
        sender=sender.addr_spec,
        recipients=(recipient.addr_spec,),
    )
