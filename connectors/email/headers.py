"""Header text in and out: decode RFC 2047 safely, and make any text safe to put in a header.

Inbound values are decoded with compat32 primitives (``email.header.decode_header``),
which are linear, instead of ``policy.default``'s header registry (superlinear on hostile
input). Outbound, ``safe_header_text`` is applied to EVERY header value derived from
inbound or user text: on CPython 3.11.7 an encoded newline (``=?utf-8?q?x=0ABcc:...?=``)
in a subject is decoded again by the generator and injects a ``Bcc:`` line
(CVE-2024-6923, reliability item 9 / scenario R14).
"""

from __future__ import annotations

import re
import unicodedata
from email.header import decode_header

__all__ = ["decode_text", "safe_filename", "safe_header_text"]

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]+")
_SPACES = re.compile(r"[ \t]{2,}")


def _charset_decode(data: bytes, charset: str | None) -> str:
    name = (charset or "ascii").strip().lower()
    if name in {"unknown-8bit", "x-unknown", ""}:
        name = "utf-8"
    try:
        return data.decode(name, errors="replace")
    except LookupError:  # a charset Python does not know: keep the text readable
        return data.decode("utf-8", errors="replace")


def decode_text(value: str | None, *, max_chars: int = 4_096) -> str:
    """Decode a raw header value (RFC 2047 encoded-words, bad charsets) to plain text.

    Unknown charsets fall back to UTF-8 with replacement characters; the result is cut to
    ``max_chars``. Control characters are kept: callers that build headers must still use
    ``safe_header_text``.

    >>> decode_text("=?utf-8?q?Gr=C3=BC=C3=9Fe?= aus Bonn")
    'Grüße aus Bonn'
    """
    if not value:
        return ""
    text = str(value)[: max_chars * 4]
    try:
        parts = decode_header(text)
    except (ValueError, AssertionError, LookupError, UnicodeError):
        return text[:max_chars]
    out = []
    for chunk, charset in parts:
        out.append(_charset_decode(chunk, charset) if isinstance(chunk, bytes) else chunk)
    joined = "".join(out)
    return joined[:max_chars]


def safe_header_text(value: str, *, max_chars: int = 998) -> str:
    """Text that cannot start a new header line however the generator re-encodes it.

    Decodes encoded-words (repeatedly, so a double-encoded newline is caught), replaces
    every control or line-separator character by a space, and neutralises a remaining
    ``=?`` so it can never be decoded again downstream.

    >>> safe_header_text("hi =?utf-8?q?there=0D=0ABcc:_x@evil?=")
    'hi there Bcc: x@evil'
    """
    text = str(value)
    for _ in range(3):
        if "=?" not in text:
            break
        decoded = decode_text(text, max_chars=max_chars * 2)
        if decoded == text:
            break
        text = decoded
    text = _CONTROL.sub(" ", text)
    text = text.replace("=?", "= ?")
    text = _SPACES.sub(" ", text).strip()
    return text[:max_chars]


def safe_filename(value: str, *, fallback: str = "attachment", max_chars: int = 200) -> str:
    """A display file name with no directory part, no control characters, no leading dots.

    The bytes are stored under their SHA-256, never under this name; the name is shown to
    agents and reused in outbound mail, so it is also made header-safe.

    >>> safe_filename("../../etc/passwd")
    'passwd'
    >>> safe_filename("C:\\\\Users\\\\x\\\\..\\\\evil.exe")
    'evil.exe'
    """
    text = safe_header_text(value, max_chars=max_chars * 2)
    text = unicodedata.normalize("NFC", text)
    text = text.replace("\\", "/").rsplit("/", 1)[-1]
    text = text.lstrip(". ").strip()
    text = re.sub(r'[<>:"|?*]', "_", text)
    return text[:max_chars] or fallback
