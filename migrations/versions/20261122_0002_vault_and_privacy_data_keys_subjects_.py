"""vault and privacy: data keys, subjects, notices, deletion records

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tripguard.core.db  # noqa: F401 - custom column types


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('privacy_deletion_records',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('subject_id', sa.String(length=64), nullable=False),
    sa.Column('categories', sa.JSON(), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('request_id', sa.String(length=40), nullable=True),
    sa.Column('actor', sa.String(length=80), nullable=False),
    sa.Column('erased_at', tripguard.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_privacy_deletion_records'))
    )
    with op.batch_alter_table('privacy_deletion_records', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_privacy_deletion_records_subject_id'), ['subject_id'], unique=False)

    op.create_table('privacy_notices',
    sa.Column('version', sa.String(length=32), nullable=False),
    sa.Column('purposes', sa.JSON(), nullable=False),
    sa.Column('categories', sa.JSON(), nullable=False),
    sa.Column('retention_zh', sa.Text(), nullable=False),
    sa.Column('retention_en', sa.Text(), nullable=False),
    sa.Column('text_zh', sa.Text(), nullable=False),
    sa.Column('text_en', sa.Text(), nullable=False),
    sa.Column('published_at', tripguard.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('version', name=op.f('pk_privacy_notices'))
    )
    op.create_table('privacy_subjects',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('name', sa.LargeBinary(), nullable=True),
    sa.Column('phone', sa.LargeBinary(), nullable=True),
    sa.Column('phone_index', sa.String(length=64), nullable=True),
    sa.Column('email', sa.LargeBinary(), nullable=True),
    sa.Column('notice_version', sa.String(length=32), nullable=False),
    sa.Column('created_at', tripguard.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', tripguard.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('erased_at', tripguard.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_privacy_subjects'))
    )
    with op.batch_alter_table('privacy_subjects', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_privacy_subjects_phone_index'), ['phone_index'], unique=False)

    op.create_table('vault_data_keys',
    sa.Column('subject_id', sa.String(length=64), nullable=False),
    sa.Column('suite', sa.String(length=16), nullable=False),
    sa.Column('kek_version', sa.Integer(), nullable=False),
    sa.Column('wrapped_key', sa.LargeBinary(), nullable=True),
    sa.Column('created_at', tripguard.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('rewrapped_at', tripguard.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('shredded_at', tripguard.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('subject_id', name=op.f('pk_vault_data_keys'))
    )
    with op.batch_alter_table('vault_data_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_vault_data_keys_kek_version'), ['kek_version'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('vault_data_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_vault_data_keys_kek_version'))

    op.drop_table('vault_data_keys')
    with op.batch_alter_table('privacy_subjects', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_privacy_subjects_phone_index'))

    op.drop_table('privacy_subjects')
    op.drop_table('privacy_notices')
    with op.batch_alter_table('privacy_deletion_records', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_privacy_deletion_records_subject_id'))

    op.drop_table('privacy_deletion_records')
