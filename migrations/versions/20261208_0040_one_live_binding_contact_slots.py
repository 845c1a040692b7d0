"""one live number binding per order and party; a slot for each emergency contact

Parallel assignments of one order could leave several live bindings (one number each), and after two
simultaneous reassignments a replaced courier kept a working line to the customer. Live bindings left
over from such races are ended here (a courier the order no longer has, then all but the newest), and a
partial unique index keeps one live binding per order and party from now on.

Parallel additions of emergency contacts could pass the limit of five: each contact now holds a slot
(1-5) of its person, unique per person. Existing contacts get slots in the order they were added
(someone who already had more than five keeps them, numbered on; new ones wait for a free slot).

Revision ID: 0040
Revises: 0039
Create Date: 2026-12-08 09:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0040'
down_revision = '0039'
branch_labels = None
depends_on = None

LIVE = sa.text("status = 'active' AND expires_at IS NULL")
BINDINGS = sa.table('delivery_bindings', sa.column('id', sa.String), sa.column('order_id', sa.String),
                    sa.column('party', sa.String), sa.column('courier_id', sa.String),
                    sa.column('status', sa.String), sa.column('created_at', sa.DateTime),
                    sa.column('expires_at', sa.DateTime))
ORDERS = sa.table('delivery_orders', sa.column('id', sa.String), sa.column('courier_id', sa.String))
CONTACTS = sa.table('safety_contacts', sa.column('id', sa.String), sa.column('subject_id', sa.String),
                    sa.column('created_at', sa.DateTime), sa.column('slot', sa.SmallInteger))


def _end_extra_bindings(connection: sa.Connection) -> None:
    live = connection.execute(
        sa.select(BINDINGS.c.id, BINDINGS.c.order_id, BINDINGS.c.party, BINDINGS.c.courier_id,
                  ORDERS.c.courier_id.label('holder'))
        .select_from(BINDINGS.outerjoin(ORDERS, ORDERS.c.id == BINDINGS.c.order_id))
        .where(BINDINGS.c.status == 'active', BINDINGS.c.expires_at.is_(None))
        .order_by(BINDINGS.c.order_id, BINDINGS.c.party, BINDINGS.c.created_at.desc(), BINDINGS.c.id.desc())
    ).all()
    kept: set[tuple[str, str]] = set()
    ended: list[str] = []
    for row in live:
        replaced = row.holder is not None and row.courier_id != row.holder
        if replaced or (row.order_id, row.party) in kept:
            ended.append(row.id)
        else:
            kept.add((row.order_id, row.party))
    for start in range(0, len(ended), 500):  # ended as of when they began: refused from now on
        connection.execute(BINDINGS.update().where(BINDINGS.c.id.in_(ended[start:start + 500]))
                           .values(expires_at=BINDINGS.c.created_at))


def _number_contacts(connection: sa.Connection) -> None:
    rows = connection.execute(sa.select(CONTACTS.c.id, CONTACTS.c.subject_id)
                              .order_by(CONTACTS.c.subject_id, CONTACTS.c.created_at, CONTACTS.c.id)).all()
    slot, person = 0, None
    for row in rows:
        slot = slot + 1 if row.subject_id == person else 1
        person = row.subject_id
        connection.execute(CONTACTS.update().where(CONTACTS.c.id == row.id).values(slot=slot))


def upgrade() -> None:
    connection = op.get_bind()
    _end_extra_bindings(connection)
    op.create_index('uq_delivery_bindings_live', 'delivery_bindings', ['order_id', 'party'], unique=True,
                    postgresql_where=LIVE, sqlite_where=LIVE)
    with op.batch_alter_table('safety_contacts') as batch:
        batch.add_column(sa.Column('slot', sa.SmallInteger(), nullable=True))
    _number_contacts(connection)
    with op.batch_alter_table('safety_contacts') as batch:
        batch.alter_column('slot', existing_type=sa.SmallInteger(), nullable=False)
    op.create_index('uq_safety_contacts_slot', 'safety_contacts', ['subject_id', 'slot'], unique=True)


def downgrade() -> None:
    op.drop_index('uq_safety_contacts_slot', table_name='safety_contacts')
    with op.batch_alter_table('safety_contacts') as batch:
        batch.drop_column('slot')
    op.drop_index('uq_delivery_bindings_live', table_name='delivery_bindings', postgresql_where=LIVE,
                  sqlite_where=LIVE)
