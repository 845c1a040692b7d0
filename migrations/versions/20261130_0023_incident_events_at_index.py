"""incident timeline indexed by time: a console's live stream catches up on the cases changed since

Revision ID: 0023
Revises: 0022
Create Date: 2026-11-30
"""
from __future__ import annotations

from alembic import op

revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(op.f("ix_safety_incident_events_at"), "safety_incident_events", ["at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_safety_incident_events_at"), table_name="safety_incident_events")
