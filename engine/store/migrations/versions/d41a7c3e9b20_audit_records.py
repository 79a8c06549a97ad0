"""audit trail stored as one record per step; audit_log becomes a view of its entries

Revision ID: d41a7c3e9b20
Revises: b7e4f1c2a9d3
Create Date: 2026-12-07 21:00:00.000000

Every entry of the per-entry table becomes a record of its own (``form`` 0) with its hash
and previous hash as they were, so every existing trail still verifies
(engine.store.audit.verify_chain checks a form-0 record the way the entry was hashed).
New steps write one record with all their entries (``form`` 1). ``audit_log`` is then a
view that shows the records entry by entry, with the columns the table had except the
hashes, which belong to records now.

Downgrade turns records back into per-entry rows only while every record is of form 0
(a record of several entries has no per-entry hashes to go back to).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import engine.store.models
from engine.store.models import AUDIT_LOG_VIEW

revision: str = 'd41a7c3e9b20'
down_revision: str | None = 'b7e4f1c2a9d3'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ENTRY = {
    "sqlite": "json_array(json_object('actor', actor, 'kind', kind, 'node', node, "
              "'detail', json(detail)))",
    "postgresql": "json_build_array(json_build_object('actor', actor, 'kind', kind, "
                  "'node', node, 'detail', detail))",
}


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.create_table('audit_records',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('case_id', sa.String(length=200), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('first_seq', sa.Integer(), nullable=False),
    sa.Column('event_seq', sa.Integer(), nullable=True),
    sa.Column('at', engine.store.models.UtcDateTime(timezone=True), nullable=False),
    sa.Column('sop_version', sa.String(length=40), nullable=False),
    sa.Column('sop_hash', sa.String(length=80), nullable=False),
    sa.Column('entries', sa.JSON(), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.Column('form', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'],
                            name=op.f('fk_audit_records_case_id_cases')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_records')),
    sa.UniqueConstraint('case_id', 'seq', name=op.f('uq_audit_records_case_id_seq'))
    )
    op.execute(
        "INSERT INTO audit_records (case_id, seq, first_seq, event_seq, at, sop_version, "
        "sop_hash, entries, prev_hash, hash, form) "
        f"SELECT case_id, seq, seq, event_seq, at, sop_version, sop_hash, {_ENTRY[dialect]}, "
        "prev_hash, hash, 0 FROM audit_log ORDER BY id")
    op.drop_table('audit_log')
    op.execute(AUDIT_LOG_VIEW[dialect])


def downgrade() -> None:
    bind = op.get_bind()
    if bind.execute(sa.text("SELECT 1 FROM audit_records WHERE form <> 0 LIMIT 1")).first():
        raise RuntimeError("audit records of several entries cannot be split back into "
                           "per-entry rows with hashes of their own; downgrade refused")
    op.execute("DROP VIEW audit_log")
    op.create_table('audit_log',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('case_id', sa.String(length=200), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('event_seq', sa.Integer(), nullable=True),
    sa.Column('at', engine.store.models.UtcDateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=120), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('node', sa.String(length=120), nullable=True),
    sa.Column('sop_version', sa.String(length=40), nullable=False),
    sa.Column('sop_hash', sa.String(length=80), nullable=False),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_audit_log_case_id_cases')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log')),
    sa.UniqueConstraint('case_id', 'seq', name=op.f('uq_audit_log_case_id_seq'))
    )
    entry = ("json_extract(entries, '$[0].{}')" if bind.dialect.name == "sqlite"
             else "(entries -> 0 ->> '{}')")
    detail = ("json_extract(entries, '$[0].detail')" if bind.dialect.name == "sqlite"
              else "(entries -> 0 -> 'detail')")
    op.execute(
        "INSERT INTO audit_log (case_id, seq, event_seq, at, actor, kind, node, sop_version, "
        "sop_hash, detail, prev_hash, hash) "
        f"SELECT case_id, seq, event_seq, at, {entry.format('actor')}, {entry.format('kind')}, "
        f"{entry.format('node')}, sop_version, sop_hash, {detail}, prev_hash, hash "
        "FROM audit_records ORDER BY id")
    op.drop_table('audit_records')
