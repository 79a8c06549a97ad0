"""The outbox dispatcher (pure Python, no Prefect): send due messages through connectors.

``claim`` hides due rows for a lease while they are sent; ``send_rows`` calls each row's
connector (``connectors.registry.connector_for_channel``; the built-in ``internal``/``log``
channels fall back to ``LogConnector``); ``finish`` records sent / failed / retry-later.
A channel no connector serves is never dropped silently: its row is marked ``failed`` with
the registry's reason. Delivery is at least once; every message carries its idempotency key.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from engine.clock import Clock
from engine.errors import ConnectorError
from engine.store.claims import claim_outbox, finish_outbox

__all__ = ["BUILTIN_CHANNELS", "LogConnector", "MAX_ATTEMPTS", "claim", "finish", "send_rows"]

log = logging.getLogger("careflow.outbox")

#: total delivery attempts before a message is marked failed
MAX_ATTEMPTS = 5
#: channels careflow delivers itself when no connector serves them
BUILTIN_CHANNELS = ("internal", "log")


class LogConnector:
    """Delivers internal notifications by logging and remembering them (``sent``)."""

    name = "log"

    def __init__(self) -> None:
        self.sent: list[Any] = []
        self._lock = threading.Lock()

    def send(self, msg: Any) -> Any:
        from connectors.base import Delivery

        with self._lock:
            self.sent.append(msg)
        log.info("internal message %s to %s: %s", msg.message_id, msg.to, msg.subject)
        return Delivery(message_id=msg.message_id, external_id=None, status="sent",
                        detail="logged")

    def health(self) -> Any:
        return None


LOG_CONNECTOR = LogConnector()


def _connector(channel: str) -> Any:
    try:
        from connectors.registry import connector_for_channel
    except ModuleNotFoundError:
        connector_for_channel = None
    if connector_for_channel is not None:
        try:
            return connector_for_channel(channel)
        except ConnectorError:
            if channel not in BUILTIN_CHANNELS:
                raise
    if channel in BUILTIN_CHANNELS:
        return LOG_CONNECTOR
    raise ConnectorError(channel, f"no connector serves channel {channel!r}", retryable=False)


def _message(row: Any) -> Any:
    from connectors.base import OutboundMessage

    p: Mapping[str, Any] = row.payload or {}
    return OutboundMessage(
        message_id=row.id, case_id=row.case_id, channel=row.channel, to=str(p.get("to") or ""),
        subject=str(p.get("subject") or ""), body=str(p.get("body") or ""),
        idempotency_key=row.idempotency_key, automatic=bool(p.get("automatic", True)))


@dataclass(frozen=True, slots=True)
class SendResult:
    """What happened to one row: ``status`` sent | failed | retry."""

    id: str
    status: str
    error: str | None = None
    delivery: Mapping[str, Any] | None = None


def send_one(row: Any) -> SendResult:
    try:
        connector = _connector(row.channel)
        delivery = connector.send(_message(row))
    except ConnectorError as exc:
        return SendResult(row.id, "retry" if exc.retryable else "failed", str(exc))
    except Exception as exc:  # noqa: BLE001 -- a crashing connector is a retryable failure
        return SendResult(row.id, "retry", f"{type(exc).__name__}: {exc}")
    info = {"external_id": delivery.external_id, "detail": delivery.detail,
            "connector": getattr(connector, "name", "?")}
    if delivery.status == "sent":
        return SendResult(row.id, "sent", None, info)
    if delivery.status == "failed":
        return SendResult(row.id, "failed", delivery.detail or "connector refused", info)
    return SendResult(row.id, "retry", delivery.detail or "deferred", info)


def send_rows(rows: Sequence[Any], done: dict[str, SendResult] | None = None,
              record: Callable[[Any, SendResult], None] | None = None) -> dict[str, SendResult]:
    """Send every row not already sent in ``done`` (so a retried batch never resends).

    ``record`` is called right after each message that was sent (or refused for good), so a
    worker killed mid-batch re-sends at most the one message it was sending, not the batch.
    """
    results = done if done is not None else {}
    for row in rows:
        prior = results.get(row.id)
        if prior is not None and prior.status != "retry":
            continue
        results[row.id] = result = send_one(row)
        if record is not None and result.status != "retry":
            record(row, result)
    return results


def recorder(engine: Engine, clock: Clock) -> Callable[[Any, SendResult], None]:
    """A ``send_rows`` callback writing each final result at once (its own transaction)."""

    def record(row: Any, result: SendResult) -> None:
        finish(engine, [row], {row.id: result}, clock.now())

    return record


def claim(engine: Engine, clock: Clock, *, batch: int = 200, lease_s: float = 60.0) -> list[Any]:
    with Session(engine) as session, session.begin():
        return claim_outbox(session, clock.now(), batch, lease_s)


def finish(engine: Engine, rows: Sequence[Any], results: Mapping[str, SendResult],
           now: datetime, *, recorded: bool = False) -> dict[str, int]:
    """Record the results; a retryable failure waits 30 s x 2^attempt, failed after MAX_ATTEMPTS.

    With ``recorded``, final results were already written one by one (``recorder``): they
    are only counted here, and only the rows left to retry are written.
    """
    out: list[dict[str, Any]] = []
    counts = {"sent": 0, "failed": 0, "retry": 0}
    for row in rows:
        res = results.get(row.id) or SendResult(row.id, "retry", "not attempted")
        if recorded and res.status != "retry":
            counts[res.status] += 1
            continue
        attempts = int(row.attempts) + 1
        status = res.status
        if status == "retry" and attempts >= MAX_ATTEMPTS:
            status = "failed"
        counts[status] += 1
        out.append({
            "b_id": row.id, "b_status": "pending" if status == "retry" else status,
            "b_error": None if status == "sent" else res.error,
            "b_sent": now if status == "sent" else None,
            "b_next": now + timedelta(seconds=30 * 2 ** attempts) if status == "retry" else now,
            "b_delivery": dict(res.delivery) if res.delivery else None,
        })
    written = {o["b_id"] for o in out}
    sent = [row for row in rows if row.id in written and row.channel not in BUILTIN_CHANNELS
            and results.get(row.id) is not None and results[row.id].status == "sent"]
    if out:
        with Session(engine) as session, session.begin():
            finish_outbox(session, out)
            _on_timeline(session, sent, results, now)
    return counts


def _on_timeline(session: Session, rows: Sequence[Any], results: Mapping[str, SendResult],
                 now: datetime) -> None:
    """Sent customer messages go on the customer's timeline, in the marking transaction, so
    a reply that references the message correlates back to its case."""
    if not rows:
        return
    from connectors.base import Delivery
    from engine.crm.timeline import record_outbound

    for row in rows:
        info = results[row.id].delivery or {}
        delivery = Delivery(message_id=row.id, external_id=info.get("external_id"),
                            status="sent", detail=str(info.get("detail") or ""))
        record_outbound(session, _message(row), now=now, delivery=delivery)
