"""Loop protection (RFC 3834 and the helpdesk anchors' rules): what is automatic mail, whom
we never answer automatically, and how many automatic replies one sender may get.

``auto_reason`` classifies inbound mail: a non-None reason makes the event kind
``auto_reply`` (intake records it, creates no case, sends no answer). ``never_auto_reply``
guards outbound automatic mail by address, and ``AutoReplyLimiter`` caps automatic replies
per recipient in a sliding window (default 5 per 60 minutes, Odoo's default; reliability
item 11) as the backstop against two auto-responders ping-ponging.
"""

from __future__ import annotations

import re
import threading
from collections import defaultdict, deque
from datetime import datetime, timedelta
from typing import Protocol

from connectors.email.parse import ParsedMail
from engine.clock import Clock, SystemClock

__all__ = [
    "LOOP_HEADER",
    "AutoReplyLimiter",
    "MemoryRateStore",
    "RateStore",
    "auto_reason",
    "never_auto_reply",
]

#: our own loop header; every message careflow sends carries it with the instance name
LOOP_HEADER = "X-Careflow-Loop"

_PRECEDENCE_AUTO = frozenset({"bulk", "junk", "list", "auto_reply"})
_NO_REPLY = re.compile(
    r"^(?:no[-_.]?reply|do[-_.]?not[-_.]?reply|mailer-daemon|postmaster|abuse|root|bounces?)"
    r"(?:[+._-][^@]*)?@",
    re.IGNORECASE,
)
_SYSTEM_SENDER = re.compile(r"^(?:mailer-daemon|postmaster)@", re.IGNORECASE)


def _first(mail: ParsedMail, name: str) -> str:
    return (mail.header(name) or "").strip()


def auto_reason(mail: ParsedMail, *, loop_id: str = "careflow") -> str | None:
    """Why ``mail`` is automatic (a short reason naming the header), or None for a person.

    ``Auto-Submitted: no`` is explicitly human (FreeScout gets this wrong).
    """
    auto = _first(mail, "auto-submitted").lower()
    if auto and auto.split(";", 1)[0].strip() != "no":
        return f"Auto-Submitted: {auto}"
    for name in ("precedence", "x-precedence"):
        value = _first(mail, name).lower()
        if value in _PRECEDENCE_AUTO:
            return f"{name}: {value}"
    for name in (
        "x-autoreply",
        "x-autorespond",
        "x-auto-response-suppress",
        "list-id",
        "list-unsubscribe",
        "x-loop",
    ):
        if mail.header(name) is not None:
            return f"{name} present"
    if _first(mail, "x-fc-machinegenerated").lower() == "true":
        return "X-FC-Machinegenerated: true"
    if any(v.strip() == loop_id for v in mail.headers.get(LOOP_HEADER.lower(), ())):
        return f"own loop header {LOOP_HEADER}: {loop_id}"
    return_path = _first(mail, "return-path")
    if return_path and return_path.strip("<> ") == "":
        return "Return-Path: <> (null sender)"
    if not mail.from_addr:
        return "no From address"
    if _SYSTEM_SENDER.match(mail.from_addr):
        return f"system sender {mail.from_addr}"
    return None


def never_auto_reply(address: str) -> bool:
    """Addresses that must never get automatic mail (noreply, mailer-daemon, postmaster ...).

    >>> never_auto_reply("No-Reply@shop.example"), never_auto_reply("ann@shop.example")
    (True, False)
    """
    text = address.strip()
    if text.endswith(">") and "<" in text:
        text = text[text.rindex("<") + 1 : -1]
    return not text.strip() or bool(_NO_REPLY.match(text.strip()))


class RateStore(Protocol):
    """Where sent automatic replies are counted (per recipient, with timestamps)."""

    def count_since(self, address: str, since: datetime) -> int: ...

    def record(self, address: str, at: datetime) -> None: ...


class MemoryRateStore:
    """Per-process counts; the default. Use a shared store when several workers send."""

    def __init__(self) -> None:
        self._sent: dict[str, deque[datetime]] = defaultdict(deque)
        self._lock = threading.Lock()

    def count_since(self, address: str, since: datetime) -> int:
        with self._lock:
            times = self._sent[address]
            while times and times[0] < since:
                times.popleft()
            return len(times)

    def record(self, address: str, at: datetime) -> None:
        with self._lock:
            self._sent[address].append(at)


class AutoReplyLimiter:
    """At most ``limit`` automatic replies per recipient in ``window`` (sliding)."""

    def __init__(
        self,
        store: RateStore | None = None,
        *,
        limit: int = 5,
        window: timedelta = timedelta(minutes=60),
        clock: Clock | None = None,
    ) -> None:
        self.store = store or MemoryRateStore()
        self.limit = limit
        self.window = window
        self.clock = clock or SystemClock()

    def allow(self, address: str) -> bool:
        """Whether one more automatic reply to ``address`` is within the limit (no side effect)."""
        since = self.clock.now() - self.window
        return self.store.count_since(address.lower(), since) < self.limit

    def record(self, address: str) -> None:
        """Count one automatic reply sent to ``address`` now."""
        self.store.record(address.lower(), self.clock.now())
