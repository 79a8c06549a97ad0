"""E-mail ingest throughput and hostile-input timings; prints its figures.

1. N messages appended to a private Dovecot on 127.0.0.1, then one poll: IMAP fetch +
   capped parse + classification -> ChannelEvents (messages/s);
2. the same through ``engine.intake`` into a SQLite case database (one transaction per
   message, as the poll loop does), if the engine is importable;
3. time to refuse each input of the hostile corpus (R13), parse only;
4. compose + SMTP send to a local aiosmtpd (messages/s).

Usage: .venv/bin/python benchmarks/bench_email.py [N]
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "email"))

from email_corpus import HOSTILE, mail  # noqa: E402

from connectors.base import OutboundMessage  # noqa: E402
from connectors.email import EmailConnector, MailRejected, parse_mail  # noqa: E402
from connectors.email.devservers import LocalDovecot, LocalSmtp  # noqa: E402
from engine.clock import SimulatedClock  # noqa: E402


def _messages(n: int, prefix: str) -> list[bytes]:
    return [
        mail(
            message_id=f"<{prefix}-{i}@bench.example>",
            subject=f"Request {i}",
            sender=f"Customer {i % 300} <c{i % 300}@bench.example>",
            body=f"Hello, this is request {i}.\n" + "Some text line.\n" * 20,
        )
        for i in range(n)
    ]


def bench_poll(server: LocalDovecot, n: int) -> None:
    server.append(*_messages(n, "poll"), mailbox="Poll")
    with tempfile.TemporaryDirectory() as tmp:
        conn = EmailConnector(
            server.config(mailboxes=["Poll"], state_dir=tmp),
            clock=SimulatedClock(datetime(2026, 3, 2, tzinfo=UTC)),
        )
        start = time.perf_counter()
        events = list(conn.receive())
        took = time.perf_counter() - start
    print(
        f"poll+parse -> events : {len(events):6d} messages in {took:6.2f} s = "
        f"{len(events) / took:8.0f} msg/s"
    )


def bench_intake(server: LocalDovecot, n: int) -> None:
    try:
        from connectors.email.intake_bridge import poll_into_intake
        from engine.sop.library import load_library
        from engine.store.all_models import load_all
        from engine.store.db import make_engine, sessions
    except ImportError as exc:  # pragma: no cover - engine not there
        print(f"intake               : skipped ({exc})")
        return
    server.append(*_messages(n, "intake"), mailbox="Intake")
    library = load_library(Path(__file__).resolve().parents[1] / "tests" / "email" / "library")
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{tmp}/careflow.db")
        load_all().metadata.create_all(engine)
        clock = SimulatedClock(datetime(2026, 3, 2, tzinfo=UTC))
        conn = EmailConnector(server.config(mailboxes=["Intake"], state_dir=tmp), clock=clock)
        start = time.perf_counter()
        report = poll_into_intake(conn, sessions(engine), library=library, clock=clock)
        took = time.perf_counter() - start
        again = time.perf_counter()
        conn.cursors.set("Intake", type(conn.cursors.get("Intake"))(1, 0))  # force a full resync
        dup = poll_into_intake(conn, sessions(engine), library=library, clock=clock)
        took_dup = time.perf_counter() - again
        engine.dispose()
    print(
        f"poll -> intake (SQLite): {report.total:6d} messages in {took:6.2f} s = "
        f"{report.total / took:8.0f} msg/s  {report.counts}"
    )
    print(
        f"full resync, all dups : {dup.total:6d} messages in {took_dup:6.2f} s = "
        f"{dup.total / took_dup:8.0f} msg/s  {dup.counts}"
    )


def bench_hostile() -> None:
    for name in sorted(HOSTILE):
        raw = HOSTILE[name]()
        start = time.perf_counter()
        try:
            parse_mail(raw)
            outcome = "parsed"
        except MailRejected as exc:
            outcome = exc.reason
        took = time.perf_counter() - start
        print(
            f"hostile {name:30s}: {len(raw):>10,} bytes -> {outcome:24s} in {took * 1000:7.1f} ms"
        )


def bench_hostile_imap(server: LocalDovecot) -> None:
    """The hostile corpus through IMAP: each refused (dead letter) while polling goes on."""
    server.append(
        *(HOSTILE[name]() for name in sorted(HOSTILE)), mail(message_id="<ok@x>"), mailbox="Hostile"
    )
    with tempfile.TemporaryDirectory() as tmp:
        conn = EmailConnector(server.config(mailboxes=["Hostile"], state_dir=tmp))
        start = time.perf_counter()
        events = list(conn.receive())
        took = time.perf_counter() - start
    reasons = ", ".join(sorted(r.reason for r in conn.rejected))
    print(
        f"hostile via IMAP      : {len(HOSTILE)} refused + {len(events)} good in {took:6.2f} s "
        f"({reasons})"
    )


def bench_send(n: int) -> None:
    with LocalSmtp() as smtp:
        conn = EmailConnector(smtp.config(from_address="care@bench.example"))
        start = time.perf_counter()
        for i in range(n):
            conn.send(
                OutboundMessage(
                    message_id=f"o{i}",
                    case_id=f"C{i}",
                    channel="email",
                    to=f"c{i}@bench.example",
                    subject="Your request",
                    body="Hello\n" * 20,
                    idempotency_key=f"k{i}",
                    automatic=False,
                )
            )
        took = time.perf_counter() - start
        received = len(smtp.messages)
    print(
        f"compose+SMTP send     : {received:6d} messages in {took:6.2f} s = "
        f"{received / took:8.0f} msg/s"
    )


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2_000
    print(f"careflow e-mail benchmark, N={n}, Python {sys.version.split()[0]}")
    bench_hostile()
    with LocalDovecot() as server:
        bench_hostile_imap(server)
        bench_poll(server, n)
        bench_intake(server, n // 2)
    bench_send(min(n, 500))


if __name__ == "__main__":
    main()
