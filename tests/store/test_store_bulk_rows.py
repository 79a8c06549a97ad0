"""Rows written through the driver (engine.store.bulk) read back exactly like rows written
through SQLAlchemy: same datetimes, JSON, booleans and NULLs, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import MappingProxyType

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from engine.store import bulk
from engine.store.models import (
    CaseEventRow, CaseRow, HumanTaskRow, OutboxRow, SopVersionRow, TimerRow,
)

T0 = datetime(2026, 3, 2, 9, 0, 0, 123456, tzinfo=UTC)


def _case(session: Session, case_id: str) -> None:
    if session.get(SopVersionRow, "h") is None:
        session.add(SopVersionRow(hash="h", sop_id="s", version="1", source="", created_at=T0))
        session.flush()
    session.add(CaseRow(id=case_id, sop_id="s", sop_hash="h", sop_version="1", status="open",
                        runnable=False, created_at=T0, updated_at=T0))
    session.flush()


def _columns(row: object, table: sa.Table) -> dict[str, object]:
    return {c.name: getattr(row, c.key) for c in table.columns if c.name not in ("id",)}


@pytest.mark.parametrize("model,values", [
    (TimerRow, {"case_id": "C1", "kind": "timeout", "due_at": T0 + timedelta(hours=4),
                "node": "n", "payload": MappingProxyType({"a": (1, 2), "ü": None}),
                "status": "pending", "created_at": T0, "lateness_s": 1.5}),
    (HumanTaskRow, {"case_id": "C1", "node": "verify", "level": "L1", "title": "Tïtle",
                    "role": None, "skills": ["a"], "status": "open", "outcomes": ["x", "y"],
                    "due_at": None, "version": 1, "created_at": T0}),
    (OutboxRow, {"case_id": "C1", "idempotency_key": "k", "channel": "email",
                 "payload": {"to": "a@b", "n": 2**40}, "status": "pending", "attempts": 0,
                 "next_attempt_at": T0, "created_at": T0, "delivery": None}),
    (CaseEventRow, {"case_id": "C1", "seq": None, "kind": "Signal", "event": {"x": [1.25]},
                    "status": "pending", "actor": "a", "recorded_at": T0.replace(tzinfo=None)}),
])
def test_a_bulk_row_reads_back_like_a_sqlalchemy_row(db, model, values) -> None:  # noqa: ANN001
    table = model.__table__
    names = tuple(values)
    with Session(db) as s, s.begin():
        _case(s, "C1")
        conn = s.connection()
        orm_values, bulk_values = dict(values), dict(values)
        if isinstance(table.c.id.type, sa.String):  # (case events number themselves)
            orm_values["id"], bulk_values["id"] = "R-orm", "R-bulk"
        if model is OutboxRow:
            bulk_values["idempotency_key"] = "k2"
        plain = {k: (dict(v) if isinstance(v, MappingProxyType) else v) for k, v in orm_values.items()}
        conn.execute(table.insert(), [plain])
        cols = tuple(bulk_values)
        bulk.Bulk(table, cols, db.dialect.name).insert(conn, [tuple(bulk_values[c] for c in cols)])
    with Session(db) as s:
        rows = list(s.scalars(sa.select(model).order_by(table.c.id)))
    assert len(rows) == 2
    got = [_columns(r, table) for r in rows]
    for g in got:
        g.pop("idempotency_key", None)
    assert got[0] == got[1], names
    if model is TimerRow:
        assert got[1]["payload"] == {"a": [1, 2], "ü": None}
        assert got[1]["due_at"] == T0 + timedelta(hours=4)


def test_dumps_takes_what_orjson_refuses() -> None:
    assert bulk.loads(bulk.dumps({1: "a", "b": 2**70})) == {"1": "a", "b": 2**70}
    assert bulk.loads(bulk.dumps(MappingProxyType({"k": frozenset({1})}))) == {"k": [1]}


def test_sqlite_time_is_sqlalchemys_storage_format() -> None:
    assert bulk.sqlite_time(T0) == "2026-03-02 09:00:00.123456"
    assert bulk.sqlite_time(datetime(2026, 3, 2, 10, tzinfo=UTC).astimezone(
        __import__("zoneinfo").ZoneInfo("Europe/Amsterdam"))) == "2026-03-02 10:00:00.000000"
    assert bulk.sqlite_time(None) is None
