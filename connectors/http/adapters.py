"""What each intake endpoint accepts, and how it becomes a channel event.

Each endpoint has a pydantic model (for the OpenAPI description and validation) and an
adapter ``(body: Mapping, received_at) -> ChannelEvent``. Adapters are plain functions so a
dead letter of an endpoint can be retried with the same code (``PARSERS``).

- ``webform``: a web form submission (channel ``web``, kind ``form``);
- ``chat``: one chat message; all messages of a conversation thread on ``chat:<id>``;
- ``cti``: Zammad's generic CTI events ``newCall`` / ``answer`` / ``hangup`` (channel
  ``phone``); every event of a call threads on ``call:<callId>``;
- ``social``: a post or direct message on a social network (``network:@handle``);
- ``sms``: a Twilio-style inbound SMS (``MessageSid``, ``From``, ``To``, ``Body``), parsed by
  the worked example connector (connectors.example_sms).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from connectors.base import ChannelEvent, EventFormatError, ThreadRefs
from connectors.example_sms import parse_inbound as parse_sms

__all__ = [
    "MODELS",
    "PARSERS",
    "ChatMessage",
    "CtiEvent",
    "SmsInbound",
    "SocialPost",
    "WebForm",
    "parse_endpoint",
]

_S = 500  # default max length of short strings


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=100_000)


class WebForm(_Strict):
    """A contact form submission."""

    submission_id: str | None = Field(
        None,
        max_length=_S,
        description="The form system's id of the submission (dedup key); "
        "the delivery id when absent.",
    )
    email: str | None = Field(
        None, max_length=320, description="E-mail address the visitor entered."
    )
    phone: str | None = Field(None, max_length=64, description="Phone number the visitor entered.")
    name: str | None = Field(None, max_length=300, description="The visitor's name.")
    customer_number: str | None = Field(
        None, max_length=100, description="Customer number, when the visitor is logged in."
    )
    logged_in: bool = Field(
        False,
        description="True when the portal authenticated the visitor: "
        "the customer number counts as verified.",
    )
    subject: str = Field("", max_length=2000, description="Subject or topic chosen in the form.")
    message: str = Field(..., min_length=1, max_length=100_000, description="The message text.")
    fields: dict[str, str] = Field(
        default_factory=dict,
        max_length=100,
        description="Further form fields by name (become case data of the same name).",
    )
    submitted_at: datetime | None = Field(
        None, description="When the form was submitted (ISO 8601); the receive time when absent."
    )


class ChatMessage(_Strict):
    """One message of a chat conversation."""

    conversation_id: str = Field(
        ...,
        min_length=1,
        max_length=_S,
        description="The chat conversation; all its messages belong to one case.",
    )
    message_id: str = Field(
        ...,
        min_length=1,
        max_length=_S,
        description="This message's id, unique within the chat system.",
    )
    text: str = Field(..., min_length=1, max_length=100_000, description="The message text.")
    email: str | None = Field(
        None, max_length=320, description="Visitor e-mail, when collected (continuity to e-mail)."
    )
    name: str | None = Field(None, max_length=300, description="Visitor name.")
    handle: str | None = Field(
        None, max_length=200, description="Visitor handle, e.g. whatsapp:@31612345678."
    )
    sent_at: datetime | None = Field(None, description="When the visitor sent it.")


class CtiEvent(_Strict):
    """A call event of Zammad's generic CTI API."""

    event: Literal["newCall", "answer", "hangup"] = Field(
        ..., description="newCall, answer or hangup."
    )
    callId: str = Field(..., min_length=1, max_length=_S, description="Unique per call session.")
    from_: str = Field(
        ..., alias="from", min_length=1, max_length=64, description="Calling number."
    )
    to: str = Field(..., min_length=1, max_length=64, description="Called number.")
    direction: Literal["in", "out"] = Field(
        ..., description="in: the customer calls; out: we call the customer."
    )
    user: str | None = Field(
        None, max_length=_S, description="Agent(s) the call is for or was answered by."
    )
    queue: str | None = Field(None, max_length=_S, description="The PBX queue.")
    answeringNumber: str | None = Field(
        None, max_length=64, description="answer: the number (or agent) that answered."
    )
    cause: str | None = Field(
        None,
        max_length=64,
        description="hangup: normalClearing, busy, cancel, noAnswer, congestion, notFound, "
        "forwarded ...",
    )
    duration_s: int | None = Field(
        None,
        ge=0,
        le=86_400 * 7,
        description="hangup: talk time in seconds, when the PBX knows it.",
    )
    verified: bool = Field(
        False,
        description="True when the PBX authenticated the caller (e.g. PIN): "
        "the number counts as verified.",
    )
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class SocialPost(_Strict):
    """A public post or direct message on a social network."""

    network: str = Field(
        ...,
        pattern=r"^[a-z][a-z0-9_.-]{0,30}$",
        description="twitter, facebook, instagram, whatsapp, telegram ...",
    )
    post_id: str = Field(
        ..., min_length=1, max_length=_S, description="The network's id of the post or message."
    )
    handle: str = Field(
        ...,
        min_length=1,
        max_length=100,
        pattern=r"^@?[^\s@:]+$",
        description="The author's handle on the network.",
    )
    text: str = Field(..., min_length=1, max_length=100_000, description="The text.")
    author_name: str | None = Field(None, max_length=300, description="The author's display name.")
    in_reply_to: str | None = Field(None, max_length=_S, description="The post this one answers.")
    conversation_id: str | None = Field(
        None, max_length=_S, description="The thread or DM conversation it belongs to."
    )
    posted_at: datetime | None = Field(None, description="When it was posted.")


class SmsInbound(_Strict):
    """A Twilio-style inbound SMS webhook."""

    MessageSid: str = Field(
        ..., min_length=1, max_length=_S, description="The gateway's message id (dedup key)."
    )
    From: str = Field(..., min_length=1, max_length=64, description="Sender number.")
    To: str = Field("", max_length=64, description="Our number.")
    Body: str = Field(..., min_length=1, max_length=1600, description="The text.")
    model_config = ConfigDict(extra="allow")


def _when(value: datetime | None, received_at: datetime) -> datetime:
    if value is None:
        return received_at
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _webform(m: WebForm, at: datetime, delivery: str) -> ChannelEvent:
    customer = {
        k: v
        for k, v in {
            "email": m.email,
            "phone": m.phone,
            "name": m.name,
            "customer_number": m.customer_number,
        }.items()
        if v
    }
    return ChannelEvent(
        channel="web",
        external_id=m.submission_id or delivery,
        direction="inbound",
        occurred_at=_when(m.submitted_at, at),
        kind="form",
        customer=customer,
        subject=m.subject,
        body=m.message,
        metadata={
            "fields": dict(m.fields),
            "verified": ["customer_number"] if m.logged_in and m.customer_number else [],
        },
    )


def _chat(m: ChatMessage, at: datetime, delivery: str) -> ChannelEvent:
    conv = f"chat:{m.conversation_id}"
    customer = {
        k: v for k, v in {"email": m.email, "name": m.name, "handle": m.handle}.items() if v
    }
    return ChannelEvent(
        channel="chat",
        external_id=f"{m.conversation_id}:{m.message_id}",
        direction="inbound",
        occurred_at=_when(m.sent_at, at),
        customer=customer,
        thread=ThreadRefs(message_id=conv, in_reply_to=conv),
        body=m.text,
        metadata={"conversation_id": m.conversation_id},
    )


_CTI_KIND = {"newCall": "call_new", "answer": "call_answer", "hangup": "call_hangup"}


def _cti(m: CtiEvent, at: datetime, delivery: str) -> ChannelEvent:
    inbound = m.direction == "in"
    number = m.from_ if inbound else m.to
    call = f"call:{m.callId}"
    thread = ThreadRefs(message_id=call) if m.event == "newCall" else ThreadRefs(in_reply_to=call)
    meta: dict[str, Any] = {
        k: v
        for k, v in {
            "callId": m.callId,
            "from": m.from_,
            "to": m.to,
            "direction": m.direction,
            "user": m.user,
            "queue": m.queue,
            "answeringNumber": m.answeringNumber,
            "cause": m.cause,
            "duration_s": m.duration_s,
        }.items()
        if v is not None
    }
    meta["verified"] = ["phone"] if m.verified else []
    summary = {
        "newCall": "Incoming call" if inbound else "Outgoing call",
        "answer": f"Call answered by {m.answeringNumber or m.user or 'agent'}",
        "hangup": f"Call ended ({m.cause or 'unknown'})",
    }[m.event]
    return ChannelEvent(
        channel="phone",
        external_id=f"{m.callId}:{m.event}",
        direction="inbound" if inbound else "outbound",
        occurred_at=at,
        kind=_CTI_KIND[m.event],
        customer={"phone": number},
        thread=thread,
        subject=summary,
        metadata=meta,
    )


def _social(m: SocialPost, at: datetime, delivery: str) -> ChannelEvent:
    customer = {"handle": f"{m.network}:@{m.handle.lstrip('@')}"}
    if m.author_name:
        customer["name"] = m.author_name
    conv = f"social:{m.network}:{m.conversation_id}" if m.conversation_id else None
    refs = tuple(
        r for r in (f"social:{m.network}:{m.in_reply_to}" if m.in_reply_to else None, conv) if r
    )
    return ChannelEvent(
        channel="social",
        external_id=f"{m.network}:{m.post_id}",
        direction="inbound",
        occurred_at=_when(m.posted_at, at),
        customer=customer,
        thread=ThreadRefs(message_id=conv or f"social:{m.network}:{m.post_id}", references=refs),
        body=m.text,
        metadata={"network": m.network, "post_id": m.post_id},
    )


def _sms(m: SmsInbound, at: datetime, delivery: str) -> ChannelEvent:
    return parse_sms(m.model_dump(), received_at=at)


MODELS: dict[str, type[BaseModel]] = {
    "webform": WebForm,
    "chat": ChatMessage,
    "cti": CtiEvent,
    "social": SocialPost,
    "sms": SmsInbound,
}
_ADAPTERS: dict[str, Callable[[Any, datetime, str], ChannelEvent]] = {
    "webform": _webform,
    "chat": _chat,
    "cti": _cti,
    "social": _social,
    "sms": _sms,
}


def parse_endpoint(
    endpoint: str, body: Mapping[str, Any], received_at: datetime, delivery_id: str = ""
) -> ChannelEvent:
    """Validate an endpoint's body and convert it.

    Raises:
        EventFormatError: the body does not fit the endpoint's model (first error's path).
    """
    model = MODELS[endpoint]
    try:
        parsed = model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first["loc"])
        raise EventFormatError(
            f"{first['msg']} ({len(exc.errors())} error(s))",
            json_path=path,
            connector=f"http:{endpoint}",
        ) from exc
    delivery = delivery_id or str(body.get("_delivery_id", "")) or "unknown"
    return _ADAPTERS[endpoint](parsed, received_at, delivery)


def _parser(endpoint: str) -> Callable[[Mapping[str, Any], datetime], ChannelEvent]:
    def parse(body: Mapping[str, Any], received_at: datetime) -> ChannelEvent:
        body = dict(body)
        delivery = str(body.pop("_delivery_id", ""))
        return parse_endpoint(endpoint, body, received_at, delivery)

    return parse


#: endpoint -> ``(body, received_at) -> ChannelEvent`` (for dead-letter retry)
PARSERS = {name: _parser(name) for name in MODELS}
