"""drop keyring-keyed text MACs from the case and applicant timelines

A note's MAC used to be keyed by the keyring's index key: with the keyring and any copy of the
database, a guessed note could be confirmed long after its author's data key was shredded. New MACs
derive from the data key the note is sealed under (`Vault.subject_mac`, prefixed `dk1:`) and die with
it. The timelines are ordinary tables, so the old MACs (32 hex digits, no prefix) are removed from
them here; nothing reads them (the note itself is found by its `note_ref`). The audit log's copies stay:
it is hash-chained and never rewritten (see docs/operations.md, "Threat model").

Revision ID: 0036
Revises: 0035
Create Date: 2026-12-07 12:00:00
"""
from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = '0036'
down_revision = '0035'
branch_labels = None
depends_on = None

TIMELINES = ('safety_incident_events', 'screening_events')
NEW_SCHEME = 'dk1:'
BATCH = 1000


def _without_old_macs(details: Any) -> dict[str, Any] | None:
    """The details without keyring-keyed MACs, or None when there are none."""
    if isinstance(details, str):
        details = json.loads(details)
    if not isinstance(details, dict):
        return None
    old = [k for k, v in details.items() if k.endswith('_mac') and not str(v).startswith(NEW_SCHEME)]
    return {k: v for k, v in details.items() if k not in old} if old else None


def upgrade() -> None:
    connection = op.get_bind()
    for name in TIMELINES:
        table = sa.table(name, sa.column('id', sa.String), sa.column('details', sa.JSON))
        last = ''
        while True:
            rows = connection.execute(sa.select(table.c.id, table.c.details).where(
                table.c.id > last, sa.cast(table.c.details, sa.Text).like('%\\_mac"%', escape='\\'))
                .order_by(table.c.id).limit(BATCH)).all()
            if not rows:
                break
            changes = [{'row_id': row_id, 'cleaned': cleaned} for row_id, details in rows
                       if (cleaned := _without_old_macs(details)) is not None]
            if changes:
                connection.execute(table.update().where(table.c.id == sa.bindparam('row_id'))
                                   .values(details=sa.bindparam('cleaned')), changes)
            last = rows[-1][0]


def downgrade() -> None:
    pass  # a removed MAC is not brought back: nothing needs it, and it would confirm a guessed note
