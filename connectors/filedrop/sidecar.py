"""Sidecar metadata ``<scan>.json``: channel, sender, dates; validated, never trusted blindly.

Keys (all optional)::

    {"channel": "letter" | "fax",
     "sender": {"name": "...", "address": "...", "customer_number": "...",
                "email": "...", "phone": "..."},
     "received_at": "2026-03-02T09:00:00+01:00",   # when the mail room got it
     "postmark": "2026-02-27",                      # date on the envelope / fax header
     "subject": "..."}

Unknown keys are kept in ``extra`` and reported, wrong types are an error naming the key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

__all__ = ["Sidecar", "SidecarError", "parse_sidecar"]

_SENDER_KEYS = {"name", "address", "customer_number", "email", "phone"}
_TOP_KEYS = {"channel", "sender", "received_at", "postmark", "subject"}


class SidecarError(ValueError):
    """The sidecar is not valid JSON or a value has the wrong type; says which key."""


@dataclass(frozen=True, slots=True)
class Sidecar:
    channel: str | None = None
    sender: Mapping[str, str] = field(default_factory=dict)
    received_at: datetime | None = None
    postmark: datetime | None = None
    subject: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


def _instant(key: str, value: Any) -> datetime:
    if not isinstance(value, str):
        raise SidecarError(
            f"{key}: an ISO 8601 date or instant expected, got {type(value).__name__}"
        )
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), time(), tzinfo=UTC)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise SidecarError(f"{key}: not an ISO 8601 date or instant: {value[:40]!r}") from exc
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def parse_sidecar(raw: bytes, *, max_bytes: int = 64 * 1024) -> Sidecar:
    """Parse a sidecar file's bytes.

    Raises:
        SidecarError: too big, not a JSON object, or a key with a wrong value.
    """
    if len(raw) > max_bytes:
        raise SidecarError(f"sidecar is {len(raw):,} bytes, cap {max_bytes:,}")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise SidecarError(f"not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise SidecarError("a JSON object expected")
    channel = data.get("channel")
    if channel is not None and channel not in {"letter", "fax"}:
        raise SidecarError(f"channel: 'letter' or 'fax' expected, got {channel!r}")
    sender = data.get("sender") or {}
    if not isinstance(sender, dict) or not all(isinstance(v, str) for v in sender.values()):
        raise SidecarError("sender: an object of strings expected")
    unknown = set(sender) - _SENDER_KEYS
    if unknown:
        raise SidecarError(
            f"sender: unknown key(s) {sorted(unknown)}; known: {sorted(_SENDER_KEYS)}"
        )
    subject = data.get("subject")
    if subject is not None and not isinstance(subject, str):
        raise SidecarError("subject: a string expected")
    return Sidecar(
        channel=channel,
        sender={k: v.strip()[:500] for k, v in sender.items() if v.strip()},
        received_at=_instant("received_at", data["received_at"])
        if data.get("received_at")
        else None,
        postmark=_instant("postmark", data["postmark"]) if data.get("postmark") else None,
        subject=subject[:500] if subject else None,
        extra={k: v for k, v in data.items() if k not in _TOP_KEYS},
    )
