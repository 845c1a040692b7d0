"""free text people type, sealed (reasons, case notes)

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-29
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tripguard.core.db  # noqa: F401 - custom column types

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'privacy_free_texts',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('subject_id', sa.String(length=64), nullable=False),
        sa.Column('text', sa.LargeBinary(), nullable=True),
        sa.Column('created_at', tripguard.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_privacy_free_texts')),
    )
    with op.batch_alter_table('privacy_free_texts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_privacy_free_texts_subject_id'), ['subject_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('privacy_free_texts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_privacy_free_texts_subject_id'))
    op.drop_table('privacy_free_texts')
