"""Loop protection and bounces: RFC 3834 classification, no-reply guard, rate limit, DSNs (R15)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from email_corpus import dsn, mail

from connectors.email.events import mail_to_event
from connectors.email.loops import AutoReplyLimiter, never_auto_reply
from connectors.email.parse import parse_mail
from engine.clock import SimulatedClock

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)

AUTO_HEADERS = {
    "auto_submitted": ({"Auto-Submitted": "auto-replied"}, "Auto-Submitted"),
    "auto_generated": ({"Auto-Submitted": "auto-generated; owner-email=x@y"}, "Auto-Submitted"),
    "precedence_bulk": ({"Precedence": "bulk"}, "precedence: bulk"),
    "precedence_junk": ({"Precedence": "junk"}, "precedence: junk"),
    "precedence_list": ({"Precedence": "list"}, "precedence: list"),
    "precedence_auto_reply": ({"Precedence": "auto_reply"}, "precedence: auto_reply"),
    "x_autoreply": ({"X-Autoreply": "yes"}, "x-autoreply"),
    "x_autorespond": ({"X-Autorespond": "yes"}, "x-autorespond"),
    "x_auto_response_suppress": ({"X-Auto-Response-Suppress": "All"}, "x-auto-response-suppress"),
    "list_id": ({"List-Id": "<news.shop.example>"}, "list-id"),
    "list_unsubscribe": ({"List-Unsubscribe": "<mailto:u@x>"}, "list-unsubscribe"),
    "x_loop": ({"X-Loop": "helpdesk@x"}, "x-loop"),
    "null_return_path": ({"Return-Path": "<>"}, "Return-Path: <>"),
    "own_loop_header": ({"X-Careflow-Loop": "careflow"}, "own loop header"),
}


def _event(raw: bytes):  # type: ignore[no-untyped-def]
    return mail_to_event(parse_mail(raw), received_at=NOW, domain="careflow.example")


@pytest.mark.parametrize("case", sorted(AUTO_HEADERS), ids=str)
def test_automatic_mail_is_classified(case: str) -> None:
    headers, reason = AUTO_HEADERS[case]
    ev = _event(mail(subject="Out of office", headers=headers))
    assert ev.kind == "auto_reply"
    assert reason in ev.metadata["auto_reason"]


@pytest.mark.parametrize("sender", ["MAILER-DAEMON@mx.example", "postmaster@mx.example"])
def test_system_senders_are_automatic(sender: str) -> None:
    assert _event(mail(sender=sender)).kind == "auto_reply"


def test_auto_submitted_no_is_a_person() -> None:
    ev = _event(mail(headers={"Auto-Submitted": "no"}))
    assert ev.kind == "message"
    assert "auto_reason" not in ev.metadata


def test_never_auto_reply_addresses() -> None:
    for address in (
        "noreply@x.example",
        "no-reply@x.example",
        "No_Reply@x.example",
        "do-not-reply@x.example",
        "MAILER-DAEMON@x.example",
        "postmaster@x.example",
        "abuse@x.example",
        "root@x.example",
        "noreply+tag@x.example",
        "",
    ):
        assert never_auto_reply(address), address
    for address in ("ann@x.example", "noreplyfan@x.example", "replyno@x.example"):
        assert not never_auto_reply(address), address


def test_rate_limit_is_a_sliding_window() -> None:
    clock = SimulatedClock(NOW)
    limiter = AutoReplyLimiter(limit=5, window=timedelta(minutes=60), clock=clock)
    sent = 0
    for _ in range(8):
        if limiter.allow("Peer@Loop.example"):
            limiter.record("peer@loop.example")
            sent += 1
        clock.advance(timedelta(minutes=1))
    assert sent == 5
    assert limiter.allow("other@loop.example")
    clock.advance(timedelta(minutes=53))  # the first reply is now more than 60 min old
    assert limiter.allow("peer@loop.example")


def test_permanent_bounce_points_at_the_original() -> None:
    original = "<cf.C1234.aaaabbbb@careflow.example>"
    ev = _event(dsn(original, status="5.1.1", recipient="gone@customer.example"))
    assert ev.kind == "bounce"
    assert ev.thread.in_reply_to == original
    assert ev.thread.case_token == "C1234"
    assert ev.metadata["bounce"] == "permanent"
    assert ev.metadata["bounce_status"] == ["5.1.1"]
    assert ev.metadata["undeliverable"] == ["gone@customer.example"]
    assert ev.customer["email"] == "gone@customer.example"


def test_temporary_bounce_is_informational() -> None:
    ev = _event(dsn("<orig@careflow.example>", status="4.2.2"))
    assert ev.kind == "bounce"
    assert ev.metadata["bounce"] == "temporary"
    assert "undeliverable" not in ev.metadata
    assert ev.thread.case_token is None


def test_bounce_storm_yields_only_bounce_events() -> None:
    kinds = {
        _event(dsn(f"<o{i}@careflow.example>", message_id=f"<d{i}@mx>")).kind for i in range(200)
    }
    assert kinds == {"bounce"}
