"""The e-mail connector: IMAP in (``receive``/``poll``), SMTP out (``send``), ``health``.

Inbound: ``ImapSource`` fetches, ``parse_mail`` parses under ``MailLimits``,
``mail_to_event`` classifies and threads, and every refused message becomes a
``Rejection`` handed to ``on_reject`` (wire it to intake's dead-letter function; without
one they are kept in ``rejected``). The connector never touches case state: events go to
whoever iterates ``receive()`` (the runtime's poll loop calls ``engine.intake.ingest``).
Outbound: ``compose`` + ``send_smtp``, guarded for automatic mail by ``never_auto_reply``
and ``AutoReplyLimiter``.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

from connectors.base import ChannelEvent, ConnectorHealth, Delivery, DeliveryStatus, OutboundMessage
from connectors.email.attachments import ContentStore
from connectors.email.compose import compose
from connectors.email.config import CONFIG_ENV, EmailConfig, config_from_env
from connectors.email.events import mail_to_event
from connectors.email.imap import FetchedMail, ImapSource
from connectors.email.limits import MailRejected
from connectors.email.loops import AutoReplyLimiter, RateStore, never_auto_reply
from connectors.email.parse import parse_mail
from connectors.email.smtp import send_smtp
from connectors.email.state import CursorStore
from connectors.health import HealthTracker
from engine.clock import Clock, SystemClock
from engine.errors import ConnectorError

__all__ = ["EmailConnector", "PollReport", "Rejection"]


@dataclass(frozen=True, slots=True)
class Rejection:
    """Input the connector refused: goes to the dead-letter store with its reason.

    ``source`` names the place (``email:INBOX``), ``reason`` is a stable code
    (``oversize``, ``too_many_multiparts`` ...), ``detail`` the measured value, and
    ``payload`` what is needed to find or replay the input (UID, quarantined file, SHA-256).
    """

    source: str
    reason: str
    detail: str
    payload: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "payload", MappingProxyType(dict(self.payload)))

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "reason": self.reason,
            "detail": self.detail,
            "payload": dict(self.payload),
        }


@dataclass(frozen=True, slots=True)
class PollReport:
    """What one ``poll`` did."""

    events: int
    rejected: int
    seconds: float


class EmailConnector:
    """careflow's e-mail channel. ``EmailConnector(config_mapping)`` is the registry factory."""

    channels = ("email",)

    def __init__(
        self,
        config: Mapping[str, Any] | EmailConfig | None = None,
        *,
        clock: Clock | None = None,
        rate_store: RateStore | None = None,
        on_reject: Callable[[Rejection], None] | None = None,
    ) -> None:
        cfg = (
            config
            if isinstance(config, EmailConfig)
            else EmailConfig.from_mapping(config_from_env(config, CONFIG_ENV))
        )
        self.config = cfg
        self.name: str = cfg.name
        self.clock = clock or SystemClock()
        self.cursors = CursorStore(cfg.state_dir, f"{cfg.name}-imap-cursors")
        if rate_store is None and cfg.auto_reply_store == "outbox":
            from connectors.email.ratestore import OutboxRateStore
            from engine.store.db import make_engine, sessions

            rate_store = OutboxRateStore(sessions(make_engine()))
        self.limiter = AutoReplyLimiter(
            rate_store,
            limit=cfg.auto_reply_limit,
            window=timedelta(minutes=cfg.auto_reply_window_minutes),
            clock=self.clock,
        )
        self._attachments = ContentStore(cfg.attachment_dir) if cfg.attachment_dir else None
        self._quarantine = (
            ContentStore(Path(cfg.state_dir) / "quarantine") if cfg.state_dir else None
        )
        self.on_reject = on_reject
        self.rejected: deque[Rejection] = deque(maxlen=10_000)
        self.rejected_count = 0
        self._sent: OrderedDict[str, Delivery] = OrderedDict()
        self._lock = threading.Lock()
        self._health = HealthTracker(self.name, self.clock)

    # ---- inbound ---------------------------------------------------------------------

    def event_from_bytes(
        self, raw: bytes, *, extra: Mapping[str, Any] | None = None
    ) -> ChannelEvent:
        """Parse and classify one raw message (also the entry for an MTA pipe).

        Raises:
            MailRejected: refused by a cap or unparseable; dead-letter it with ``reason``.
        """
        mail = parse_mail(raw, self.config.limits, store_attachment=self._attachments)
        return mail_to_event(
            mail,
            received_at=self.clock.now(),
            rules=self.config.thread_rules,
            domain=self.config.domain,
            loop_id=self.config.loop_id,
            extra=dict(extra or {}),
        )

    def _reject(self, rejection: Rejection) -> None:
        self.rejected_count += 1
        self.rejected.append(rejection)
        if self.on_reject is not None:
            self.on_reject(rejection)

    def _convert(self, item: FetchedMail) -> ChannelEvent | None:
        where = {
            "mailbox": item.mailbox,
            "uidvalidity": item.uidvalidity,
            "uid": item.uid,
            "size": item.size,
        }
        source = f"{self.name}:{item.mailbox}"
        if item.raw is None:
            self._reject(
                Rejection(
                    source,
                    "oversize",
                    f"message is {item.size:,} bytes, cap "
                    f"{self.config.limits.max_bytes:,}; left on the server, not downloaded",
                    {**where, "headers": dict(item.summary)},
                )
            )
            return None
        try:
            return self.event_from_bytes(item.raw, extra={"imap": where})
        except MailRejected as exc:
            reason, detail = exc.reason, exc.detail
        except Exception as exc:  # noqa: BLE001 -- one hostile message must never stop the poller
            reason, detail = "parser_error", f"{type(exc).__name__}: {exc}"[:500]
        stored = None
        if self._quarantine is not None:
            stored = self._quarantine(item.raw, hashlib.sha256(item.raw).hexdigest())
        self._reject(Rejection(source, reason, detail, {**where, "quarantined": stored}))
        return None

    def receive(self, *, autocommit: bool = True) -> Iterator[ChannelEvent]:
        """New events from every mailbox.

        The cursor moves past a message when the caller asks for the next one, so a caller
        that fails (raises) gets it again. With ``autocommit`` the moves are persisted every
        100 messages and at the end; without, only by ``commit()`` -- for a caller that
        commits events in batches (``intake_bridge``) and calls ``rollback()`` on failure.

        Raises:
            ConnectorError: the IMAP server is unreachable or refused (retryable).
        """
        source = ImapSource(self.config, self.cursors)
        taken = 0
        try:
            for item in source.iter_new():
                event = self._convert(item)
                if event is not None:
                    yield event
                source.advance(item)
                taken += 1
                if autocommit and taken % 100 == 0:
                    self.cursors.flush()
        except ConnectorError as exc:
            self._failed(str(exc))
            raise
        if autocommit:
            self.cursors.flush()
        self._succeeded()

    def commit(self) -> None:
        """Persist how far ``receive(autocommit=False)`` got (after the caller's commit)."""
        self.cursors.flush()

    def rollback(self) -> None:
        """Forget unpersisted progress: the next ``receive`` starts from the last ``commit``."""
        self.cursors.reload()

    def poll(self, handle: Callable[[ChannelEvent], object]) -> PollReport:
        """Hand every new event to ``handle`` (e.g. ``lambda ev: ingest(session, ev, ...)``)."""
        start = time.perf_counter()
        before = self.rejected_count
        count = 0
        for event in self.receive():
            handle(event)
            count += 1
        return PollReport(count, self.rejected_count - before, time.perf_counter() - start)

    # ---- outbound --------------------------------------------------------------------

    def send(self, msg: OutboundMessage) -> Delivery:
        """Send ``msg`` by SMTP; at most once per idempotency key within this process.

        Automatic mail to a no-reply/system address, or beyond the per-recipient rate
        limit, is not sent: the ``Delivery`` is ``failed`` with the reason.
        """
        with self._lock:
            done = self._sent.get(msg.idempotency_key)
        if done is not None:
            return done
        composed = compose(msg, self.config, now=self.clock.now())
        recipient = composed.recipients[0]
        if msg.automatic and never_auto_reply(recipient):
            return Delivery(
                msg.message_id,
                None,
                DeliveryStatus.FAILED,
                f"never auto-reply to {recipient!r} (no-reply/system address)",
            )
        if msg.automatic and not self.limiter.allow(recipient):
            return Delivery(
                msg.message_id,
                None,
                DeliveryStatus.FAILED,
                f"auto-reply rate limit: {self.limiter.limit} per "
                f"{self.limiter.window} to {recipient!r} reached",
            )
        try:
            delivery = send_smtp(composed, self.config, message_id=msg.message_id)
        except ConnectorError as exc:
            self._failed(str(exc))
            raise
        if delivery.status == DeliveryStatus.SENT:
            if msg.automatic:
                self.limiter.record(recipient)
            with self._lock:
                self._sent[msg.idempotency_key] = delivery
                while len(self._sent) > 10_000:
                    self._sent.popitem(last=False)
            self._succeeded()
        elif delivery.status == DeliveryStatus.DEFERRED:
            self._failed(delivery.detail)
        return delivery

    # ---- health ----------------------------------------------------------------------

    def _succeeded(self) -> None:
        self._health.succeeded()

    def _failed(self, detail: str) -> None:
        self._health.failed(detail)

    def health(self) -> ConnectorHealth:
        return self._health.snapshot()
