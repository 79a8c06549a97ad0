"""Caps checked on raw e-mail bytes BEFORE the stdlib parser sees them (reliability item 9).

CPython's ``email`` package is superlinear on hostile headers (a ``To:`` with 16,000
addresses took 4.45 s on 3.11.7) and recursive on nested multiparts (1,000 levels raise
RecursionError). ``prescan`` looks at the bytes with cheap, linear scans and refuses a
message with a ``MailRejected`` that names the cap, so the parser only ever gets inputs it
handles in milliseconds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from engine.errors import ConnectorError

__all__ = ["MailLimits", "MailRejected", "prescan", "split_header_block"]


@dataclass(frozen=True, slots=True)
class MailLimits:
    """What the e-mail connector accepts (every cap: docs/channels-email-letter.md)."""

    #: whole message (IMAP RFC822.SIZE is compared with this before download)
    max_bytes: int = 10 * 1024 * 1024
    #: the whole header block of the top-level message
    max_header_bytes: int = 256 * 1024
    #: one header field, unfolded (a To: with 16,000 addresses is ~500 kB)
    max_field_bytes: int = 64 * 1024
    #: addresses in To + Cc + From + Reply-To together
    max_addresses: int = 1_000
    #: RFC 2047 encoded-words in the header block (16,000 in a Subject took 1.58 s)
    max_encoded_words: int = 2_000
    #: multipart containers anywhere in the message (nesting depth is bounded by this)
    max_multiparts: int = 64
    #: MIME parts in total
    max_parts: int = 500
    #: characters of body text kept in the channel event
    max_body_chars: int = 200_000


class MailRejected(ConnectorError):
    """A message was refused by a cap or could not be parsed; goes to the dead letters.

    Attributes:
        reason: a stable short code, e.g. ``oversize``, ``header_too_long``.
        detail: what exactly, with numbers.
    """

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__("email", f"{reason}: {detail}", retryable=False)


_HEADER_END = re.compile(rb"\r?\n\r?\n")
_MULTIPART = re.compile(rb"(?im)^content-type:[ \t]*(?:\r?\n[ \t]+)*multipart/")
_ENCODED_WORD = re.compile(rb"=\?[^?\s]{1,64}\?[bBqQ]\?")
_FIELD_START = re.compile(rb"(?m)^([!-9;-~]{1,76}):")
_ADDRESS_FIELDS = frozenset({b"to", b"cc", b"from", b"reply-to", b"bcc", b"sender"})


def split_header_block(raw: bytes) -> tuple[bytes, bytes]:
    """Return (header block, body) of a raw message; no header end means all header."""
    match = _HEADER_END.search(raw)
    if match is None:
        return raw, b""
    return raw[: match.start()], raw[match.end() :]


def _iter_fields(header: bytes) -> list[tuple[bytes, int, int]]:
    """(lower-case name, start, end) of every top-level header field, in one linear pass."""
    starts = [(m.group(1).lower(), m.start()) for m in _FIELD_START.finditer(header)]
    out = []
    for i, (name, start) in enumerate(starts):
        end = starts[i + 1][1] if i + 1 < len(starts) else len(header)
        out.append((name, start, end))
    return out


def _count_addresses(value: bytes) -> int:
    """Upper bound of addresses in a field: '@' signs outside nothing clever, linear."""
    return value.count(b"@")


def prescan(raw: bytes, limits: MailLimits) -> None:
    """Refuse ``raw`` if it breaks a cap; linear time in its length.

    Raises:
        MailRejected: with the cap's reason code and the measured value.
    """
    if len(raw) > limits.max_bytes:
        raise MailRejected("oversize", f"message is {len(raw):,} bytes, cap {limits.max_bytes:,}")
    header, _ = split_header_block(raw)
    if len(header) > limits.max_header_bytes:
        raise MailRejected(
            "header_too_long",
            f"header block is {len(header):,} bytes, cap {limits.max_header_bytes:,}",
        )
    addresses = 0
    for name, start, end in _iter_fields(header):
        size = end - start
        if size > limits.max_field_bytes:
            raise MailRejected(
                "header_too_long",
                f"header {name.decode('ascii', 'replace')}: is {size:,} bytes, "
                f"cap {limits.max_field_bytes:,}",
            )
        if name in _ADDRESS_FIELDS:
            addresses += _count_addresses(header[start:end])
    if addresses > limits.max_addresses:
        raise MailRejected(
            "too_many_addresses",
            f"{addresses:,} addresses in From/To/Cc/Reply-To, cap {limits.max_addresses:,}",
        )
    words = len(_ENCODED_WORD.findall(header))
    if words > limits.max_encoded_words:
        raise MailRejected(
            "too_many_encoded_words",
            f"{words:,} encoded-words in the header, cap {limits.max_encoded_words:,}",
        )
    multiparts = len(_MULTIPART.findall(raw))
    if multiparts > limits.max_multiparts:
        raise MailRejected(
            "too_many_multiparts",
            f"{multiparts:,} nested/sibling multipart containers, cap {limits.max_multiparts:,}",
        )
