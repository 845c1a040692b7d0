"""telematics inbox

The embedded monitor's durable inbox (issue #30): one row per ingest batch, its good lines as one NDJSON
blob, consumed in id order by the monitor thread and deleted once a checkpoint covers it.

Revision ID: 0047
Revises: 0046
Create Date: 2026-12-11
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tripguard.core.db

revision = '0047'
down_revision = '0046'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('telematics_inbox',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('lines', sa.Integer(), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.Column('received_at', tripguard.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_telematics_inbox')),
    sqlite_autoincrement=True
    )


def downgrade() -> None:
    op.drop_table('telematics_inbox')
