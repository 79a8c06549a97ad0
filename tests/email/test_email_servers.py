"""The connector against real servers: Dovecot IMAP polling and aiosmtpd SMTP sending."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from pathlib import Path

import pytest
from email_corpus import HOSTILE, attachment_part, dsn, mail, multipart

from connectors.base import OutboundMessage
from connectors.email import EmailConnector
from connectors.email.devservers import LocalDovecot, LocalSmtp, free_port
from engine.clock import SimulatedClock
from engine.errors import ConnectorError

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)


def _connector(
    dovecot: LocalDovecot, mailbox: str, tmp_path: Path, **extra: object
) -> EmailConnector:
    cfg = dovecot.config(
        mailboxes=[mailbox],
        state_dir=str(tmp_path / "state"),
        attachment_dir=str(tmp_path / "files"),
        from_address="care@careflow.example",
        **extra,
    )
    return EmailConnector(cfg, clock=SimulatedClock(NOW))


def test_poll_turns_mail_into_events_once(
    dovecot: LocalDovecot, mailbox: str, tmp_path: Path
) -> None:
    dovecot.append(
        mail(message_id="<a1@c.example>"),
        multipart(
            [
                ({"Content-Type": "text/plain"}, b"invoice attached"),
                attachment_part("invoice.pdf", b"%PDF-1.4 x"),
            ],
            message_id="<a2@c.example>",
        ),
        mailbox=mailbox,
    )
    conn = _connector(dovecot, mailbox, tmp_path)
    events = list(conn.receive())
    assert [e.external_id for e in events] == ["<a1@c.example>", "<a2@c.example>"]
    assert events[0].customer["email"] == "ann@customer.example"
    assert events[0].metadata["imap"]["mailbox"] == mailbox
    assert events[1].attachments[0].name == "invoice.pdf"
    assert Path(events[1].attachments[0].path or "").read_bytes() == b"%PDF-1.4 x"
    assert list(conn.receive()) == []
    # the cursor is persisted: a new connector (a restarted worker) sees nothing new either
    assert list(_connector(dovecot, mailbox, tmp_path).receive()) == []
    dovecot.append(mail(message_id="<a3@c.example>"), mailbox=mailbox)
    assert [e.external_id for e in conn.receive()] == ["<a3@c.example>"]
    assert conn.health().ok
    assert conn.health().last_success == NOW


def test_cursor_moves_only_after_the_caller_took_the_event(
    dovecot: LocalDovecot, mailbox: str, tmp_path: Path
) -> None:
    dovecot.append(
        mail(message_id="<b1@c.example>"), mail(message_id="<b2@c.example>"), mailbox=mailbox
    )
    conn = _connector(dovecot, mailbox, tmp_path)

    def crashing_intake(event: object) -> None:
        raise RuntimeError("database went away")

    with pytest.raises(RuntimeError):
        conn.poll(crashing_intake)
    assert [e.external_id for e in conn.receive()] == ["<b1@c.example>", "<b2@c.example>"]


def test_uidvalidity_change_triggers_a_full_resync(
    dovecot: LocalDovecot, mailbox: str, tmp_path: Path
) -> None:
    dovecot.append(
        mail(message_id="<u1@c.example>"), mail(message_id="<u2@c.example>"), mailbox=mailbox
    )
    conn = _connector(dovecot, mailbox, tmp_path)
    first = conn.receive()
    ids = [e.external_id for e in first]
    before = conn.cursors.get(mailbox)
    dovecot.recreate_mailbox(mailbox)
    again = [e.external_id for e in conn.receive()]
    after = conn.cursors.get(mailbox)
    assert before is not None
    assert after is not None
    assert before.uidvalidity != after.uidvalidity
    assert again == ids  # same external ids: the inbox deduplicates them


def test_hostile_mail_is_dead_lettered_and_polling_goes_on(
    dovecot: LocalDovecot, mailbox: str, tmp_path: Path
) -> None:
    hostile = [HOSTILE[name]() for name in sorted(HOSTILE)]
    dovecot.append(*hostile, mail(message_id="<after@c.example>"), mailbox=mailbox)
    conn = _connector(dovecot, mailbox, tmp_path)
    events = list(conn.receive())
    assert [e.external_id for e in events] == ["<after@c.example>"]
    reasons = sorted(r.reason for r in conn.rejected)
    assert reasons == [
        "header_too_long",
        "header_too_long",
        "oversize",
        "too_many_multiparts",
        "too_many_multiparts",
    ]
    oversize = next(r for r in conn.rejected if r.reason == "oversize")
    assert "not downloaded" in oversize.detail
    assert oversize.payload["headers"]["message-id"] == "<big@x>"
    quarantined = [r.payload["quarantined"] for r in conn.rejected if r.reason != "oversize"]
    assert all(Path(p).exists() for p in quarantined)
    assert list(conn.receive()) == []  # refused mail is not fetched again


def test_oversize_is_decided_by_rfc822_size(
    dovecot: LocalDovecot, mailbox: str, tmp_path: Path
) -> None:
    dovecot.append(mail(body="x" * 5_000, message_id="<s1@c.example>"), mailbox=mailbox)
    conn = _connector(dovecot, mailbox, tmp_path, limits={"max_bytes": 2_000})
    assert list(conn.receive()) == []
    (rejection,) = conn.rejected
    assert rejection.reason == "oversize"
    assert rejection.payload["size"] > 5_000


def test_auto_replies_and_bounces_are_classified(
    dovecot: LocalDovecot, mailbox: str, tmp_path: Path
) -> None:
    dovecot.append(
        mail(message_id="<ooo@c.example>", headers={"Auto-Submitted": "auto-replied"}),
        dsn("<cf.C1.abcdef12@careflow.example>"),
        mailbox=mailbox,
    )
    kinds = [e.kind for e in _connector(dovecot, mailbox, tmp_path).receive()]
    assert kinds == ["auto_reply", "bounce"]


def test_unreachable_imap_is_a_retryable_error(tmp_path: Path) -> None:
    conn = EmailConnector({"imap_host": "127.0.0.1", "imap_port": free_port(), "imap_timeout": 2})
    with pytest.raises(ConnectorError) as info:
        list(conn.receive())
    assert info.value.retryable
    assert not conn.health().ok
    assert conn.health().errors == 1


def _out(**kw: object) -> OutboundMessage:
    base: dict[str, object] = dict(
        message_id="o1",
        case_id="C42",
        channel="email",
        to="ann@customer.example",
        subject="Your request",
        body="Hello Ann",
        idempotency_key="C42:ack:1",
        automatic=False,
    )
    base.update(kw)
    return OutboundMessage(**base)  # type: ignore[arg-type]


def _sender(smtp: LocalSmtp, clock: SimulatedClock | None = None) -> EmailConnector:
    return EmailConnector(
        smtp.config(from_address="care@careflow.example"), clock=clock or SimulatedClock(NOW)
    )


def test_send_delivers_over_smtp(smtp: LocalSmtp) -> None:
    delivery = _sender(smtp).send(_out())
    assert delivery.status == "sent"
    assert delivery.message_id == "o1"
    (received,) = smtp.messages
    assert received.rcpt_tos == ("ann@customer.example",)
    parsed = message_from_bytes(received.data)
    assert parsed["Message-ID"] == delivery.external_id
    assert delivery.external_id is not None
    assert delivery.external_id.startswith("<cf.C42.")


def test_send_is_idempotent_per_key_within_a_process(smtp: LocalSmtp) -> None:
    conn = _sender(smtp)
    first, second = conn.send(_out()), conn.send(_out())
    assert first == second
    assert len(smtp.messages) == 1


def test_smtp_refusals_map_to_delivery_status(smtp: LocalSmtp) -> None:
    conn = _sender(smtp)
    smtp.refuse_next(550, "5.1.1 mailbox unavailable")
    assert conn.send(_out(idempotency_key="k1")).status == "failed"
    smtp.refuse_next(451, "4.3.0 try again later")
    deferred = conn.send(_out(idempotency_key="k2"))
    assert deferred.status == "deferred"
    assert "451" in deferred.detail
    assert conn.send(_out(idempotency_key="k2")).status == "sent"


def test_smtp_down_is_deferred() -> None:
    conn = EmailConnector({"smtp_host": "127.0.0.1", "smtp_port": free_port(), "smtp_timeout": 2})
    assert conn.send(_out()).status == "deferred"


def test_automatic_mail_guards(smtp: LocalSmtp) -> None:
    clock = SimulatedClock(NOW)
    conn = _sender(smtp, clock)
    refused = conn.send(_out(to="noreply@shop.example", automatic=True))
    assert refused.status == "failed"
    assert "never auto-reply" in refused.detail
    statuses = [  # the same recipient however its display name is written
        conn.send(
            _out(
                to=f"Peer {i} <Peer@Loop.example>" if i % 2 else "peer@loop.example",
                automatic=True,
                idempotency_key=f"a{i}",
            )
        ).status
        for i in range(8)
    ]
    assert statuses == ["sent"] * 5 + ["failed"] * 3
    assert all(
        message_from_bytes(m.data)["Auto-Submitted"] == "auto-replied" for m in smtp.messages
    )
    clock.advance(timedelta(minutes=61))
    assert (
        conn.send(_out(to="peer@loop.example", automatic=True, idempotency_key="later")).status
        == "sent"
    )
    # a person's reply is not rate limited
    assert (
        conn.send(_out(to="peer@loop.example", automatic=False, idempotency_key="human")).status
        == "sent"
    )
    assert len(smtp.messages) == 7


def test_smtp_login() -> None:
    with LocalSmtp(users={"care": "s3cret"}) as server:
        good = EmailConnector(server.config(smtp_user="care", smtp_password="s3cret"))
        assert good.send(_out()).status == "sent"
        bad = EmailConnector(server.config(smtp_user="care", smtp_password="wrong"))
        with pytest.raises(ConnectorError, match="login refused") as info:
            bad.send(_out(idempotency_key="other"))
        assert info.value.retryable
        assert not bad.health().ok
        assert len(server.messages) == 1


def test_smtp_without_auth_support_is_a_config_error(smtp: LocalSmtp) -> None:
    conn = EmailConnector(smtp.config(smtp_user="care", smtp_password="x"))
    with pytest.raises(ConnectorError, match="offers no AUTH") as info:
        conn.send(_out())
    assert not info.value.retryable
