"""notify: outbox

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tripguard.core.db  # noqa: F401 - custom column types


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('notify_outbox',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('idempotency_key', sa.String(length=128), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('template', sa.String(length=64), nullable=False),
    sa.Column('locale', sa.String(length=8), nullable=False),
    sa.Column('subject_id', sa.String(length=64), nullable=True),
    sa.Column('sealed_content', sa.LargeBinary(), nullable=True),
    sa.Column('content', sa.JSON(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', tripguard.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', tripguard.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('sent_at', tripguard.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notify_outbox')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_notify_outbox_idempotency_key'))
    )
    with op.batch_alter_table('notify_outbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notify_outbox_next_attempt_at'), ['next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_notify_outbox_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_notify_outbox_subject_id'), ['subject_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('notify_outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notify_outbox_subject_id'))
        batch_op.drop_index(batch_op.f('ix_notify_outbox_status'))
        batch_op.drop_index(batch_op.f('ix_notify_outbox_next_attempt_at'))

    op.drop_table('notify_outbox')
