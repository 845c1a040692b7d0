"""reporting period figures: a closed quarter's frozen figures and their restatements

Revision ID: 0039
Revises: 0038
Create Date: 2026-12-08 10:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tripguard.core.db  # noqa: F401 - custom column types


revision = '0039'
down_revision = '0038'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('reporting_period_figures',
    sa.Column('period', sa.String(length=8), nullable=False),
    sa.Column('version', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('figures', sa.JSON(), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=True),
    sa.Column('made_by', sa.String(length=80), nullable=False),
    sa.Column('made_at', tripguard.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('period', 'version', name=op.f('pk_reporting_period_figures'))
    )


def downgrade() -> None:
    op.drop_table('reporting_period_figures')
