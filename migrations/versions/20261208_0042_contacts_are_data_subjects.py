"""an emergency contact is a data subject

A person named as someone's emergency contact had their name and phone stored (under the owner's key)
but could not ask for their data or its erasure. Each contact row now names the contact's own data
subject (`contact_subject_id`, a random id: one per phone number however many people name it) and holds
a blind index of the phone (`phone_index`) to find that subject by. Both are filled for the contacts
already stored by `safety.contact_rights.link_existing` when the server starts: the blind index and the
phone need the vault's keys, which a migration does not hold.

Revision ID: 0042
Revises: 0041
Create Date: 2026-12-08 14:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0042'
down_revision = '0041'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('safety_contacts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('phone_index', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('contact_subject_id', sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f('ix_safety_contacts_phone_index'), ['phone_index'], unique=False)
        batch_op.create_index(batch_op.f('ix_safety_contacts_contact_subject_id'), ['contact_subject_id'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('safety_contacts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_safety_contacts_contact_subject_id'))
        batch_op.drop_index(batch_op.f('ix_safety_contacts_phone_index'))
        batch_op.drop_column('contact_subject_id')
        batch_op.drop_column('phone_index')
