"""incident claims and the position's key

An SOS keeps a trip or order it names that cannot be linked to the caller as their claim; the
position sent with a press names the key it is sealed under (the caller's, or the case's own for an
erased caller).

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-07 02:40:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0033'
down_revision = '0032'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('safety_incidents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claimed_trip_id', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('claimed_order_id', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('position_key', sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f('ix_safety_incidents_claimed_trip_id'), ['claimed_trip_id'], unique=False)
    # Every position stored so far was sealed under the caller's key.
    op.execute("UPDATE safety_incidents SET position_key = caller_id WHERE position IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table('safety_incidents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_safety_incidents_claimed_trip_id'))
        batch_op.drop_column('position_key')
        batch_op.drop_column('claimed_order_id')
        batch_op.drop_column('claimed_trip_id')
