"""E-mail end to end: Dovecot -> connector -> intake -> case; outbox -> connector -> SMTP; the
customer's answer, an out-of-office, a bounce and a redelivery, on a real SQLite case database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email import policy as email_policy
from pathlib import Path
from typing import Any

import pytest
from email_corpus import dsn, mail
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from connectors.email import EmailConnector
from connectors.email.devservers import LocalDovecot, LocalSmtp
from connectors.email.intake_bridge import poll_into_intake
from engine.clock import SimulatedClock
from engine.store.models import CaseRow, DeadLetterRow, InboxRow, OutboxRow

LIBRARY_DIR = Path(__file__).resolve().parent / "library"
T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Engine]:
    from engine.store.all_models import load_all
    from engine.store.db import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'careflow.db'}")
    load_all().metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def library() -> Any:
    from engine.sop.library import load_library

    return load_library(LIBRARY_DIR)


@pytest.fixture
def outbox_email(
    smtp: LocalSmtp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """The outbox dispatcher finds the e-mail connector through the registry, configured by file."""
    from connectors.registry import default_registry, load_connectors

    config = tmp_path / "email.json"
    config.write_text(json.dumps(smtp.config(from_address="care@careflow.example")))
    monkeypatch.setenv("CAREFLOW_EMAIL_CONFIG", str(config))
    load_connectors()
    default_registry.register("email", EmailConnector, replace=True)  # drop a cached instance
    yield
    default_registry.register("email", EmailConnector, replace=True)


def _count(session: Session, model: Any, *where: Any) -> int:
    return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def _send_reply(db: Engine, case_id: str, to: str, clock: SimulatedClock) -> None:
    from engine.runtime.outbox import send_rows

    with Session(db, expire_on_commit=False) as session, session.begin():
        row = OutboxRow(
            id="out-1",
            case_id=case_id,
            idempotency_key=f"{case_id}:answer:1",
            channel="email",
            status="pending",
            attempts=0,
            created_at=clock.now(),
            next_attempt_at=clock.now(),
            payload={
                "to": to,
                "subject": "Re: My printer is broken",
                "body": "Hello Ann,\nplease restart the printer.",
                "automatic": False,
            },
        )
        session.add(row)
    results = send_rows([row])
    assert results["out-1"].status == "sent", results["out-1"]


@pytest.mark.usefixtures("outbox_email")
def test_mail_case_reply_answer_ooo_bounce_redelivery(
    dovecot: LocalDovecot, mailbox: str, smtp: LocalSmtp, db: Engine, library: Any, tmp_path: Path
) -> None:
    from engine.store.db import sessions

    clock = SimulatedClock(T0)
    conn = EmailConnector(
        dovecot.config(
            mailboxes=[mailbox],
            state_dir=str(tmp_path / "state"),
            from_address="care@careflow.example",
        ),
        clock=clock,
    )
    factory = sessions(db)

    def poll() -> dict[str, int]:
        return poll_into_intake(conn, factory, library=library, clock=clock).counts

    # 1. a customer's mail becomes a case
    first = mail(message_id="<ann-1@customer.example>")
    dovecot.append(first, mailbox=mailbox)
    assert poll() == {"started": 1}
    with factory() as session:
        case = session.scalars(select(CaseRow)).one()
        assert (case.channel, case.sop_id) == ("email", "mail_support")

    # 2. the reply goes out through the outbox and SMTP
    clock.advance(timedelta(minutes=30))
    _send_reply(db, case.id, "ann@customer.example", clock)
    (sent,) = smtp.messages
    ours = message_from_bytes(sent.data, policy=email_policy.default)
    assert ours["Message-ID"].startswith(f"<cf.{case.id}.")
    assert f"[Case#{case.id}]" in ours["Subject"]

    # 3. the customer's answer threads to the same case (own token in In-Reply-To)
    clock.advance(timedelta(hours=2))
    quoted = "\n".join(f"> {line}" for line in ours.get_content().splitlines())
    answer = mail(
        subject=f"Re: {ours['Subject']}",
        body=f"Did not help.\n\n{quoted}",
        message_id="<ann-2@customer.example>",
        headers={"In-Reply-To": ours["Message-ID"], "References": ours["Message-ID"]},
    )
    dovecot.append(answer, mailbox=mailbox)
    report = poll_into_intake(conn, factory, library=library, clock=clock)
    assert report.counts == {"correlated": 1}
    assert report.results[0].case_id == case.id
    assert report.results[0].rule == "case_token"

    # 4. an out-of-office reply creates no case and gets no answer
    ooo = mail(
        subject="Automatic reply: out of office",
        body="I am away until Monday.",
        message_id="<ooo-1@customer.example>",
        sender="Bob <bob@other.example>",
        headers={"Auto-Submitted": "auto-replied", "X-Autoreply": "yes"},
    )
    dovecot.append(ooo, mailbox=mailbox)
    assert poll() == {"recorded": 1}

    # 5. a bounce of our reply attaches to its case
    dovecot.append(
        dsn(
            ours["Message-ID"],
            recipient="ann@customer.example",
            message_id="<dsn-1@mx.customer.example>",
        ),
        mailbox=mailbox,
    )
    report = poll_into_intake(conn, factory, library=library, clock=clock)
    assert report.counts == {"correlated": 1}
    assert report.results[0].case_id == case.id
    from engine.crm.timeline import is_deliverable

    with factory() as session:  # a permanent failure: no more automatic mail to Ann
        assert not is_deliverable(session, "ann@customer.example")
        assert is_deliverable(session, "bob@other.example")

    # 6. a redelivered message (and a full resync after a UIDVALIDITY change) creates nothing
    dovecot.append(first, mailbox=mailbox)
    assert poll() == {"duplicate": 1}
    dovecot.recreate_mailbox(mailbox)
    assert poll() == {"duplicate": 5}

    with factory() as session:
        assert _count(session, CaseRow) == 1
        assert _count(session, InboxRow) == 4
        assert _count(session, OutboxRow) == 1  # only the agent's reply: no automatic answers
        assert _count(session, DeadLetterRow) == 0
    assert len(smtp.messages) == 1


def test_hostile_mail_becomes_dead_letters(
    dovecot: LocalDovecot, mailbox: str, db: Engine, library: Any, tmp_path: Path
) -> None:
    from email_corpus import huge_to, nested_multiparts

    from engine.store.db import sessions

    clock = SimulatedClock(T0)
    conn = EmailConnector(
        dovecot.config(mailboxes=[mailbox], state_dir=str(tmp_path / "state")), clock=clock
    )
    dovecot.append(
        huge_to(), nested_multiparts(), mail(message_id="<ok@c.example>"), mailbox=mailbox
    )
    report = poll_into_intake(conn, sessions(db), library=library, clock=clock)
    assert report.counts == {"rejected": 2, "started": 1}
    with sessions(db)() as session:
        letters = session.scalars(select(DeadLetterRow).order_by(DeadLetterRow.id)).all()
        assert [d.reason.split(":")[0] for d in letters] == [
            "header_too_long",
            "too_many_multiparts",
        ]
        assert all(d.source == f"email:{mailbox}" for d in letters)
        assert Path(letters[0].payload["payload"]["quarantined"]).exists()


def test_failed_batch_is_delivered_again(
    dovecot: LocalDovecot, mailbox: str, db: Engine, library: Any, tmp_path: Path
) -> None:
    """A database failure mid-poll loses nothing: the failed batch comes again, once."""
    from sqlalchemy import event as sa_event

    from engine.store.db import sessions

    clock = SimulatedClock(T0)
    cfg = dovecot.config(mailboxes=[mailbox], state_dir=str(tmp_path / "state"))
    dovecot.append(
        *(mail(message_id=f"<f{i}@c.example>", sender=f"c{i}@c.example") for i in range(5)),
        mailbox=mailbox,
    )
    factory = sessions(db)
    commits = {"n": 0}

    def failing() -> Session:
        session = factory()

        @sa_event.listens_for(session, "before_commit")
        def _boom(inner: Session) -> None:
            if inner.in_nested_transaction():  # a savepoint inside intake, not the batch
                return
            commits["n"] += 1
            if commits["n"] == 2:
                raise RuntimeError("disk full")

        return session

    with pytest.raises(RuntimeError, match="disk full"):
        poll_into_intake(
            EmailConnector(cfg, clock=clock), failing, library=library, clock=clock, batch=2
        )
    with factory() as session:
        assert _count(session, CaseRow) == 2, commits
    # a restarted worker: the first batch was committed, the rest comes again
    report = poll_into_intake(
        EmailConnector(cfg, clock=clock), factory, library=library, clock=clock, batch=2
    )
    assert report.counts.get("started", 0) + report.counts.get("duplicate", 0) == 4
    with factory() as session:
        assert _count(session, CaseRow) == 5
        assert _count(session, InboxRow) == 5


def test_bounce_storm_creates_no_cases(db: Engine, library: Any) -> None:
    """R15: a storm of DSNs for unknown originals is recorded, never starts or answers a case."""
    from engine.intake.pipeline import ingest
    from engine.store.db import sessions

    clock = SimulatedClock(T0)
    conn = EmailConnector({"from_address": "care@careflow.example"}, clock=clock)
    statuses = set()
    with sessions(db)() as session, session.begin():
        for i in range(20):
            event = conn.event_from_bytes(
                dsn(
                    f"<cf.CUNKNOWN{i}.abcd1234@careflow.example>",
                    message_id=f"<storm-{i}@mx.example>",
                )
            )
            statuses.add(ingest(session, event, library=library, clock=clock).status.value)
    assert statuses == {"recorded"}
    with sessions(db)() as session:
        assert _count(session, CaseRow) == 0
        assert _count(session, OutboxRow) == 0
        assert _count(session, InboxRow) == 20
