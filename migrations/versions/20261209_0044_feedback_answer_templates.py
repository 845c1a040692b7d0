"""feedback answer templates

The feedback desk's ready answers (zh and en) that an agent starts a reply from; managed by staff
holding `complaint.templates`.

Revision ID: 0044
Revises: 0043
Create Date: 2026-12-09
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tripguard.core.db  # noqa: F401 - custom column types

revision = '0044'
down_revision = '0043'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('feedback_answer_templates',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('title_zh', sa.String(length=100), nullable=False),
    sa.Column('title_en', sa.String(length=100), nullable=False),
    sa.Column('body_zh', sa.Text(), nullable=False),
    sa.Column('body_en', sa.Text(), nullable=False),
    sa.Column('created_at', tripguard.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=80), nullable=False),
    sa.Column('updated_at', tripguard.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=80), nullable=False),
    sa.Column('retired_at', tripguard.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_feedback_answer_templates')),
    sa.UniqueConstraint('title_en', name=op.f('uq_feedback_answer_templates_title_en')),
    sa.UniqueConstraint('title_zh', name=op.f('uq_feedback_answer_templates_title_zh'))
    )


def downgrade() -> None:
    op.drop_table('feedback_answer_templates')
