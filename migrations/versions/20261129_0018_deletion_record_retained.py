"""deletion records say what is kept by law after an erasure

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-29
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tripguard.core.db  # noqa: F401 - custom column types

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('privacy_deletion_records', schema=None) as batch_op:
        batch_op.add_column(sa.Column('retained', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('privacy_deletion_records', schema=None) as batch_op:
        batch_op.drop_column('retained')
