"""an order's courier given over the dispatch gate

Assignment now asks the dispatch gate: a courier it refuses is a 409, unless the operator overrides
with a reason (audited, reported to supervision). `courier_override_at` marks that the order's current
courier was given it that way: that courier then opens this order's data though the gate refuses them
elsewhere. A later assignment the gate allows clears it.

Revision ID: 0037
Revises: 0036
Create Date: 2026-12-08 09:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tripguard.core.db

revision = '0037'
down_revision = '0036'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('delivery_orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('courier_override_at', tripguard.core.db.UTCDateTime(timezone=True),
                                      nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('delivery_orders', schema=None) as batch_op:
        batch_op.drop_column('courier_override_at')
