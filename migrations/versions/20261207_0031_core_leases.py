"""core leases: the scheduler's leadership as a lease with a fencing token

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-07 10:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tripguard.core.db  # noqa: F401 - custom column types


revision = '0031'
down_revision = '0030'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('core_leases',
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('holder', sa.String(length=200), nullable=False),
    sa.Column('token', sa.BigInteger(), nullable=False),
    sa.Column('taken_at', tripguard.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', tripguard.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_core_leases'))
    )


def downgrade() -> None:
    op.drop_table('core_leases')
