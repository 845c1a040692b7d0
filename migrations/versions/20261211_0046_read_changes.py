"""read changes

The read cache's change signals between the processes of one SQLite file (issue #30, the dispatch gate's
cache): a row per changed key, written in the changing transaction; PostgreSQL notifies instead, but the
table exists on both so that the schema is one.

Revision ID: 0046
Revises: 0045
Create Date: 2026-12-11
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0046'
down_revision = '0045'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('core_read_changes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('scope', sa.String(length=20), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_core_read_changes')),
    sqlite_autoincrement=True,
    )


def downgrade() -> None:
    op.drop_table('core_read_changes')
