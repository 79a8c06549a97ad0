"""Builders for test e-mail: ordinary mail, DSN bounces and the hostile corpus (R13)."""

from __future__ import annotations

import base64


def mail(
    *,
    subject: str = "My printer is broken",
    body: str = "Hello, my printer does not print.\nAnn",
    sender: str = "Ann Customer <ann@customer.example>",
    to: str = "care@careflow.example",
    message_id: str = "<m1@customer.example>",
    headers: dict[str, str] | None = None,
) -> bytes:
    lines = [
        f"From: {sender}",
        f"To: {to}",
        f"Subject: {subject}",
        "Date: Mon, 02 Mar 2026 09:00:00 +0100",
    ]
    if message_id:
        lines.append(f"Message-ID: {message_id}")
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    lines += [
        "MIME-Version: 1.0",
        'Content-Type: text/plain; charset="utf-8"',
        "Content-Transfer-Encoding: 8bit",
        "",
        body,
        "",
    ]
    return "\r\n".join(lines).encode("utf-8")


def multipart(
    parts: list[tuple[dict[str, str], bytes]],
    *,
    subject: str = "With files",
    message_id: str = "<mp1@customer.example>",
    ctype: str = "multipart/mixed",
    extra: str = "",
) -> bytes:
    head = (
        f"From: Ann <ann@customer.example>\r\nTo: care@careflow.example\r\nSubject: {subject}\r\n"
        f"Message-ID: {message_id}\r\nMIME-Version: 1.0\r\n"
        f'Content-Type: {ctype}; boundary="BOUNDARY"{extra}\r\n\r\n'
    ).encode()
    out = [head]
    for hdrs, payload in parts:
        out.append(b"--BOUNDARY\r\n")
        out.append("".join(f"{k}: {v}\r\n" for k, v in hdrs.items()).encode() + b"\r\n")
        out.append(payload + b"\r\n")
    out.append(b"--BOUNDARY--\r\n")
    return b"".join(out)


def attachment_part(
    name: str, data: bytes, ctype: str = "application/pdf"
) -> tuple[dict[str, str], bytes]:
    return (
        {
            "Content-Type": f'{ctype}; name="{name}"',
            "Content-Disposition": f'attachment; filename="{name}"',
            "Content-Transfer-Encoding": "base64",
        },
        base64.encodebytes(data),
    )


def dsn(
    original_id: str,
    *,
    status: str = "5.1.1",
    recipient: str = "gone@customer.example",
    message_id: str = "<dsn1@mx.example>",
) -> bytes:
    """A RFC 3464 delivery status notification with the original's headers attached."""
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.example>\r\n"
        "To: care@careflow.example\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        f"Message-ID: {message_id}\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="R"\r\n\r\n'
        "--R\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "--R\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: {status}\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n\r\n"
        "--R\r\nContent-Type: message/rfc822\r\n\r\n"
        f"From: care@careflow.example\r\nTo: {recipient}\r\nSubject: Your case\r\n"
        f"Message-ID: {original_id}\r\n\r\nHello\r\n"
        "--R--\r\n"
    ).encode()


# ---- hostile corpus (reliability scenario R13) --------------------------------------------


def huge_to(n: int = 16_000) -> bytes:
    addrs = ", ".join(f"user{i} <u{i}@example.com>" for i in range(n))
    head = f"From: a@example.com\r\nTo: {addrs}\r\nSubject: hi\r\nMessage-ID: <huge-to@x>\r\n"
    return (head + "\r\nbody\r\n").encode()


def many_encoded_words(n: int = 16_000) -> bytes:
    subject = " ".join("=?utf-8?q?a?=" for _ in range(n))
    head = f"From: a@example.com\r\nSubject: {subject}\r\nMessage-ID: <words@x>\r\n"
    return (head + "\r\nbody\r\n").encode()


def nested_multiparts(depth: int = 1_000) -> bytes:
    out = [b"From: a@example.com\r\nMessage-ID: <nested@x>\r\nMIME-Version: 1.0\r\n"]
    for i in range(depth):
        out.append(b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i))
    out.append(b"Content-Type: text/plain\r\n\r\nhello\r\n")
    for i in reversed(range(depth)):
        out.append(b"--b%d--\r\n" % i)
    return b"".join(out)


def big_message(megabytes: int = 30) -> bytes:
    payload = base64.encodebytes(b"\0" * (megabytes * 1024 * 1024 * 3 // 4))
    return multipart(
        [
            ({"Content-Type": "text/plain"}, b"see attachment"),
            (
                {
                    "Content-Type": "application/octet-stream",
                    "Content-Disposition": 'attachment; filename="big.bin"',
                    "Content-Transfer-Encoding": "base64",
                },
                payload,
            ),
        ],
        message_id="<big@x>",
    )


def missing_boundary() -> bytes:
    return (
        b"From: a@example.com\r\nMessage-ID: <nobound@x>\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed\r\n\r\njust text, no boundary at all\r\n"
    )


def bad_charset() -> bytes:
    return (
        b"From: =?x-no-such-charset?q?Bj=F6rn?= <bjorn@example.com>\r\nMessage-ID: <cs@x>\r\n"
        b"Subject: =?x-no-such-charset?b?/////w==?= broken\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: text/plain; charset="x-no-such-charset"\r\n\r\nGr\xfc\xdfe \xff\xfe\r\n'
    )


def eight_bit_headers() -> bytes:
    return (
        "From: Jörg Müller <joerg@example.com>\r\nMessage-ID: <8bit@x>\r\n"
        "Subject: Grüße aus Köln\r\n\r\nHallo\r\n"
    ).encode()


HOSTILE = {
    "to_16000_addresses": huge_to,
    "subject_16000_encoded_words": many_encoded_words,
    "nested_1000_multiparts": nested_multiparts,
    "nested_10000_multiparts": lambda: nested_multiparts(10_000),
    "message_30mb": big_message,
}


def duplicate_boundaries() -> bytes:
    """A nested multipart that reuses its parent's boundary (R13 corpus)."""
    return (
        b"From: a@example.com\r\nMessage-ID: <dupb@x>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="B"\r\n\r\n'
        b'--B\r\nContent-Type: multipart/alternative; boundary="B"\r\n\r\n'
        b"--B\r\nContent-Type: text/plain\r\n\r\ninner text\r\n--B--\r\n"
        b"--B\r\nContent-Type: text/plain\r\n\r\nouter text\r\n--B--\r\n"
    )
