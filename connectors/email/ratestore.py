"""A shared count of automatic replies, read from the case database's outbox.

``MemoryRateStore`` counts per process; with several workers each would allow its own five
replies an hour. ``OutboxRateStore`` counts automatic e-mail the outbox has already sent to
the recipient within the window (rows ``status='sent'``, ``payload.automatic``), plus what
this process sent in the last ``grace`` minutes (perhaps not yet marked sent by the
dispatcher; counting one twice only makes the limit stricter for a moment), so every worker
sees the same budget. It needs no table of its own: the outbox is the record.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from connectors.email.loops import MemoryRateStore

__all__ = ["OutboxRateStore"]


def _address(value: str) -> str:
    text = value.strip()
    if text.endswith(">") and "<" in text:
        text = text[text.rindex("<") + 1 : -1]
    return text.strip().lower()


class OutboxRateStore:
    """``RateStore`` over ``engine.store.models.OutboxRow``; ``sessions`` is a sessionmaker."""

    def __init__(
        self,
        sessions: Callable[[], Any],
        *,
        channel: str = "email",
        grace: timedelta = timedelta(minutes=5),
    ) -> None:
        self.sessions = sessions
        self.channel = channel
        self.grace = grace
        self._latest: datetime | None = None
        self._local = MemoryRateStore()
        self._lock = threading.Lock()

    def count_since(self, address: str, since: datetime) -> int:
        from sqlalchemy import select

        from engine.store.models import OutboxRow

        wanted = _address(address)
        with self.sessions() as session:
            rows = session.execute(
                select(OutboxRow.payload).where(
                    OutboxRow.channel == self.channel,
                    OutboxRow.status == "sent",
                    OutboxRow.sent_at >= since,
                )
            ).scalars()
            stored = sum(
                1
                for p in rows
                if isinstance(p, dict)
                and bool(p.get("automatic", True))
                and _address(str(p.get("to") or "")) == wanted
            )
        with self._lock:  # sent here, maybe not yet marked sent: counted twice at worst
            if self._latest is None:
                recent = 0
            else:
                recent = self._local.count_since(wanted, max(since, self._latest - self.grace))
        return stored + recent

    def record(self, address: str, at: datetime) -> None:
        with self._lock:
            self._local.record(_address(address), at)
            self._latest = at if self._latest is None else max(self._latest, at)
