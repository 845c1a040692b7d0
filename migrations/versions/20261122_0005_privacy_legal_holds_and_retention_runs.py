"""privacy: legal holds and retention runs

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tripguard.core.db  # noqa: F401 - custom column types


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('privacy_legal_holds',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('subject_id', sa.String(length=64), nullable=False),
    sa.Column('case_ref', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.Column('created_by', sa.String(length=80), nullable=False),
    sa.Column('created_at', tripguard.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('released_at', tripguard.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_privacy_legal_holds'))
    )
    with op.batch_alter_table('privacy_legal_holds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_privacy_legal_holds_subject_id'), ['subject_id'], unique=False)

    op.create_table('privacy_retention_runs',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('started_at', tripguard.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', tripguard.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('dry_run', sa.Boolean(), nullable=False),
    sa.Column('actor', sa.String(length=80), nullable=False),
    sa.Column('report', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_privacy_retention_runs'))
    )


def downgrade() -> None:
    op.drop_table('privacy_retention_runs')
    with op.batch_alter_table('privacy_legal_holds', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_privacy_legal_holds_subject_id'))

    op.drop_table('privacy_legal_holds')
