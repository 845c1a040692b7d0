"""screening consents and notice delivery

A separate consent to each sensitive kind of data a screening processes (PIPL Art. 29) is one row of
`screening_consents`. An applicant's pre-adverse notice names its outbox message (`notice_key`), so
the dispute window closes into a rejection only for a notice that was delivered, and records when a
notice did not reach the applicant (`notice_failed_at`: no clock runs, an officer acts). Applicants
noticed before this keep running as they were (no key: their notice is taken as sent).

Revision ID: 0038
Revises: 0037
Create Date: 2026-12-07 14:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tripguard.core.db  # custom column types

revision = '0038'
down_revision = '0037'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('screening_consents',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('applicant_id', sa.String(length=64), nullable=False),
    sa.Column('category', sa.String(length=40), nullable=False),
    sa.Column('notice_version', sa.String(length=32), nullable=False),
    sa.Column('given_at', tripguard.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('given_by', sa.String(length=80), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_screening_consents'))
    )
    with op.batch_alter_table('screening_consents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_screening_consents_applicant_id'), ['applicant_id'], unique=False)
    with op.batch_alter_table('screening_applicants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('notice_key', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('notice_failed_at', tripguard.core.db.UTCDateTime(timezone=True),
                                      nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('screening_applicants', schema=None) as batch_op:
        batch_op.drop_column('notice_failed_at')
        batch_op.drop_column('notice_key')
    with op.batch_alter_table('screening_consents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_screening_consents_applicant_id'))
    op.drop_table('screening_consents')
