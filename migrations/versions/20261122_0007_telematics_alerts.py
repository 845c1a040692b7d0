"""telematics: alerts

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tripguard.core.db  # noqa: F401 - custom column types


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('telematics_alerts',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('trip_id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('severity', sa.String(length=8), nullable=False),
    sa.Column('ts', tripguard.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('lon', sa.Float(), nullable=True),
    sa.Column('lat', sa.Float(), nullable=True),
    sa.Column('evidence', sa.JSON(), nullable=False),
    sa.Column('received_at', tripguard.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_telematics_alerts')),
    sa.UniqueConstraint('trip_id', 'kind', 'ts', name='uq_telematics_alerts_trip_kind_ts')
    )
    with op.batch_alter_table('telematics_alerts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_telematics_alerts_trip_id'), ['trip_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_telematics_alerts_ts'), ['ts'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('telematics_alerts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_telematics_alerts_ts'))
        batch_op.drop_index(batch_op.f('ix_telematics_alerts_trip_id'))

    op.drop_table('telematics_alerts')
