"""An in-memory connector: records what it sends, hands out queued events (a fake for tests).

Like httpx's ``MockTransport`` it is a real implementation of the port, not a mock: the
outbox dispatcher and intake run their ordinary code against it. Tests script failures with
``fail_next(status, detail)`` and push inbound events with ``push(event)``.
Idempotency: a second ``send`` with an already-sent ``idempotency_key`` is recorded in
``duplicates`` and not sent again, as a well-behaved remote system would do.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from connectors.base import (
    ChannelEvent,
    ConnectorHealth,
    Delivery,
    DeliveryStatus,
    OutboundMessage,
)
from engine.clock import Clock, SystemClock
from engine.errors import ConnectorError

__all__ = ["MemoryConnector"]


class MemoryConnector:
    """A connector that keeps everything in lists.

    Config keys: ``name`` (default ``memory``), ``channels`` (list). Registered as the
    built-in ``memory`` it serves no real channel; register it for one explicitly, e.g.
    ``register("mem-email", MemoryConnector, channels=("email",))``.
    """

    channels: tuple[str, ...] = ("memory",)

    def __init__(
        self, config: Mapping[str, Any] | None = None, *, clock: Clock | None = None
    ) -> None:
        config = dict(config or {})
        self.name: str = str(config.get("name", "memory"))
        if "channels" in config:
            self.channels = tuple(config["channels"])
        self._clock = clock or SystemClock()
        self._lock = threading.Lock()
        self.sent: list[OutboundMessage] = []
        self.duplicates: list[OutboundMessage] = []
        self._keys: set[str] = set()
        self._failures: deque[tuple[str, str]] = deque()
        self._inbound: deque[ChannelEvent] = deque()
        self._last_success: datetime | None = None
        self._last_error: str | None = None
        self._errors = 0

    # -- scripting ---------------------------------------------------------------------

    def fail_next(self, status: str = "deferred", detail: str = "scripted failure") -> None:
        """Make the next ``send`` return ``status`` (failed|deferred) or raise (``raise``)."""
        self._failures.append((status, detail))

    def push(self, event: ChannelEvent) -> None:
        """Queue an inbound event for ``receive``."""
        self._inbound.append(event)

    # -- the contract ------------------------------------------------------------------

    def send(self, msg: OutboundMessage) -> Delivery:
        with self._lock:
            if self._failures:
                status, detail = self._failures.popleft()
                self._errors += 1
                self._last_error = detail
                if status == "raise":
                    raise ConnectorError(self.name, detail)
                return Delivery(msg.message_id, None, DeliveryStatus(status).value, detail)
            if msg.idempotency_key in self._keys:
                self.duplicates.append(msg)
                return Delivery(msg.message_id, f"mem-{msg.idempotency_key}", "sent", "duplicate")
            self._keys.add(msg.idempotency_key)
            self.sent.append(msg)
            self._last_success = self._clock.now()
            self._errors = 0
            return Delivery(msg.message_id, f"mem-{msg.idempotency_key}", "sent", "")

    def receive(self) -> Iterable[ChannelEvent]:
        while self._inbound:
            yield self._inbound.popleft()

    def health(self) -> ConnectorHealth:
        return ConnectorHealth(
            self.name, self._errors == 0, self._last_success, self._last_error, self._errors
        )

    def close(self) -> None:
        self._inbound.clear()
