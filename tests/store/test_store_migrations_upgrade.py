"""``careflow db upgrade`` on a database that already holds cases: the four-eyes revision
adds its columns and keeps every existing task as it was; the audit-records revision turns
each per-entry audit row into a record of its own whose hash still verifies, and shows the
entries through the ``audit_log`` view as before; the case-states revision moves every
case's state into ``case_states`` unchanged, and its downgrade moves them back (SQLite
file and PostgreSQL)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from store_helpers import pg_reachable, sqlite_url, throwaway_pg_database

from engine.store import audit, migrate
from engine.store.db import make_engine

INITIAL = "6c83843f96a8"
BEFORE_CASE_STATES = "d41a7c3e9b20"
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
STATE = {"case_id": "C1", "seq": 3, "data": {"amount": 12.5, "ü": [1, None]}}
STATE_TEXT = json.dumps(STATE)


def _old_database_with_a_task(url: str) -> None:
    from alembic import command

    command.upgrade(migrate.alembic_config(url), INITIAL)
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO sop_versions (hash, sop_id, version, source, created_at) "
                "VALUES ('h', 'refund', '1.0.0', 'kind: sop', :now)"), {"now": NOW})
            conn.execute(sa.text(
                "INSERT INTO cases (id, sop_id, sop_hash, sop_version, status, priority, tier, "
                "seq, version, runnable, audit_seq, audit_hash, created_at, updated_at, state) "
                "VALUES ('C1', 'refund', 'h', '1.0.0', 'open', 'normal', 'standard', 0, 1, "
                "false, 0, '', :now, :now, :state), ('C2', 'refund', 'h', '1.0.0', 'open', "
                "'normal', 'standard', 0, 1, true, 0, '', :now, :now, NULL)"),
                {"now": NOW, "state": STATE_TEXT})
            conn.execute(sa.text(
                "INSERT INTO human_tasks (id, case_id, node, level, title, skills, status, "
                "outcomes, version, created_at, completed_by, outcome) VALUES ('K1', 'C1', "
                "'pay', 'L2', 'Pay', '[]', 'completed', '[\"paid\"]', 2, :now, 'ann', 'paid')"),
                {"now": NOW})
            prev = ""
            for seq, kind, detail in ((1, "case_started", {"sop": "refund"}),
                                      (2, "task_created", {"task": "K1", "ü": [1.5, None]})):
                entry = audit.entry_fields("C1", seq, NOW, "system", kind, "pay", "h", detail)
                digest = audit.chain_hash(prev, entry)  # the per-entry chain of that time
                conn.execute(sa.text(
                    "INSERT INTO audit_log (case_id, seq, event_seq, at, actor, kind, node, "
                    "sop_version, sop_hash, detail, prev_hash, hash) VALUES ('C1', :seq, 1, "
                    ":now, 'system', :kind, 'pay', '1.0.0', 'h', :detail, :prev, :hash)"),
                    {"seq": seq, "now": NOW, "kind": kind, "detail": audit.canonical_json(detail),
                     "prev": prev, "hash": digest})
                prev = digest
            conn.execute(sa.text("UPDATE cases SET audit_seq = 2, audit_hash = :h WHERE id = 'C1'"),
                         {"h": prev})
    finally:
        engine.dispose()


def _upgraded(url: str) -> None:
    _old_database_with_a_task(url)
    migrate.upgrade(url)
    assert migrate.compare(url) == []
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            row = conn.execute(sa.text(
                "SELECT status, completed_by, outcome, version, proposed_outcome, proposed_by, "
                "proposed_at, confirmed_by, rejection FROM human_tasks WHERE id = 'K1'")).one()
        from sqlalchemy.orm import Session

        from engine.store.models import AuditRow, CaseRow
        with Session(engine) as session:
            trail = [(a.seq, a.kind, a.node, a.detail, a.at) for a in session.scalars(
                sa.select(AuditRow).order_by(AuditRow.seq))]
            problems = list(audit.check_trails(session))
            states = dict(session.execute(sa.select(CaseRow.id, CaseRow.state)).all())
        with engine.connect() as conn:
            moved = conn.execute(sa.text("SELECT count(*) FROM case_states")).scalar()
    finally:
        engine.dispose()
    assert states == {"C1": STATE, "C2": None} and moved == 1  # no row for a state-less case
    assert tuple(row) == ("completed", "ann", "paid", 2, None, None, None, None, None)
    assert trail == [(1, "case_started", "pay", {"sop": "refund"}, NOW),
                     (2, "task_created", "pay", {"task": "K1", "ü": [1.5, None]}, NOW)]
    assert problems == []


def _downgraded_from_case_states(url: str) -> None:
    """The case-states revision undone: the states are back in ``cases.state``."""
    from alembic import command

    _upgraded(url)
    command.downgrade(migrate.alembic_config(url), BEFORE_CASE_STATES)
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            states = dict(conn.execute(sa.text("SELECT id, state FROM cases")).all())
            tables = sa.inspect(conn).get_table_names()
    finally:
        engine.dispose()
    parse = {k: json.loads(v) if isinstance(v, str) else v for k, v in states.items()}
    assert parse == {"C1": STATE, "C2": None} and "case_states" not in tables


@pytest.fixture(params=["sqlite", "postgres"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: a SQLite file, then a throwaway PostgreSQL database."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path, "old.db")
        return
    reason = pg_reachable()
    if reason:
        pytest.skip(reason)
    with throwaway_pg_database("careflow_mig_old") as url:
        yield url


def test_upgrade_keeps_existing_tasks(empty_url: str) -> None:
    _upgraded(empty_url)


def test_the_case_states_downgrade_puts_every_state_back(empty_url: str) -> None:
    _downgraded_from_case_states(empty_url)


def test_an_old_database_is_refused_with_the_command_that_upgrades_it(tmp_path: Path) -> None:
    from engine.cli.case_cmds import ensure_schema
    from engine.errors import StoreError

    url = sqlite_url(tmp_path, "old.db")
    _old_database_with_a_task(url)
    engine = make_engine(url)
    try:
        with pytest.raises(StoreError, match=f"at schema revision {INITIAL}.*careflow db upgrade"):
            ensure_schema(engine)
        migrate.upgrade(url)
        ensure_schema(engine)  # current now: nothing to say
        assert migrate.head_revision() != INITIAL
    finally:
        engine.dispose()
