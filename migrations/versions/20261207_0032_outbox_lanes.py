"""outbox lanes: a priority and a destination on each message, and the claim's index

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-07 02:40:00
"""
from __future__ import annotations

from urllib.parse import urlsplit

import sqlalchemy as sa
from alembic import op

revision = '0032'
down_revision = '0031'
branch_labels = None
depends_on = None

PENDING = sa.text("status = 'pending'")


def upgrade() -> None:
    with op.batch_alter_table('notify_outbox') as batch:
        batch.add_column(sa.Column('priority', sa.SmallInteger(), nullable=False, server_default='1'))
        batch.add_column(sa.Column('destination', sa.String(length=200), nullable=False, server_default=''))
    # Messages queued before the upgrade: the same lanes as new ones (sent and dead ones keep their channel).
    op.execute("UPDATE notify_outbox SET destination = channel")
    op.execute("UPDATE notify_outbox SET priority = 0 WHERE channel = 'emergency' OR template = 'sos_contact'")
    op.execute("UPDATE notify_outbox SET priority = 2 WHERE channel = 'webhook'")
    outbox = sa.table('notify_outbox', sa.column('id', sa.String), sa.column('content', sa.JSON),
                      sa.column('destination', sa.String), sa.column('channel', sa.String),
                      sa.column('status', sa.String))
    connection = op.get_bind()
    pending = connection.execute(sa.select(outbox.c.id, outbox.c.content)
                                 .where(outbox.c.channel == 'webhook', outbox.c.status == 'pending')).all()
    for message_id, content in pending:
        parts = urlsplit(str((content or {}).get('url', '')))
        connection.execute(outbox.update().where(outbox.c.id == message_id)
                           .values(destination=f"webhook {parts.scheme}://{parts.netloc}".lower()))
    with op.batch_alter_table('notify_outbox') as batch:
        batch.alter_column('priority', server_default=None)
        batch.alter_column('destination', server_default=None)
    op.create_index('ix_notify_outbox_due', 'notify_outbox', ['priority', 'next_attempt_at'], unique=False,
                    postgresql_where=PENDING, sqlite_where=PENDING)


def downgrade() -> None:
    op.drop_index('ix_notify_outbox_due', table_name='notify_outbox', postgresql_where=PENDING,
                  sqlite_where=PENDING)
    with op.batch_alter_table('notify_outbox') as batch:
        batch.drop_column('destination')
        batch.drop_column('priority')
