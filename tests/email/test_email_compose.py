"""Outbound composition: threading headers, loop marking, and no header injection (R14)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage

import pytest

from connectors.base import OutboundMessage, ThreadRefs
from connectors.email.compose import compose
from connectors.email.config import EmailConfig
from connectors.email.headers import safe_header_text

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
CFG = EmailConfig(from_address="care@careflow.example", from_name="Care Team")
INJECTED_SUBJECT = "=?utf-8?q?Printer=0ABcc:_attacker@evil.example?="


def _msg(**kw: object) -> OutboundMessage:
    base: dict[str, object] = dict(
        message_id="out-1",
        case_id="C1234",
        channel="email",
        to="Ann <ann@customer.example>",
        subject="Re: printer",
        body="We are on it.",
        idempotency_key="C1234:n1:1",
        automatic=False,
    )
    base.update(kw)
    return OutboundMessage(**base)  # type: ignore[arg-type]


def _headers(data: bytes) -> list[str]:
    head = data.split(b"\r\n\r\n", 1)[0].decode()
    return [
        line.split(":", 1)[0].lower()
        for line in head.replace("\r\n", "\n").split("\n")
        if line and not line[0].isspace()
    ]


def test_unsanitised_subject_injects_bcc_on_this_python() -> None:
    """The hazard is real here: the stdlib re-decodes an encoded newline into a header line."""
    out = EmailMessage(policy=email_policy.SMTP)
    out["From"] = "care@careflow.example"
    out["Subject"] = INJECTED_SUBJECT
    out.set_content("x")
    injected = "bcc" in _headers(out.as_bytes())
    if sys.version_info[:3] <= (3, 11, 9):
        assert injected, "expected CVE-2024-6923 behaviour on an unpatched CPython"


@pytest.mark.parametrize(
    "subject",
    [
        INJECTED_SUBJECT,
        "Printer\r\nBcc: attacker@evil.example",
        "x" * 70 + " =?utf-8?q?=0D=0ABcc:_attacker@evil.example?=",
        "=?utf-8?b?UHJpbnRlcgpCY2M6IGF0dGFja2VyQGV2aWwuZXhhbXBsZQ==?=",
    ],
)
def test_no_header_injection_through_subject(subject: str) -> None:
    data = compose(_msg(subject=subject), CFG, now=NOW).data
    assert "bcc" not in _headers(data)
    parsed = message_from_bytes(data, policy=email_policy.default)
    assert parsed["Bcc"] is None
    assert "attacker@evil.example" in str(parsed["Subject"])  # kept as text, harmlessly


def test_no_injection_through_display_names_and_extra_headers() -> None:
    msg = _msg(
        to="=?utf-8?q?Ann=0ABcc:_x@evil.example?= <ann@customer.example>",
        headers={"X-Note": "a\r\nBcc: x@evil.example", "Bcc": "x@evil.example", "X-Ref\nBcc": "y"},
    )
    cfg = EmailConfig(from_address="care@careflow.example", from_name="Care\nBcc: z@evil.example")
    data = compose(msg, cfg, now=NOW).data
    assert "bcc" not in _headers(data)
    assert message_from_bytes(data)["To"].endswith("<ann@customer.example>")


def test_threading_headers_watermark_and_tag() -> None:
    msg = _msg(
        thread=ThreadRefs(
            in_reply_to="<m1@customer.example>", references=("<m0@customer.example>",)
        )
    )
    composed = compose(msg, CFG, now=NOW)
    parsed = message_from_bytes(composed.data, policy=email_policy.default)
    assert composed.message_id.startswith("<cf.C1234.")
    assert composed.message_id.endswith("@careflow.example>")
    assert parsed["Message-ID"] == composed.message_id
    assert parsed["In-Reply-To"] == "<m1@customer.example>"
    assert parsed["References"] == "<m0@customer.example> <m1@customer.example>"
    assert parsed["Subject"] == "Re: printer [Case#C1234]"
    assert "[ref:cf-C1234]" in parsed.get_content()
    assert parsed["X-Careflow-Loop"] == "careflow"
    assert parsed["Auto-Submitted"] is None
    assert composed.recipients == ("ann@customer.example",)


def test_automatic_mail_is_marked_and_ids_are_stable() -> None:
    first = compose(_msg(automatic=True), CFG, now=NOW)
    again = compose(_msg(automatic=True), CFG, now=NOW)
    other = compose(_msg(automatic=True, idempotency_key="C1234:n1:2"), CFG, now=NOW)
    parsed = message_from_bytes(first.data)
    assert parsed["Auto-Submitted"] == "auto-replied"
    assert parsed["X-Auto-Response-Suppress"] == "All"
    assert first.message_id == again.message_id != other.message_id


def test_subject_tag_is_not_repeated() -> None:
    parsed = message_from_bytes(compose(_msg(subject="Re: x [Case#C1234]"), CFG, now=NOW).data)
    assert parsed["Subject"] == "Re: x [Case#C1234]"


def test_safe_header_text_neutralises_double_encoding() -> None:
    double = "=?utf-8?q?=3D=3Futf-8=3Fq=3F=3D0ABcc:_x=3F=3D?="
    assert "\n" not in safe_header_text(double)
    assert "=?" not in safe_header_text(double)
