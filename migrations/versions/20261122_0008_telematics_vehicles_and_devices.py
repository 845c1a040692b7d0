"""telematics: vehicles and devices

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tripguard.core.db  # noqa: F401 - custom column types


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('telematics_devices',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('vehicle_id', sa.String(length=64), nullable=True),
    sa.Column('installed_at', tripguard.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_heartbeat_at', tripguard.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('camera_ok', sa.Boolean(), nullable=True),
    sa.Column('storage_ok', sa.Boolean(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_telematics_devices'))
    )
    with op.batch_alter_table('telematics_devices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_telematics_devices_vehicle_id'), ['vehicle_id'], unique=False)

    op.create_table('telematics_vehicles',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('plate', sa.String(length=16), nullable=False),
    sa.Column('colour', sa.String(length=32), nullable=False),
    sa.Column('model', sa.String(length=64), nullable=False),
    sa.Column('created_at', tripguard.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', tripguard.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_telematics_vehicles'))
    )


def downgrade() -> None:
    op.drop_table('telematics_vehicles')
    with op.batch_alter_table('telematics_devices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_telematics_devices_vehicle_id'))

    op.drop_table('telematics_devices')
