"""four eyes: a task's proposed outcome, its confirmer and its last rejection

Revision ID: b7e4f1c2a9d3
Revises: 6c83843f96a8
Create Date: 2026-11-22 21:00:00.000000

Every new column is nullable: existing tasks keep their rows as they are (no proposal,
never confirmed, never rejected). The new task status ``proposed`` is a value of the
existing ``status`` column.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import engine.store.models

revision: str = 'b7e4f1c2a9d3'
down_revision: str | None = '6c83843f96a8'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('human_tasks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('proposed_outcome', sa.String(length=120), nullable=True))
        batch_op.add_column(sa.Column('proposed_fields', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('proposed_knowledge', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('proposed_by', sa.String(length=120), nullable=True))
        batch_op.add_column(sa.Column('proposed_at',
                                      engine.store.models.UtcDateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column('confirmed_by', sa.String(length=120), nullable=True))
        batch_op.add_column(sa.Column('rejection', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('human_tasks', schema=None) as batch_op:
        for name in ('rejection', 'confirmed_by', 'proposed_at', 'proposed_by',
                     'proposed_knowledge', 'proposed_fields', 'proposed_outcome'):
            batch_op.drop_column(name)
