"""monitor checkpoints: each shard's monitor state as of an events-stream sequence (scale-out)

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-30
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tripguard.core.db  # noqa: F401 - custom column types

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'telematics_monitor_checkpoints',
        sa.Column('stream', sa.String(length=64), nullable=False),
        sa.Column('shard', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('seq', sa.BigInteger(), nullable=False),
        sa.Column('subject_id', sa.String(length=64), nullable=False),
        sa.Column('state', sa.LargeBinary(), nullable=True),
        sa.Column('trips', sa.Integer(), nullable=False),
        sa.Column('saved_at', tripguard.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('stream', 'shard', name=op.f('pk_telematics_monitor_checkpoints')),
    )


def downgrade() -> None:
    op.drop_table('telematics_monitor_checkpoints')
