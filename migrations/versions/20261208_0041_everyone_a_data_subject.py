"""everyone whose data is stored is a data subject

Until now a person was a data subject only once the operator recorded them (`PUT /subjects/{id}`): a
delivery customer, a courier, a merchant or a driver known only through screening got 404 on an access or
erasure request. From now on a domain's first write about a person registers them (`privacy.subjects`).
Here the people already stored become subjects: applicants (with their role and screening notice),
customers (with their order's notice), merchants with a phone on an order, couriers, drivers and
passengers of trips, whoever filed a complaint or pressed SOS, owners of emergency contacts, offenders,
and staff with a sealed digest address or inspection note. `kind` and `notice_version` may be unknown for
some (NULL); `source` says where a person was first seen.

Revision ID: 0041
Revises: 0040
Create Date: 2026-12-08 12:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tripguard.core.clock import utcnow
from tripguard.core.db import UTCDateTime

revision = '0041'
down_revision = '0040'
branch_labels = None
depends_on = None

APP_ROLES = "('passenger', 'customer', 'driver', 'courier')"
# (source table, id column, kind expression, notice expression, condition), in order: the first source
# that names a person gives their kind and notice.
SOURCES = (
    ('screening_applicants', 'id', 'MIN(role)', 'MIN(notice_version)', None),
    ('delivery_orders', 'customer_id', "'customer'", 'MIN(notice_version)', None),
    ('delivery_orders', 'merchant_id', "'merchant'", 'NULL', 'merchant_phone IS NOT NULL'),
    ('delivery_orders', 'courier_id', "'courier'", 'NULL', None),
    ('delivery_bindings', 'courier_id', "'courier'", 'NULL', None),
    ('telematics_trips', 'driver_id', "'driver'", 'NULL', None),
    ('telematics_trips', 'passenger_id', "'passenger'", 'NULL', None),
    ('feedback_complaints', 'subject_id', f'MIN(CASE WHEN subject_role IN {APP_ROLES} THEN subject_role END)',
     'NULL', None),
    ('safety_incidents', 'caller_id', f'MIN(CASE WHEN caller_role IN {APP_ROLES} THEN caller_role END)', 'NULL',
     None),
    ('safety_contacts', 'subject_id', 'NULL', 'NULL', None),
    ('workforce_violations', 'offender_id', "MIN(CASE WHEN offender_type = 'staff' THEN 'staff' END)", 'NULL',
     None),
    ('reporting_subscriptions', 'staff_id', "'staff'", 'NULL', 'email IS NOT NULL'),
    ('workforce_inspections', 'inspector', "'staff'", 'NULL', 'notes IS NOT NULL'),
)


def upgrade() -> None:
    with op.batch_alter_table('privacy_subjects', schema=None) as batch_op:
        batch_op.alter_column('kind', existing_type=sa.String(length=24), nullable=True)
        batch_op.alter_column('notice_version', existing_type=sa.String(length=32), nullable=True)
        batch_op.add_column(sa.Column('source', sa.String(length=40), nullable=True))
    connection = op.get_bind()
    now = sa.bindparam('now', value=utcnow(), type_=UTCDateTime)
    for table, column, kind, notice, condition in SOURCES:
        where = f'{column} IS NOT NULL AND {column} <> \'\' AND {column} NOT IN (SELECT id FROM privacy_subjects)'
        if condition:
            where += f' AND {condition}'
        connection.execute(sa.text(
            f'INSERT INTO privacy_subjects (id, kind, notice_version, source, created_at, updated_at) '
            f'SELECT {column}, {kind}, {notice}, :source, :now, :now FROM {table} WHERE {where} GROUP BY {column}'
        ).bindparams(now, source=table))


def downgrade() -> None:
    connection = op.get_bind()
    connection.execute(sa.text("DELETE FROM privacy_subjects WHERE source IS NOT NULL AND source <> 'operator' "
                               "AND name IS NULL AND phone IS NULL AND email IS NULL"))
    with op.batch_alter_table('privacy_subjects', schema=None) as batch_op:
        batch_op.drop_column('source')
        batch_op.alter_column('notice_version', existing_type=sa.String(length=32), nullable=False)
        batch_op.alter_column('kind', existing_type=sa.String(length=24), nullable=False)
