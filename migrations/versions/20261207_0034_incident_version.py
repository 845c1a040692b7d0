"""incident version

Every change of a case raises its version (the ORM's version counter), and the live feed carries it:
a console never shows an older state of a case over a newer one.

Revision ID: 0034
Revises: 0033
Create Date: 2026-12-07 04:10:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0034'
down_revision = '0033'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('safety_incidents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('version', sa.Integer(), server_default='1', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('safety_incidents', schema=None) as batch_op:
        batch_op.drop_column('version')
