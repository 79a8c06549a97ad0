"""Parsing under caps: ordinary mail, HTML, charsets, attachments and the hostile corpus (R13)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from email_corpus import (
    HOSTILE,
    attachment_part,
    bad_charset,
    duplicate_boundaries,
    eight_bit_headers,
    mail,
    missing_boundary,
    multipart,
)

from connectors.email.attachments import ContentStore
from connectors.email.limits import MailLimits, MailRejected
from connectors.email.parse import normalize_msgid, parse_mail, split_msgids


def test_plain_mail_is_decoded() -> None:
    parsed = parse_mail(
        mail(
            subject="=?utf-8?q?Gr=C3=BC=C3=9Fe?= printer",
            headers={"In-Reply-To": "<a@x>", "References": "<z@x> <a@x>"},
        )
    )
    assert parsed.subject == "Grüße printer"
    assert parsed.from_addr == "ann@customer.example"
    assert parsed.from_name == "Ann Customer"
    assert parsed.to == ("care@careflow.example",)
    assert parsed.message_id == "<m1@customer.example>"
    assert parsed.in_reply_to == "<a@x>"
    assert parsed.references == ("<z@x>", "<a@x>")
    assert parsed.text.startswith("Hello, my printer does not print.")
    assert parsed.date is not None
    assert parsed.date.utcoffset() is not None


def test_html_only_body_becomes_text_without_scripts() -> None:
    raw = multipart(
        [
            (
                {"Content-Type": "text/html; charset=utf-8"},
                b"<html><head><style>p{}</style></head><body><p>Hi <b>team</b></p>"
                b"<script>alert('x')</script><p>Order &amp; invoice</p></body></html>",
            )
        ],
        ctype="multipart/alternative",
    )
    parsed = parse_mail(raw)
    assert parsed.html_only is True
    assert parsed.text == "Hi team\n\nOrder & invoice"


def test_plain_part_is_preferred_over_html() -> None:
    raw = multipart(
        [
            ({"Content-Type": "text/plain; charset=utf-8"}, b"plain words"),
            ({"Content-Type": "text/html; charset=utf-8"}, b"<p>html words</p>"),
        ],
        ctype="multipart/alternative",
    )
    assert parse_mail(raw).text.strip() == "plain words"


def test_unknown_charsets_and_8bit_headers_do_not_fail() -> None:
    parsed = parse_mail(bad_charset())
    assert "Gr" in parsed.text
    assert "\ufffd" in parsed.text
    assert parsed.from_addr == "bjorn@example.com"
    assert parse_mail(eight_bit_headers()).from_addr == "joerg@example.com"


def test_duplicate_boundaries_are_parsed() -> None:
    parsed = parse_mail(duplicate_boundaries())
    assert parsed.message_id == "<dupb@x>"
    assert "text" in parsed.text


def test_missing_boundary_is_parsed_as_text() -> None:
    parsed = parse_mail(missing_boundary())
    assert parsed.message_id == "<nobound@x>"


def test_attachments_are_stored_under_their_sha256_with_safe_names(tmp_path: Path) -> None:
    data = b"%PDF-1.4 invoice"
    raw = multipart(
        [
            ({"Content-Type": "text/plain"}, b"see attached"),
            attachment_part("../../etc/passwd", data),
            attachment_part("=?utf-8?q?rechnung=0A=0DBcc:x.pdf?=", b"second"),
        ]
    )
    store = ContentStore(tmp_path / "store")
    parsed = parse_mail(raw, store_attachment=store)
    first, second = parsed.attachments
    assert first.name == "passwd"
    assert first.sha256 == hashlib.sha256(data).hexdigest()
    assert first.size == len(data)
    assert Path(first.path or "").read_bytes() == data
    assert Path(first.path or "").parent.parent == tmp_path / "store"
    assert "\n" not in second.name
    assert "\r" not in second.name
    assert parsed.notes
    assert "sanitised" in parsed.notes[0]
    assert not (tmp_path / "etc").exists()


@pytest.mark.parametrize("name", sorted(HOSTILE), ids=str)
def test_hostile_corpus_is_refused_with_a_reason(name: str) -> None:
    raw = HOSTILE[name]()
    with pytest.raises(MailRejected) as info:
        parse_mail(raw)
    assert info.value.reason in {
        "oversize",
        "header_too_long",
        "too_many_addresses",
        "too_many_encoded_words",
        "too_many_multiparts",
    }
    assert info.value.retryable is False


def test_address_cap_counts_all_address_fields() -> None:
    raw = mail(to=", ".join(f"u{i}@example.com" for i in range(30)))
    with pytest.raises(MailRejected) as info:
        parse_mail(raw, MailLimits(max_addresses=10))
    assert info.value.reason == "too_many_addresses"
    assert "31 addresses" in info.value.detail


def test_encoded_word_cap() -> None:
    subject = " ".join("=?a?q?b?=" for _ in range(3_000))  # 30 kB: under the field cap
    raw = mail(subject=subject)
    with pytest.raises(MailRejected) as info:
        parse_mail(raw)
    assert info.value.reason == "too_many_encoded_words"


def test_part_cap() -> None:
    parts = [({"Content-Type": "text/plain"}, b"x")] * 20
    with pytest.raises(MailRejected) as info:
        parse_mail(multipart(parts), MailLimits(max_parts=10))
    assert info.value.reason == "too_many_parts"


def test_message_ids_are_normalised() -> None:
    assert normalize_msgid("  <abc@x> (comment)") == "<abc@x>"
    assert normalize_msgid("") is None
    assert split_msgids("<a@x>\r\n <b@x> junk <c@x>") == ("<a@x>", "<b@x>", "<c@x>")
    assert len(split_msgids(" ".join(f"<{i}@x>" for i in range(500)))) == 100
