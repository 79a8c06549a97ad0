"""case states in a table of their own: case_states(case_id, state)

Revision ID: e5b8c1f0a7d2
Revises: d41a7c3e9b20
Create Date: 2026-12-07 23:50:00.000000

The claim, a new input's wake-up and the lease bookkeeping rewrite a ``cases`` row several
times per step; SQLite rewrites a whole row for any change, so the state (the row's largest
value) was written again each time. Every non-null ``cases.state`` moves to a row of
``case_states`` as it was, then the column is dropped (SQLite 3.35's ALTER TABLE DROP
COLUMN: the table is not rebuilt, so the foreign keys that point at it stay as they are).

Downgrade puts the states back into the column and drops the table.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'e5b8c1f0a7d2'
down_revision: str | None = 'd41a7c3e9b20'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('case_states',
    sa.Column('case_id', sa.String(length=200), nullable=False),
    sa.Column('state', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'],
                            name=op.f('fk_case_states_case_id_cases')),
    sa.PrimaryKeyConstraint('case_id', name=op.f('pk_case_states'))
    )
    op.execute("INSERT INTO case_states (case_id, state) "
               "SELECT id, state FROM cases WHERE state IS NOT NULL")
    op.execute("ALTER TABLE cases DROP COLUMN state")


def downgrade() -> None:
    op.execute("ALTER TABLE cases ADD COLUMN state JSON")
    op.execute("UPDATE cases SET state = (SELECT s.state FROM case_states s "
               "WHERE s.case_id = cases.id)")
    op.drop_table('case_states')
