"""Typed customer identifiers and their normal forms (e-mail, E.164 phone, handle, number).

Two spellings of one identifier must compare equal, or one person becomes two customers:
e-mail addresses are lower-cased, phone numbers become E.164 with ``phonenumbers`` (a
number without a country code is read in the default region, ``CAREFLOW_PHONE_REGION`` or
NL), social handles become ``network:@name`` lower-cased, customer numbers are trimmed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "DEFAULT_REGION",
    "KINDS",
    "Identifier",
    "InvalidIdentifier",
    "default_region",
    "normalise",
    "normalise_all",
]

#: identifier kinds, strongest first (the order used when two verified matches disagree)
KINDS = ("customer_number", "email", "phone", "handle")
DEFAULT_REGION = "NL"
_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
_HANDLE = re.compile(r"^(?:(?P<net>[a-z][a-z0-9_.-]{0,30}):)?@?(?P<name>[^\s@:]{1,100})$")


class InvalidIdentifier(ValueError):
    """An identifier value that cannot be normalised; ``kind`` and ``value`` say which."""

    def __init__(self, kind: str, value: str, reason: str) -> None:
        self.kind = kind
        self.value = value
        super().__init__(f"invalid {kind} {value!r}: {reason}")


@dataclass(frozen=True, slots=True, order=True)
class Identifier:
    """A normalised identifier: ``kind`` one of KINDS, ``value`` in normal form."""

    kind: str
    value: str

    def __str__(self) -> str:
        return f"{self.kind}={self.value}"


def default_region() -> str:
    return os.environ.get("CAREFLOW_PHONE_REGION", DEFAULT_REGION).upper()


def _phone(value: str, region: str) -> str:
    import phonenumbers

    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidIdentifier("phone", value, str(exc)) from exc
    if not phonenumbers.is_possible_number(number):
        raise InvalidIdentifier("phone", value, "not a possible phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise(kind: str, value: str, *, region: str | None = None) -> Identifier:
    """The normal form of one identifier.

    Raises:
        InvalidIdentifier: unknown kind or a value that is not an identifier of that kind.
    """
    text = (value or "").strip()
    if not text:
        raise InvalidIdentifier(kind, value, "empty")
    if kind == "email":
        text = text.lower()
        if text.startswith("mailto:"):
            text = text[7:]
        if not _EMAIL.match(text) or len(text) > 320:
            raise InvalidIdentifier(kind, value, "not an e-mail address")
        return Identifier(kind, text)
    if kind == "phone":
        return Identifier(kind, _phone(text, region or default_region()))
    if kind == "handle":
        m = _HANDLE.match(text.lower())
        if not m:
            raise InvalidIdentifier(kind, value, "expected network:@name")
        net = m.group("net") or "social"
        return Identifier(kind, f"{net}:@{m.group('name')}")
    if kind == "customer_number":
        if len(text) > 100:
            raise InvalidIdentifier(kind, value, "longer than 100 characters")
        return Identifier(kind, text)
    raise InvalidIdentifier(kind, value, f"unknown identifier kind (one of {', '.join(KINDS)})")


def normalise_all(
    customer: Mapping[str, str], *, region: str | None = None
) -> tuple[list[Identifier], list[InvalidIdentifier]]:
    """Normalise the identifier keys of a ChannelEvent's ``customer`` mapping.

    ``name`` is not an identifier and is skipped; invalid values are returned, not raised,
    so one bad phone number does not lose the message.
    """
    found: list[Identifier] = []
    bad: list[InvalidIdentifier] = []
    for kind in KINDS:
        raw = customer.get(kind)
        if not raw:
            continue
        try:
            ident = normalise(kind, raw, region=region)
        except InvalidIdentifier as exc:
            bad.append(exc)
            continue
        if ident not in found:
            found.append(ident)
    return found, bad


def guess_kind(text: str) -> str:
    """Which kind a free-text lookup key probably is (CLI: ``customer show KEY``)."""
    t = text.strip()
    if "@" in t and not t.startswith("@") and ":" not in t.split("@")[0]:
        return "email"
    if re.fullmatch(r"[+0-9 ()./-]{6,}", t):
        return "phone"
    if ":@" in t or t.startswith("@"):
        return "handle"
    return "customer_number"
