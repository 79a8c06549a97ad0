"""The threading chain: own token, References, body watermark, subject tag; rule recorded."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from email_corpus import mail

from connectors.email.events import mail_to_event
from connectors.email.parse import parse_mail
from connectors.email.threadrefs import extract_thread, make_message_id

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
OURS = "<cf.C1234ABCD.0011aabb@careflow.example>"


def _event(raw: bytes, **kw: object):  # type: ignore[no-untyped-def]
    return mail_to_event(parse_mail(raw), received_at=NOW, domain="careflow.example", **kw)


def test_own_token_in_references_wins() -> None:
    ev = _event(
        mail(
            subject="Re: printer [Case#COTHER]",
            body="thanks\n> [ref:cf-CWATER]",
            headers={"In-Reply-To": OURS, "References": f"<x@y> {OURS}"},
        )
    )
    assert ev.thread.case_token == "C1234ABCD"
    assert ev.thread.in_reply_to == OURS
    assert ev.thread.subject_tag == "COTHER"
    assert ev.metadata["thread_rule"] == "own_token"
    assert ["watermark", "CWATER"] in ev.metadata["thread_candidates"]


def test_foreign_message_ids_fall_through_to_references() -> None:
    ev = _event(mail(headers={"In-Reply-To": "<earlier@customer.example>"}))
    assert ev.thread.case_token is None
    assert ev.thread.ids() == ("<earlier@customer.example>",)
    assert ev.metadata["thread_rule"] == "references"


def test_watermark_survives_rewritten_message_ids() -> None:
    ev = _event(
        mail(
            body="Answer above.\n> Hello Ann\n> [ref:cf-C77]\n",
            headers={"In-Reply-To": "<0100018e-rewritten@email.amazonses.com>"},
        )
    )
    assert ev.thread.case_token == "C77"
    assert ev.metadata["thread_rule"] == "references"  # first in chain order that matched


def test_subject_tag_alone() -> None:
    ev = _event(mail(subject="AW: Drucker [case#C99]"))
    assert ev.thread.case_token == "C99"
    assert ev.thread.subject_tag == "C99"
    assert ev.metadata["thread_rule"] == "subject_tag"


def test_chain_order_is_configurable() -> None:
    raw = mail(subject="[Case#CSUBJ]", body="[ref:cf-CWATER]", headers={"References": OURS})
    ev = _event(raw, rules=("subject_tag", "watermark", "own_token", "references"))
    assert ev.thread.case_token == "CSUBJ"
    assert ev.metadata["thread_rule"] == "subject_tag"
    ev = _event(raw, rules=("watermark",))
    assert ev.thread.case_token == "CWATER"


def test_token_only_counts_in_our_domain() -> None:
    parsed = parse_mail(mail(headers={"References": "<cf.C1.abcdef12@evil.example>"}))
    assert extract_thread(parsed, domain="careflow.example").refs.case_token is None
    assert extract_thread(parsed).refs.case_token == "C1"


def test_unknown_rule_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown threading rule 'thread_index'"):
        extract_thread(parse_mail(mail()), ("thread_index",))


def test_message_id_format() -> None:
    assert make_message_id("C1", "d.example", unique="abcd1234") == "<cf.C1.abcd1234@d.example>"
    assert (
        make_message_id("bad token!", "d.example", unique="abcd1234") == "<cf-abcd1234@d.example>"
    )
