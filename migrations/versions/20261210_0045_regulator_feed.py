"""regulator feed

The regulator's feed (issue #31): a durable queue of uploads for the national ride-hailing platform
(one row per upload, numbered per type, its body sealed), each type's producer row (next sequence,
watermark) and sender row (last sent and acknowledged), and the planned outages announced 72 h ahead.

Revision ID: 0045
Revises: 0044
Create Date: 2026-12-10
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tripguard.core.db

revision = '0045'
down_revision = '0044'
branch_labels = None
depends_on = None

UNACKNOWLEDGED = sa.text("state <> 'acknowledged'")


def upgrade() -> None:
    op.create_table('regulator_uploads',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('sequence', sa.BigInteger(), nullable=False),
    sa.Column('occurred_at', tripguard.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('queued_at', tripguard.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('origin', sa.String(length=16), nullable=False),
    sa.Column('body', sa.LargeBinary(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', tripguard.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('sent_at', tripguard.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('acknowledged_at', tripguard.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_regulator_uploads')),
    sa.UniqueConstraint('kind', 'key', name=op.f('uq_regulator_uploads_kind_key')),
    sa.UniqueConstraint('kind', 'sequence', name=op.f('uq_regulator_uploads_kind_sequence'))
    )
    op.create_index('ix_regulator_uploads_due', 'regulator_uploads', ['kind', 'sequence'], unique=False,
                    postgresql_where=UNACKNOWLEDGED, sqlite_where=UNACKNOWLEDGED)
    op.create_index(op.f('ix_regulator_uploads_occurred_at'), 'regulator_uploads', ['occurred_at'], unique=False)
    op.create_table('regulator_feeds',
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('next_sequence', sa.BigInteger(), nullable=False),
    sa.Column('watermark', tripguard.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('updated_at', tripguard.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('kind', name=op.f('pk_regulator_feeds'))
    )
    op.create_table('regulator_lanes',
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('last_sent_at', tripguard.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_acknowledged_at', tripguard.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('last_error_at', tripguard.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('kind', name=op.f('pk_regulator_lanes'))
    )
    op.create_table('regulator_planned_outages',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('starts_at', tripguard.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ends_at', tripguard.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('announced_at', tripguard.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('announced_by', sa.String(length=80), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_regulator_planned_outages'))
    )
    op.create_index(op.f('ix_regulator_planned_outages_starts_at'), 'regulator_planned_outages', ['starts_at'],
                    unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_regulator_planned_outages_starts_at'), table_name='regulator_planned_outages')
    op.drop_table('regulator_planned_outages')
    op.drop_table('regulator_lanes')
    op.drop_table('regulator_feeds')
    op.drop_index(op.f('ix_regulator_uploads_occurred_at'), table_name='regulator_uploads')
    op.drop_index('ix_regulator_uploads_due', table_name='regulator_uploads')
    op.drop_table('regulator_uploads')
