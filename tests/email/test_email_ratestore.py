"""The automatic-reply budget shared through the outbox: several workers, one limit (R15)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from connectors.email.loops import AutoReplyLimiter
from connectors.email.ratestore import OutboxRateStore
from engine.clock import SimulatedClock
from engine.store.models import OutboxRow

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Engine]:
    from engine.store.all_models import load_all
    from engine.store.db import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'careflow.db'}")
    load_all().metadata.create_all(engine)
    yield engine
    engine.dispose()


def _sent(db: Engine, i: int, to: str, at: datetime, *, automatic: bool = True) -> None:
    with Session(db) as session, session.begin():
        session.add(
            OutboxRow(
                id=f"o{i}",
                case_id=None,
                idempotency_key=f"k{i}",
                channel="email",
                payload={"to": to, "subject": "ack", "body": "x", "automatic": automatic},
                status="sent",
                attempts=1,
                next_attempt_at=at,
                created_at=at,
                sent_at=at,
            )
        )


def test_workers_share_one_budget(db: Engine) -> None:
    from engine.store.db import sessions

    clock = SimulatedClock(T0)
    for i in range(4):  # sent by other workers within the hour
        _sent(db, i, "Peer <PEER@loop.example>", T0 - timedelta(minutes=10 + i))
    _sent(db, 10, "peer@loop.example", T0 - timedelta(minutes=61))  # outside the window
    _sent(db, 11, "peer@loop.example", T0 - timedelta(minutes=5), automatic=False)  # a person
    _sent(db, 12, "other@loop.example", T0 - timedelta(minutes=5))
    limiter = AutoReplyLimiter(OutboxRateStore(sessions(db)), limit=5, clock=clock)
    assert limiter.allow("peer@loop.example")
    limiter.record("peer@loop.example")  # this worker sends the fifth
    assert not limiter.allow("peer@loop.example")
    assert limiter.allow("other@loop.example")
    clock.advance(timedelta(minutes=60))
    assert limiter.allow("peer@loop.example")


def test_connector_uses_the_outbox_budget(
    db: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from connectors.base import OutboundMessage
    from connectors.email import EmailConnector

    monkeypatch.setenv("CAREFLOW_DATABASE_URL", f"sqlite:///{tmp_path / 'careflow.db'}")
    for i in range(5):
        _sent(db, i, "peer@loop.example", T0 - timedelta(minutes=1 + i))
    conn = EmailConnector(
        {"auto_reply_store": "outbox", "smtp_host": "127.0.0.1"}, clock=SimulatedClock(T0)
    )
    msg = OutboundMessage(
        message_id="m",
        case_id=None,
        channel="email",
        to="peer@loop.example",
        subject="ack",
        body="x",
        idempotency_key="k",
        automatic=True,
    )
    delivery = conn.send(msg)  # refused before any SMTP connection is tried
    assert delivery.status == "failed"
    assert "rate limit" in delivery.detail
