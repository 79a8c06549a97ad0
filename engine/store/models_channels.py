"""The channel edge's own tables: webhook deliveries seen (replay protection).

The inbox (deduplication on channel + external id) and the dead-letter store live with the
case engine in engine.store.models; this module keeps what only the HTTP intake needs: each
accepted ``Careflow-Delivery`` id, so a valid request replayed inside the signature's time
window is acknowledged without being processed twice. Rows older than the retention (7
days, longer than any sender retries) may be pruned.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from engine.store.base import Base
from engine.store.models import UtcDateTime

__all__ = ["WebhookDeliveryRow"]


class WebhookDeliveryRow(Base):
    """One accepted webhook delivery, by the sender's delivery id."""

    __tablename__ = "webhook_deliveries"

    delivery_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    endpoint: Mapped[str] = mapped_column(String(40))
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    inbox_id: Mapped[int | None] = mapped_column(Integer)
    dead_letter_id: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="accepted")
