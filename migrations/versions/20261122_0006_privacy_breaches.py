"""privacy: breaches

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tripguard.core.db  # noqa: F401 - custom column types


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('privacy_breaches',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('serious', sa.Boolean(), nullable=False),
    sa.Column('discovered_at', tripguard.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('occurred_from', tripguard.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('occurred_to', tripguard.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('categories', sa.JSON(), nullable=False),
    sa.Column('cause', sa.Text(), nullable=False),
    sa.Column('harm', sa.Text(), nullable=False),
    sa.Column('measures', sa.Text(), nullable=False),
    sa.Column('advice', sa.Text(), nullable=False),
    sa.Column('contact', sa.String(length=200), nullable=False),
    sa.Column('containment', sa.JSON(), nullable=False),
    sa.Column('authority_due_at', tripguard.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('authority_reported_at', tripguard.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('authority_reference', sa.String(length=100), nullable=True),
    sa.Column('opened_by', sa.String(length=80), nullable=False),
    sa.Column('closed_at', tripguard.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('report', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_privacy_breaches'))
    )
    with op.batch_alter_table('privacy_breaches', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_privacy_breaches_status'), ['status'], unique=False)

    op.create_table('privacy_breach_subjects',
    sa.Column('breach_id', sa.String(length=40), nullable=False),
    sa.Column('subject_id', sa.String(length=64), nullable=False),
    sa.Column('found_by', sa.String(length=16), nullable=False),
    sa.Column('notified_at', tripguard.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['breach_id'], ['privacy_breaches.id'], name=op.f('fk_privacy_breach_subjects_breach_id_privacy_breaches')),
    sa.PrimaryKeyConstraint('breach_id', 'subject_id', name=op.f('pk_privacy_breach_subjects'))
    )


def downgrade() -> None:
    op.drop_table('privacy_breach_subjects')
    with op.batch_alter_table('privacy_breaches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_privacy_breaches_status'))

    op.drop_table('privacy_breaches')
