"""privacy: subject requests

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tripguard.core.db  # noqa: F401 - custom column types


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('privacy_requests',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('idempotency_key', sa.String(length=160), nullable=False),
    sa.Column('subject_id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('correction', sa.LargeBinary(), nullable=True),
    sa.Column('code_hash', sa.String(length=64), nullable=True),
    sa.Column('code_expires_at', tripguard.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('code_attempts', sa.Integer(), nullable=False),
    sa.Column('received_at', tripguard.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('due_at', tripguard.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('hard_due_at', tripguard.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('verified_at', tripguard.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('completed_at', tripguard.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('outcome_note', sa.String(length=500), nullable=True),
    sa.Column('handled_by', sa.String(length=80), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_privacy_requests')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_privacy_requests_idempotency_key'))
    )
    with op.batch_alter_table('privacy_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_privacy_requests_due_at'), ['due_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_privacy_requests_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_privacy_requests_subject_id'), ['subject_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('privacy_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_privacy_requests_subject_id'))
        batch_op.drop_index(batch_op.f('ix_privacy_requests_status'))
        batch_op.drop_index(batch_op.f('ix_privacy_requests_due_at'))

    op.drop_table('privacy_requests')
