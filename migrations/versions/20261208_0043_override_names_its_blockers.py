"""an override names the blockers it overrode

An order given to a courier over the dispatch gate (`courier_override_at`) let the courier past the whole
gate but the agreement and a suspension, for as long as the order lasted: a drug record or a dismissal
found after the override was never asked. The order now stores the blocker codes the operator overrode
(`courier_override_blockers`); only those are let past. For orders overridden before this revision the
codes are read back from the override's audit entry (`order.assign_override`, its `blockers`, for the
order's current courier, the latest); an order whose entry is not found keeps NULL, which lifts no code
(the whole gate is asked: the conservative reading of an override whose scope is unknown).

Revision ID: 0043
Revises: 0042
Create Date: 2026-12-08 16:00:00
"""
from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = '0043'
down_revision = '0042'
branch_labels = None
depends_on = None

_orders = sa.table('delivery_orders', sa.column('id', sa.String), sa.column('courier_id', sa.String),
                   sa.column('courier_override_at', sa.DateTime),
                   sa.column('courier_override_blockers', sa.JSON))
_audit = sa.table('audit_entries', sa.column('id', sa.Integer), sa.column('action', sa.String),
                  sa.column('target_type', sa.String), sa.column('target_id', sa.String),
                  sa.column('details', sa.Text))


def upgrade() -> None:
    with op.batch_alter_table('delivery_orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('courier_override_blockers', sa.JSON(), nullable=True))
    bind = op.get_bind()
    overridden = bind.execute(sa.select(_orders.c.id, _orders.c.courier_id)
                              .where(_orders.c.courier_override_at.is_not(None))).all()
    for order_id, courier_id in overridden:
        entries = bind.execute(sa.select(_audit.c.details).where(
            _audit.c.action == 'order.assign_override', _audit.c.target_type == 'delivery_orders',
            _audit.c.target_id == order_id).order_by(_audit.c.id.desc())).scalars()
        for details in entries:
            found = json.loads(details)
            if found.get('courier') == courier_id:
                codes = [c for c in str(found.get('blockers', '')).split(',') if c]
                bind.execute(sa.update(_orders).where(_orders.c.id == order_id)
                             .values(courier_override_blockers=codes))
                break


def downgrade() -> None:
    with op.batch_alter_table('delivery_orders', schema=None) as batch_op:
        batch_op.drop_column('courier_override_blockers')
