"""Raw RFC 5322 bytes -> ``ParsedMail``: capped, iterative, tolerant of bad charsets.

Order of work: ``limits.prescan`` refuses what the stdlib parser cannot handle fast; the
compat32 ``BytesParser`` builds the tree (it does not interpret headers, which is where
the default policy is slow); an explicit stack walks the parts (no recursion), counting
them against ``max_parts``. Text/plain is preferred for the body, HTML is converted with
``html_to_text``; every other leaf with a file name or an attachment disposition becomes
an attachment whose bytes go to the ``store_attachment`` callback (content-addressed by
SHA-256, see ``attachments.py``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from email.parser import BytesParser, HeaderParser
from email.policy import compat32
from email.utils import getaddresses, parsedate_to_datetime
from types import MappingProxyType

from connectors.base import Attachment
from connectors.email.headers import _charset_decode, decode_text, safe_filename
from connectors.email.html_text import html_to_text
from connectors.email.limits import MailLimits, MailRejected, prescan

__all__ = ["ParsedMail", "StoreAttachment", "normalize_msgid", "parse_mail", "split_msgids"]

#: stores attachment bytes and returns where (a path) -- or None to keep metadata only
StoreAttachment = Callable[[bytes, str], str | None]

#: header names (lower case) kept verbatim for loop/bounce classification
KEPT_HEADERS = (
    "auto-submitted",
    "precedence",
    "x-precedence",
    "x-autoreply",
    "x-autorespond",
    "x-auto-response-suppress",
    "list-id",
    "list-unsubscribe",
    "x-loop",
    "return-path",
    "x-fc-machinegenerated",
    "x-careflow-loop",
    "content-type",
    "x-failed-recipients",
)


@dataclass(frozen=True, slots=True)
class ParsedMail:
    """One inbound e-mail, decoded; no stdlib ``Message`` escapes this module."""

    message_id: str | None
    in_reply_to: str | None
    references: tuple[str, ...]
    from_addr: str
    from_name: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    subject: str
    date: datetime | None
    text: str
    html_only: bool
    attachments: tuple[Attachment, ...]
    headers: Mapping[str, tuple[str, ...]]
    sha256: str
    size: int
    #: for delivery-status reports: the status codes and the original message's id
    dsn_status: tuple[str, ...] = ()
    dsn_recipients: tuple[str, ...] = ()
    original_message_id: str | None = None
    is_report: bool = False
    notes: tuple[str, ...] = field(default=())

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[0] if values else None


def normalize_msgid(value: str | None) -> str | None:
    """``<id@host>`` form of a Message-ID, or None for an empty/garbled value.

    >>> normalize_msgid("  <abc@x.example> (comment)")
    '<abc@x.example>'
    >>> normalize_msgid("abc@x.example")
    '<abc@x.example>'
    """
    ids = split_msgids(value)
    return ids[0] if ids else None


def split_msgids(value: str | None, *, limit: int = 100) -> tuple[str, ...]:
    """All Message-IDs in a References/In-Reply-To value, in order, capped at ``limit``."""
    if not value:
        return ()
    text = " ".join(str(value).split())
    out: list[str] = []
    start = text.find("<")
    if start < 0:
        token = text.split(" ", 1)[0].strip("<>")
        return (f"<{token}>",) if "@" in token and len(token) < 500 else ()
    while start >= 0 and len(out) < limit:
        end = text.find(">", start)
        if end < 0:
            break
        token = text[start + 1 : end].strip()
        if token and len(token) < 500 and " " not in token:
            out.append(f"<{token}>")
        start = text.find("<", end)
    return tuple(out)


def _addresses(msg: Message, name: str) -> list[tuple[str, str]]:
    values = [decode_text(v, max_chars=65_536) for v in msg.get_all(name) or []]
    return [(decode_text(n), a.strip().lower()) for n, a in getaddresses(values) if a]


def _payload_text(part: Message) -> str:
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        return ""
    return _charset_decode(data, part.get_content_charset())


def _is_attachment(part: Message) -> bool:
    disposition = (part.get("Content-Disposition") or "").split(";", 1)[0].strip().lower()
    return disposition == "attachment" or part.get_filename() is not None


@dataclass
class _Walk:
    plain: str | None = None
    html: str | None = None
    attachments: list[Attachment] = field(default_factory=list)
    dsn_status: list[str] = field(default_factory=list)
    dsn_recipients: list[str] = field(default_factory=list)
    original_id: str | None = None
    notes: list[str] = field(default_factory=list)


def _read_delivery_status(part: Message, walk: _Walk) -> None:
    payload = part.get_payload()
    blocks = payload if isinstance(payload, list) else []
    if not blocks:  # some generators leave it as text
        text = _payload_text(part)
        blocks = [
            HeaderParser(policy=compat32).parsestr(b) for b in text.split("\n\n") if b.strip()
        ]
    for block in blocks:
        if not isinstance(block, Message):
            continue
        status = (block.get("Status") or "").strip()
        if status:
            walk.dsn_status.append(status.split()[0])
        rcpt = block.get("Final-Recipient") or block.get("Original-Recipient")
        if rcpt:
            walk.dsn_recipients.append(rcpt.split(";", 1)[-1].strip().lower())


def _original_headers(part: Message) -> Message | None:
    ctype = part.get_content_type()
    if ctype == "message/rfc822":
        payload = part.get_payload()
        if isinstance(payload, list) and payload and isinstance(payload[0], Message):
            return payload[0]
    if ctype == "text/rfc822-headers":
        return HeaderParser(policy=compat32).parsestr(_payload_text(part)[:65_536])
    return None


def _walk(root: Message, limits: MailLimits, store: StoreAttachment | None) -> _Walk:
    walk = _Walk()
    stack: list[Message] = [root]
    count = 0
    while stack:
        part = stack.pop()
        count += 1
        if count > limits.max_parts:
            raise MailRejected("too_many_parts", f"more than {limits.max_parts} MIME parts")
        ctype = part.get_content_type()
        if ctype == "message/delivery-status":
            _read_delivery_status(part, walk)
            continue
        original = _original_headers(part)
        if original is not None:
            walk.original_id = walk.original_id or normalize_msgid(original.get("Message-ID"))
            if ctype == "text/rfc822-headers":
                continue
        if part.is_multipart() and ctype != "message/rfc822":
            children = part.get_payload()
            if isinstance(children, list):
                stack.extend(c for c in reversed(children) if isinstance(c, Message))
            continue
        _leaf(part, ctype, walk, store)
    return walk


def _leaf(part: Message, ctype: str, walk: _Walk, store: StoreAttachment | None) -> None:
    if not _is_attachment(part) and ctype == "text/plain" and walk.plain is None:
        walk.plain = _payload_text(part)
        return
    if not _is_attachment(part) and ctype == "text/html" and walk.html is None:
        walk.html = _payload_text(part)
        return
    if ctype == "message/rfc822":
        inner = part.get_payload(0)
        data = inner.as_bytes() if isinstance(inner, Message) else b""
    else:
        raw = part.get_payload(decode=True)
        data = raw if isinstance(raw, bytes) else b""
    raw_name = part.get_filename() or ""
    name = safe_filename(decode_text(raw_name)) if raw_name else f"part-{len(walk.attachments) + 1}"
    if raw_name and name != decode_text(raw_name).strip():
        walk.notes.append(f"attachment name {raw_name[:80]!r} sanitised to {name!r}")
    digest = hashlib.sha256(data).hexdigest()
    path = store(data, digest) if store is not None else None
    walk.attachments.append(Attachment(name, ctype, len(data), digest, path))


def _date(msg: Message) -> datetime | None:
    value = msg.get("Date")
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def parse_mail(
    raw: bytes,
    limits: MailLimits | None = None,
    *,
    store_attachment: StoreAttachment | None = None,
) -> ParsedMail:
    """Parse one raw message under ``limits``.

    Raises:
        MailRejected: a cap was exceeded or the structure cannot be walked (reason code
            and detail say which); the caller dead-letters the raw bytes with it.
    """
    limits = limits or MailLimits()
    prescan(raw, limits)
    try:
        msg = BytesParser(policy=compat32).parsebytes(raw)
        walk = _walk(msg, limits, store_attachment)
    except RecursionError as exc:  # backstop: prescan should make this unreachable
        raise MailRejected("too_deep", "MIME structure too deeply nested") from exc
    except (ValueError, TypeError, LookupError, AssertionError) as exc:
        raise MailRejected("unparseable", f"{type(exc).__name__}: {exc}"[:300]) from exc
    senders = _addresses(msg, "From")
    from_name, from_addr = senders[0] if senders else ("", "")
    if walk.plain is not None and walk.plain.strip():
        text, html_only = walk.plain, False
    elif walk.html is not None:
        text, html_only = html_to_text(walk.html, max_chars=limits.max_body_chars), True
    else:
        text, html_only = walk.plain or "", False
    kept: dict[str, tuple[str, ...]] = {}
    for name in KEPT_HEADERS:
        values = msg.get_all(name)
        if values:
            kept[name] = tuple(decode_text(str(v), max_chars=2_048) for v in values)
    ctype = msg.get_content_type()
    return ParsedMail(
        message_id=normalize_msgid(msg.get("Message-ID")),
        in_reply_to=normalize_msgid(msg.get("In-Reply-To")),
        references=split_msgids(msg.get("References")),
        from_addr=from_addr,
        from_name=from_name,
        to=tuple(a for _, a in _addresses(msg, "To")),
        cc=tuple(a for _, a in _addresses(msg, "Cc")),
        subject=" ".join(decode_text(msg.get("Subject"), max_chars=2_048).split()),
        date=_date(msg),
        text=text.replace("\r\n", "\n")[: limits.max_body_chars],
        html_only=html_only,
        attachments=tuple(walk.attachments),
        headers=MappingProxyType(kept),
        sha256=hashlib.sha256(raw).hexdigest(),
        size=len(raw),
        dsn_status=tuple(walk.dsn_status),
        dsn_recipients=tuple(walk.dsn_recipients),
        original_message_id=walk.original_id,
        is_report=ctype == "multipart/report",
        notes=tuple(walk.notes),
    )
