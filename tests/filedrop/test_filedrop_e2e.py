"""Letters end to end: drop folder -> connector -> intake -> case; duplicates and refusals."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from scan_builders import drop, text_pdf, zip_bytes
from sqlalchemy import Engine, select

from connectors.email.intake_bridge import poll_into_intake
from connectors.filedrop import FileDropConnector
from engine.clock import SimulatedClock
from engine.store.models import CaseEventRow, CaseRow, DeadLetterRow

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Engine]:
    from engine.store.all_models import load_all
    from engine.store.db import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'careflow.db'}")
    load_all().metadata.create_all(engine)
    yield engine
    engine.dispose()


def test_letter_becomes_a_case_once(tmp_path: Path, db: Engine) -> None:
    from engine.sop.library import load_library
    from engine.store.db import sessions

    library = load_library(Path(__file__).parent / "library")
    root = tmp_path / "drop"
    root.mkdir()
    clock = SimulatedClock(T0)
    conn = FileDropConnector({"root": str(root)}, clock=clock)
    factory = sessions(db)
    letter = text_pdf(["Dear careflow team,", "please cancel contract 99."])
    drop(root, "scan-1.pdf", letter)
    (root / "scan-1.pdf.json").write_text(json.dumps({"sender": {"name": "Jan de Vries"}}))
    drop(root, "scan-2.pdf", letter)  # the mail room scanned it twice
    drop(root, "evil.zip", zip_bytes({"../../x.pdf": letter}))

    report = poll_into_intake(conn, factory, library=library, clock=clock)
    assert report.counts == {"started": 1, "duplicate": 1, "rejected": 1}
    with factory() as session:
        case = session.scalars(select(CaseRow)).one()
        assert (case.channel, case.sop_id) == ("letter", "paper_mail")
        started = session.scalars(select(CaseEventRow).where(CaseEventRow.case_id == case.id)).one()
        assert "cancel contract 99" in started.event["data"]["request_text"]
        assert started.event["data"]["customer_name"] == "Jan de Vries"
        (letter_row,) = session.scalars(select(DeadLetterRow)).all()
        assert letter_row.reason.startswith("zip_unsafe_member")
    assert poll_into_intake(conn, factory, library=library, clock=clock).counts == {}
    assert sorted(p.name for p in root.iterdir()) == [".careflow"]
