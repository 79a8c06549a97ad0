"""The e-mail threading chain: which earlier case does this message belong to?

An ordered, configurable chain of rules (channels reference 4.1); the first rule that
yields something is recorded in ``metadata["thread_rule"]``, and every candidate is kept in
``metadata["thread_candidates"]`` so intake can fall through when a candidate does not
resolve:

1. ``own_token``   careflow's token in In-Reply-To/References Message-IDs
                   (``<cf.{case_token}.{random}@{domain}>``, made by ``compose.py``);
2. ``references``  In-Reply-To/References against stored Message-IDs (intake looks them
                   up; this module only extracts them);
3. ``watermark``   ``[ref:cf-{case_token}]`` in the body (our outbound bodies carry it; it
                   survives mail systems that rewrite Message-IDs, e.g. Amazon SES);
4. ``subject_tag`` ``[Case#{case_token}]`` in the subject.

``case_token`` in the resulting ``ThreadRefs`` comes from rule 1, 3 or 4 (the first of them
in chain order); ``subject_tag`` is the subject's tag whatever the order.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from connectors.base import ThreadRefs
from connectors.email.parse import ParsedMail

__all__ = [
    "DEFAULT_RULES",
    "RULES",
    "ThreadMatch",
    "extract_thread",
    "make_message_id",
    "subject_tag",
    "token_of_message_id",
    "valid_token",
    "watermark",
]

RULES = ("own_token", "references", "watermark", "subject_tag")
DEFAULT_RULES = RULES

_TOKEN = r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}"
_TOKEN_RE = re.compile(rf"^{_TOKEN}$")
_MSGID_RE = re.compile(rf"^<cf\.({_TOKEN})\.[A-Za-z0-9]{{4,64}}@([^>\s]+)>$")
_WATERMARK_RE = re.compile(rf"\[ref:cf-({_TOKEN})\]")
_SUBJECT_RE = re.compile(rf"\[Case#({_TOKEN})\]", re.IGNORECASE)


def valid_token(token: str | None) -> bool:
    """Whether ``token`` can be carried in a Message-ID, watermark and subject tag."""
    return bool(token) and bool(_TOKEN_RE.match(token or ""))


def make_message_id(token: str | None, domain: str, *, unique: str | None = None) -> str:
    """A careflow Message-ID; ``unique`` (e.g. a hash of the idempotency key) makes it stable.

    >>> make_message_id("C42", "care.example", unique="ab12cd34")
    '<cf.C42.ab12cd34@care.example>'
    """
    tail = unique or secrets.token_hex(8)
    if valid_token(token):
        return f"<cf.{token}.{tail}@{domain}>"
    return f"<cf-{tail}@{domain}>"


def watermark(token: str) -> str:
    """The body watermark for ``token``: ``[ref:cf-TOKEN]``."""
    return f"[ref:cf-{token}]"


def subject_tag(token: str) -> str:
    """The subject tag for ``token``: ``[Case#TOKEN]``."""
    return f"[Case#{token}]"


def token_of_message_id(msgid: str, domain: str | None = None) -> str | None:
    """The case token inside one of our Message-IDs (only ours when ``domain`` is given)."""
    match = _MSGID_RE.match(msgid)
    if match is None:
        return None
    if domain and match.group(2).lower() != domain.lower():
        return None
    return match.group(1)


@dataclass(frozen=True, slots=True)
class ThreadMatch:
    """The extracted references, the first rule that matched and all candidates in order."""

    refs: ThreadRefs
    rule: str | None
    candidates: tuple[tuple[str, str], ...]


def _candidates(mail: ParsedMail, rule: str, domain: str | None) -> list[str]:
    if rule == "own_token":
        ids = [mail.in_reply_to] if mail.in_reply_to else []
        ids += reversed(mail.references)
        found = [token_of_message_id(i, domain) for i in ids]
        return [t for t in dict.fromkeys(found) if t]
    if rule == "references":
        ids = ([mail.in_reply_to] if mail.in_reply_to else []) + list(reversed(mail.references))
        return list(dict.fromkeys(ids))
    if rule == "watermark":
        return list(dict.fromkeys(_WATERMARK_RE.findall(mail.text)))[:5]
    if rule == "subject_tag":
        return list(dict.fromkeys(_SUBJECT_RE.findall(mail.subject)))[:5]
    raise ValueError(f"unknown threading rule {rule!r} (one of {', '.join(RULES)})")


def extract_thread(
    mail: ParsedMail, rules: Sequence[str] = DEFAULT_RULES, *, domain: str | None = None
) -> ThreadMatch:
    """Run the chain over ``mail``.

    Args:
        mail: the parsed message.
        rules: the rule names in precedence order (a subset of ``RULES``).
        domain: our Message-ID domain; when set, only tokens in ids of that domain count.

    Raises:
        ValueError: an unknown rule name.
    """
    candidates: list[tuple[str, str]] = []
    token: str | None = None
    first: str | None = None
    for rule in rules:
        found = _candidates(mail, rule, domain)
        candidates.extend((rule, value) for value in found)
        if found and first is None:
            first = rule
        if found and token is None and rule != "references":
            token = found[0]
    tags = _SUBJECT_RE.findall(mail.subject)
    refs = ThreadRefs(
        message_id=mail.message_id,
        in_reply_to=mail.in_reply_to,
        references=mail.references,
        case_token=token,
        subject_tag=tags[0] if tags else None,
    )
    return ThreadMatch(refs, first, tuple(candidates))
