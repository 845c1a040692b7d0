"""alert positions sealed under the trip's key

Where an alert happened was two plain columns (`telematics_alerts.lon/lat`), in every backup. It is now
one sealed column, `position` ("lon,lat" under the trip's key `trip:<id>`, as the trip's positions are).
Existing positions are sealed here with the vault of TripGuard's settings (the key folder and keyring
that `tripguard serve` uses); the plain columns are then dropped. Alert webhooks still waiting in the
outbox lose their `lon`/`lat` as well: a webhook payload carries no personal data.

Revision ID: 0035
Revises: 0034
Create Date: 2026-12-07 06:00:00
"""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.orm import Session

revision = '0035'
down_revision = '0034'
branch_labels = None
depends_on = None

BATCH = 1000
ALERTS = sa.table('telematics_alerts', sa.column('id', sa.String), sa.column('trip_id', sa.String),
                  sa.column('lon', sa.Float), sa.column('lat', sa.Float), sa.column('position', sa.LargeBinary))
OUTBOX = sa.table('notify_outbox', sa.column('id', sa.String), sa.column('channel', sa.String),
                  sa.column('template', sa.String), sa.column('content', sa.JSON))


def _vault() -> Any:
    """The vault given by the caller (tests), else the one of TripGuard's settings."""
    given = context.config.attributes.get('vault')
    if given is not None:
        return given
    from tripguard.core.settings import get_settings
    from tripguard.vault.keys import build_vault

    return build_vault(get_settings())


def _seal_positions(session: Session) -> None:
    from tripguard.telematics.store.trips import trip_key
    from tripguard.vault.service import SubjectErased

    placed = ALERTS.c.lon.is_not(None) & ALERTS.c.lat.is_not(None)
    if session.execute(sa.select(ALERTS.c.id).where(placed).limit(1)).first() is None:
        return  # nothing to seal: no keys needed (a new install)
    vault = _vault()
    after = ''
    while rows := session.execute(sa.select(ALERTS.c.id, ALERTS.c.trip_id, ALERTS.c.lon, ALERTS.c.lat)
                                  .where(placed, ALERTS.c.id > after).order_by(ALERTS.c.id).limit(BATCH)).all():
        vault.prefetch(session, sorted({trip_key(r.trip_id) for r in rows}), create_missing=True)
        sealed = []
        for row in rows:
            try:
                blob = vault.seal(session, subject_id=trip_key(row.trip_id), table='telematics_alerts',
                                  column='position', row_id=row.id, value=f'{row.lon:.6f},{row.lat:.6f}')
            except SubjectErased:  # the trip's key is already shredded: its position goes with it
                blob = None
            sealed.append({'row_id': row.id, 'blob': blob})
        session.flush()  # the trips' new keys, before the rows sealed under them
        session.execute(ALERTS.update().where(ALERTS.c.id == sa.bindparam('row_id'))
                        .values(position=sa.bindparam('blob')), sealed)
        after = rows[-1].id


def _scrub_outbox(session: Session) -> None:
    webhooks = session.execute(sa.select(OUTBOX.c.id, OUTBOX.c.content).where(
        OUTBOX.c.channel == 'webhook', OUTBOX.c.template == 'alert')).all()
    for message_id, content in webhooks:
        payload = (content or {}).get('payload')
        if isinstance(payload, dict) and ('lon' in payload or 'lat' in payload):
            kept = {k: v for k, v in payload.items() if k not in ('lon', 'lat')}
            session.execute(OUTBOX.update().where(OUTBOX.c.id == message_id).values(content={**content, 'payload': kept}))


def upgrade() -> None:
    with op.batch_alter_table('telematics_alerts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('position', sa.LargeBinary(), nullable=True))
    session = Session(bind=op.get_bind(), join_transaction_mode='create_savepoint')
    try:
        _seal_positions(session)
        _scrub_outbox(session)
        session.commit()
    finally:
        session.close()
    with op.batch_alter_table('telematics_alerts', schema=None) as batch_op:
        batch_op.drop_column('lat')
        batch_op.drop_column('lon')


def downgrade() -> None:
    from tripguard.telematics.store.trips import trip_key
    from tripguard.vault.service import SubjectErased

    with op.batch_alter_table('telematics_alerts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lon', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('lat', sa.Float(), nullable=True))
    session = Session(bind=op.get_bind(), join_transaction_mode='create_savepoint')
    try:
        rows = session.execute(sa.select(ALERTS.c.id, ALERTS.c.trip_id, ALERTS.c.position)
                               .where(ALERTS.c.position.is_not(None))).all()
        vault = _vault() if rows else None
        for row in rows:
            try:
                lon, lat = (float(part) for part in vault.open(
                    session, subject_id=trip_key(row.trip_id), table='telematics_alerts', column='position',
                    row_id=row.id, blob=row.position).split(','))
            except SubjectErased:
                continue
            session.execute(ALERTS.update().where(ALERTS.c.id == row.id).values(lon=lon, lat=lat))
        session.commit()
    finally:
        session.close()
    with op.batch_alter_table('telematics_alerts', schema=None) as batch_op:
        batch_op.drop_column('position')
