"""A worked example connector: SMS through an HTTP gateway (copy this to write your own).

It shows every part of the contract in about a hundred lines:

- ``ExampleSmsConnector(config)`` -- the factory the registry calls (registered in
  pyproject.toml under ``[project.entry-points."careflow.connectors"]`` as ``sms_example``);
- ``name`` and ``channels`` -- how the outbox dispatcher finds it for channel ``sms``;
- ``send(msg)`` -- POSTs JSON to the gateway with the message's idempotency key as the
  ``Idempotency-Key`` header, and maps the gateway's answer to a ``Delivery``: 2xx sent,
  4xx failed (permanent), 5xx/network deferred (retry later); it never raises for a remote
  refusal;
- ``health()`` -- last success, last error and errors since then;
- ``parse_inbound(form)`` -- turns the gateway's inbound webhook (Twilio-style form fields
  ``MessageSid``, ``From``, ``To``, ``Body``) into a ``ChannelEvent``; the HTTP intake API
  uses it for ``POST /v1/intake/sms``.

Config keys: ``gateway_url`` (required for sending), ``sender`` (our number),
``token`` (bearer token for the gateway), ``timeout`` (seconds, default 5).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from connectors.base import (
    ChannelEvent,
    ConnectorHealth,
    Delivery,
    EventFormatError,
    OutboundMessage,
)
from engine.clock import Clock, SystemClock

__all__ = ["ExampleSmsConnector", "parse_inbound"]

MAX_SMS_BODY = 1600  # 10 concatenated segments


def parse_inbound(form: Mapping[str, Any], *, received_at: datetime) -> ChannelEvent:
    """A gateway's inbound SMS webhook fields -> a channel event.

    Raises:
        EventFormatError: a required field is missing or the body is too long.
    """
    for key in ("MessageSid", "From", "Body"):
        if not isinstance(form.get(key), str) or not form[key]:
            raise EventFormatError(f"missing field {key!r}", json_path=f"$.{key}",
                                   connector="sms_example")
    body = form["Body"]
    if len(body) > MAX_SMS_BODY:
        raise EventFormatError(f"body longer than {MAX_SMS_BODY} characters",
                               json_path="$.Body", connector="sms_example")
    return ChannelEvent(
        channel="sms",
        external_id=form["MessageSid"],
        direction="inbound",
        occurred_at=received_at,
        kind="message",
        customer={"phone": form["From"]},
        body=body,
        metadata={"to": str(form.get("To", ""))},
    )


class ExampleSmsConnector:
    """Sends SMS through an HTTP gateway; inbound SMS arrive by webhook (push)."""

    channels = ("sms",)

    def __init__(self, config: Mapping[str, Any] | None = None, *,
                 clock: Clock | None = None) -> None:
        config = dict(config or {})
        self.name = str(config.get("name", "sms_example"))
        self.gateway_url = config.get("gateway_url")
        self.sender = str(config.get("sender", ""))
        self.token = config.get("token")
        self.timeout = float(config.get("timeout", 5.0))
        self._clock = clock or SystemClock()
        self._last_success: datetime | None = None
        self._last_error: str | None = None
        self._errors = 0

    def _failed(self, msg: OutboundMessage, status: str, detail: str) -> Delivery:
        self._errors += 1
        self._last_error = detail
        return Delivery(msg.message_id, None, status, detail)

    def send(self, msg: OutboundMessage) -> Delivery:
        import httpx  # only a sending process needs it

        if not self.gateway_url:
            return self._failed(msg, "failed", "no gateway_url configured")
        headers = {"Idempotency-Key": msg.idempotency_key}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        payload = {"from": self.sender, "to": msg.to, "body": msg.body[:MAX_SMS_BODY],
                   "reference": msg.message_id}
        try:
            response = httpx.post(self.gateway_url, json=payload, headers=headers,
                                  timeout=self.timeout)
        except httpx.HTTPError as exc:
            return self._failed(msg, "deferred", f"gateway unreachable: {type(exc).__name__}")
        if response.status_code >= 500:
            return self._failed(msg, "deferred", f"gateway answered {response.status_code}")
        if response.status_code >= 400:
            return self._failed(msg, "failed",
                                f"gateway refused ({response.status_code}): {response.text[:200]}")
        try:
            external_id = str(response.json().get("id") or "") or None
        except ValueError:
            external_id = None
        self._last_success = self._clock.now()
        self._errors = 0
        return Delivery(msg.message_id, external_id, "sent", "")

    def health(self) -> ConnectorHealth:
        ok = self._errors == 0 and bool(self.gateway_url)
        error = self._last_error if self.gateway_url else "no gateway_url configured"
        return ConnectorHealth(self.name, ok, self._last_success, error, self._errors)
