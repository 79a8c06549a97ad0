"""Webhook signatures (Stripe-style) and signed customer status links.

Header: ``Careflow-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>...]`` where each ``v1``
is ``HMAC-SHA256(secret, f"{t}.{raw body}")``. A request is authentic when any ``v1``
matches any configured secret (so secrets can be rotated: old and new are valid at once)
and ``t`` is within ``tolerance`` seconds of now in *either* direction (Stripe checks only
the past; Slack both). The time window does not stop replays inside it: the API also
deduplicates on the ``Careflow-Delivery`` id. Comparisons use ``hmac.compare_digest``.

Status links: ``sig = HMAC-SHA256(secret, f"{case_id}.{expires}")``; the link is
``/v1/cases/{case_id}/status?exp=<unix>&sig=<hex>``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from datetime import datetime

from engine.errors import ConnectorError

__all__ = [
    "DEFAULT_TOLERANCE",
    "SIGNATURE_HEADER",
    "DELIVERY_HEADER",
    "SignatureError",
    "sign_payload",
    "sign_status",
    "signature_header",
    "verify_signature",
    "verify_status",
]

SIGNATURE_HEADER = "Careflow-Signature"
DELIVERY_HEADER = "Careflow-Delivery"
DEFAULT_TOLERANCE = 300
_PAIR = re.compile(r"^\s*([a-z0-9]+)=([^,=\s]+)\s*$")
_HEX = re.compile(r"^[0-9a-f]{64}$")


class SignatureError(ConnectorError):
    """A webhook request is not authentic; ``reason`` says why (never which secret)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__("http", f"signature rejected: {reason}", retryable=False)


def sign_payload(secret: str, timestamp: int, body: bytes) -> str:
    """The hex ``v1`` signature of ``body`` sent at ``timestamp``."""
    msg = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), msg, hashlib.sha256).hexdigest()


def signature_header(secrets: Sequence[str], timestamp: int, body: bytes) -> str:
    """A complete header value signed with every secret (what a sender rotating keys sends)."""
    sigs = ",".join(f"v1={sign_payload(s, timestamp, body)}" for s in secrets)
    return f"t={timestamp},{sigs}"


def _parse(header: str) -> tuple[int, list[str]]:
    if not header or len(header) > 2048:
        raise SignatureError("missing or oversized signature header")
    timestamp: int | None = None
    v1: list[str] = []
    for part in header.split(","):
        m = _PAIR.match(part)
        if not m:
            raise SignatureError("malformed signature header")
        key, value = m.groups()
        if key == "t":
            if timestamp is not None or not value.isdigit() or len(value) > 12:
                raise SignatureError("malformed timestamp")
            timestamp = int(value)
        elif key == "v1":
            v1.append(value.lower())
    if timestamp is None:
        raise SignatureError("no timestamp in signature header")
    if not v1:
        raise SignatureError("no v1 signature in header")
    return timestamp, v1


def verify_signature(header: str | None, body: bytes, secrets: Sequence[str], *, now: datetime,
                     tolerance: int = DEFAULT_TOLERANCE) -> int:
    """Check a webhook request; returns its timestamp.

    Raises:
        SignatureError: malformed header, no v1, timestamp outside the window, or no
            signature matches any secret.
    """
    if not secrets:
        raise SignatureError("no webhook secrets configured")
    timestamp, candidates = _parse(header or "")
    if abs(now.timestamp() - timestamp) > tolerance:
        raise SignatureError(f"timestamp outside the {tolerance} s window")
    ok = False
    for secret in secrets:
        expected = sign_payload(secret, timestamp, body)
        for sig in candidates:
            # compare every pair (no early exit on the first match of a secret)
            ok |= hmac.compare_digest(expected, sig if _HEX.match(sig) else "0" * 64)
    if not ok:
        raise SignatureError("no matching signature")
    return timestamp


def sign_status(secret: str, case_id: str, expires: int) -> str:
    return hmac.new(secret.encode(), f"{case_id}.{expires}".encode(), hashlib.sha256).hexdigest()


def verify_status(secret: str, case_id: str, expires: int, sig: str, *, now: datetime) -> bool:
    """True when ``sig`` is the status-link signature of ``case_id`` and not yet expired."""
    if not secret or expires < now.timestamp():
        return False
    given = (sig or "").lower().encode("utf-8", "replace")  # bytes: any input compares safely
    return hmac.compare_digest(sign_status(secret, case_id, expires).encode(), given)
