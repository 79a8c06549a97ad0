"""The connector contract: channel events in, outbound messages out (version ``CONTRACT_VERSION``).

A connector turns one channel (e-mail, phone, web form, chat, social, SMS, letter, fax)
into normalised ``ChannelEvent`` values and sends ``OutboundMessage`` values on it. The
engine never sees a channel's wire format: intake (engine.intake) deduplicates events on
``(channel, external_id)``, resolves the customer, correlates the event to a case, and the
outbox dispatcher calls ``Connector.send`` at least once per message, carrying an
idempotency key so that a connector (or the remote system) can drop duplicates.

Everything here is frozen data plus one typed ``Protocol``; it imports only the standard
library and jsonschema (lazily, in ``validate_event_json``). The JSON form of a channel
event is described by ``schemas/channel_event.schema.json`` (JSON Schema 2020-12); the
full contract for integrators is docs/connectors.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

from engine.errors import ConnectorError

__all__ = [
    "CHANNELS",
    "CONTRACT_VERSION",
    "DIRECTIONS",
    "EVENT_KINDS",
    "SCHEMA_PATH",
    "Attachment",
    "ChannelEvent",
    "Connector",
    "ConnectorHealth",
    "Delivery",
    "DeliveryStatus",
    "EventFormatError",
    "OutboundMessage",
    "PollingConnector",
    "ThreadRefs",
    "event_from_dict",
    "event_from_json",
    "event_to_dict",
    "event_to_json",
    "validate_event_json",
]

#: the version of this contract; a connector built for 1.x works with every 1.y engine
CONTRACT_VERSION = "1.0"

CHANNELS = ("email", "phone", "web", "chat", "social", "sms", "letter", "fax", "system")
DIRECTIONS = ("inbound", "outbound")
EVENT_KINDS = (
    "message",
    "form",
    "call_new",
    "call_answer",
    "call_hangup",
    "bounce",
    "auto_reply",
    "status",
)
#: customer identifier keys a connector may fill (all optional)
CUSTOMER_KEYS = ("email", "phone", "handle", "customer_number", "name")

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "channel_event.schema.json"

_EMPTY: Mapping[str, Any] = MappingProxyType({})


def _frozen(items: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(items or {}))


class EventFormatError(ConnectorError):
    """A channel event (JSON or values) does not match the contract.

    Attributes:
        json_path: where in the event, e.g. ``$.customer.email``.
        reason: what is wrong.
    """

    def __init__(self, reason: str, *, json_path: str = "$", connector: str = "intake") -> None:
        self.json_path = json_path
        self.reason = reason
        super().__init__(
            connector, f"invalid channel event at {json_path}: {reason}", retryable=False
        )


@dataclass(frozen=True, slots=True)
class ThreadRefs:
    """What ties a message to an earlier one (threading precedence, docs/connectors.md).

    ``message_id``: this message's own id (e-mail Message-ID, chat message id ...);
    ``in_reply_to`` / ``references``: ids of earlier messages it answers;
    ``case_token``: careflow's own token found in headers/body (strongest rule);
    ``subject_tag``: a ``[Case#...]`` tag found in the subject.
    """

    message_id: str | None = None
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    case_token: str | None = None
    subject_tag: str | None = None

    def ids(self) -> tuple[str, ...]:
        """Earlier message ids this message points at, most specific first."""
        seen: list[str] = []
        for ref in (self.in_reply_to, *reversed(self.references)):
            if ref and ref not in seen:
                seen.append(ref)
        return tuple(seen)


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file that came with an event; ``path`` points at stored bytes (never inline)."""

    name: str
    content_type: str
    size: int
    sha256: str
    path: str | None = None


@dataclass(frozen=True, slots=True)
class ChannelEvent:
    """One normalised thing that happened on a channel.

    ``external_id`` is unique per channel (Message-ID, callId+event, webhook delivery id,
    file SHA-256): the inbox deduplicates on ``(channel, external_id)``, so a connector that
    delivers the same item twice is harmless.
    """

    channel: str  # email|phone|web|chat|social|sms|letter|fax|system
    external_id: str
    direction: str  # inbound|outbound
    occurred_at: datetime
    kind: str = "message"  # message|form|call_new|call_answer|call_hangup|bounce|auto_reply|status
    customer: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    thread: ThreadRefs = field(default_factory=ThreadRefs)
    subject: str = ""
    body: str = ""
    attachments: tuple[Attachment, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)

    def __post_init__(self) -> None:
        if self.channel not in CHANNELS:
            raise EventFormatError(
                f"unknown channel {self.channel!r} (one of {', '.join(CHANNELS)})",
                json_path="$.channel",
            )
        if self.direction not in DIRECTIONS:
            raise EventFormatError(
                f"direction must be inbound or outbound, not {self.direction!r}",
                json_path="$.direction",
            )
        if self.kind not in EVENT_KINDS:
            raise EventFormatError(
                f"unknown kind {self.kind!r} (one of {', '.join(EVENT_KINDS)})", json_path="$.kind"
            )
        if not isinstance(self.external_id, str) or not self.external_id.strip():
            raise EventFormatError(
                "external_id must be a non-empty string", json_path="$.external_id"
            )
        if not isinstance(self.occurred_at, datetime) or self.occurred_at.tzinfo is None:
            raise EventFormatError(
                "occurred_at must be an aware datetime", json_path="$.occurred_at"
            )
        unknown = set(self.customer) - set(CUSTOMER_KEYS)
        if unknown:
            raise EventFormatError(
                f"unknown customer identifier(s) {sorted(unknown)}", json_path="$.customer"
            )
        object.__setattr__(self, "customer", _frozen(self.customer))
        object.__setattr__(self, "metadata", _frozen(self.metadata))
        object.__setattr__(self, "attachments", tuple(self.attachments))

    @property
    def key(self) -> tuple[str, str]:
        """The inbox deduplication key."""
        return (self.channel, self.external_id)

    def to_json(self) -> str:
        return event_to_json(self)

    @staticmethod
    def from_json(text: str | bytes) -> ChannelEvent:
        return event_from_json(text)


class DeliveryStatus(StrEnum):
    SENT = "sent"
    FAILED = "failed"  # permanent: do not retry
    DEFERRED = "deferred"  # temporary: retry later


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """A message the outbox hands to a connector; send it at least once, keyed for dedup.

    ``automatic`` messages (acknowledgements, notifications) must carry the channel's
    "auto-submitted" marking (e-mail: ``Auto-Submitted: auto-replied``) and never go to
    no-reply addresses.
    """

    message_id: str
    case_id: str | None
    channel: str
    to: str
    subject: str
    body: str
    idempotency_key: str
    automatic: bool = True
    headers: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    thread: ThreadRefs = field(default_factory=ThreadRefs)

    def __post_init__(self) -> None:
        object.__setattr__(self, "headers", _frozen(self.headers))


@dataclass(frozen=True, slots=True)
class Delivery:
    """What ``Connector.send`` did: ``external_id`` is the remote system's id, if any."""

    message_id: str
    external_id: str | None
    status: str  # sent|failed|deferred (DeliveryStatus)
    detail: str = ""

    def __post_init__(self) -> None:
        DeliveryStatus(self.status)


@dataclass(frozen=True, slots=True)
class ConnectorHealth:
    """A connector's health for ``/v1/health`` and alarms: errors since the last success."""

    name: str
    ok: bool
    last_success: datetime | None = None
    last_error: str | None = None
    errors: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ok": self.ok,
            "last_success": self.last_success.isoformat() if self.last_success else None,
            "last_error": self.last_error,
            "errors": self.errors,
        }


@runtime_checkable
class Connector(Protocol):
    """A channel connector. ``send`` and ``health`` are required; push channels (webhooks)
    have no ``receive`` -- their events arrive through the HTTP intake API.

    ``send`` must not raise for an expected remote refusal: it returns a ``Delivery`` with
    status ``failed`` (permanent) or ``deferred`` (retry later). It raises
    ``ConnectorError`` only for its own malfunction.
    """

    name: str

    def send(self, msg: OutboundMessage) -> Delivery: ...

    def health(self) -> ConnectorHealth: ...


@runtime_checkable
class PollingConnector(Connector, Protocol):
    """A connector that fetches events itself (IMAP, file drop)."""

    def receive(self) -> Iterable[ChannelEvent]: ...


# ---- JSON form -----------------------------------------------------------------------


def _thread_to_dict(t: ThreadRefs) -> dict[str, Any]:
    return {
        "message_id": t.message_id,
        "in_reply_to": t.in_reply_to,
        "references": list(t.references),
        "case_token": t.case_token,
        "subject_tag": t.subject_tag,
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def event_to_dict(event: ChannelEvent) -> dict[str, Any]:
    """The JSON-able form of ``event`` (matches the channel event schema)."""
    return {
        "contract_version": CONTRACT_VERSION,
        "channel": event.channel,
        "external_id": event.external_id,
        "direction": event.direction,
        "occurred_at": event.occurred_at.astimezone(UTC).isoformat(),
        "kind": event.kind,
        "customer": dict(event.customer),
        "thread": _thread_to_dict(event.thread),
        "subject": event.subject,
        "body": event.body,
        "attachments": [
            {
                "name": a.name,
                "content_type": a.content_type,
                "size": a.size,
                "sha256": a.sha256,
                "path": a.path,
            }
            for a in event.attachments
        ],
        "metadata": _jsonable(event.metadata),
    }


def event_to_json(event: ChannelEvent) -> str:
    return json.dumps(event_to_dict(event), ensure_ascii=False, sort_keys=True)


@lru_cache(maxsize=1)
def _validator() -> Any:
    from jsonschema import Draft202012Validator, FormatChecker

    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FormatChecker())


def validate_event_json(data: Any) -> None:
    """Check decoded JSON against schemas/channel_event.schema.json.

    Raises:
        EventFormatError: the first (most relevant) violation, with its JSON path.
    """
    from jsonschema.exceptions import best_match

    error = best_match(_validator().iter_errors(data))
    if error is not None:
        raise EventFormatError(error.message[:300], json_path=error.json_path)


def _parse_instant(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise EventFormatError(
            f"not an ISO 8601 instant: {text!r}", json_path="$.occurred_at"
        ) from exc
    if value.tzinfo is None:
        raise EventFormatError("occurred_at needs a UTC offset", json_path="$.occurred_at")
    return value.astimezone(UTC)


def event_from_dict(data: Any) -> ChannelEvent:
    """Validate decoded JSON and build the event.

    Raises:
        EventFormatError: schema violation or an impossible value, with its JSON path.
    """
    validate_event_json(data)
    thread = data.get("thread") or {}
    return ChannelEvent(
        channel=data["channel"],
        external_id=data["external_id"],
        direction=data["direction"],
        occurred_at=_parse_instant(data["occurred_at"]),
        kind=data.get("kind", "message"),
        customer={k: v for k, v in (data.get("customer") or {}).items() if v},
        thread=ThreadRefs(
            message_id=thread.get("message_id"),
            in_reply_to=thread.get("in_reply_to"),
            references=tuple(thread.get("references") or ()),
            case_token=thread.get("case_token"),
            subject_tag=thread.get("subject_tag"),
        ),
        subject=data.get("subject", ""),
        body=data.get("body", ""),
        attachments=tuple(
            Attachment(a["name"], a["content_type"], a["size"], a["sha256"], a.get("path"))
            for a in data.get("attachments") or ()
        ),
        metadata=data.get("metadata") or {},
    )


def event_from_json(text: str | bytes) -> ChannelEvent:
    """Parse, validate and build a channel event from its JSON text.

    Raises:
        EventFormatError: not JSON, or not a valid channel event.
    """
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise EventFormatError(f"not JSON: {exc}") from exc
    return event_from_dict(data)
