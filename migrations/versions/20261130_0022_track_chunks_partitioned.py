"""positions partitioned by month on PostgreSQL (retention drops a month); key (id, created_at) everywhere

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-30
"""
from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None

TABLE = "telematics_track_chunks"
COLUMNS = "id, trip_id, first_ts, last_ts, points, packed, created_at"


def _month(moment: datetime, months: int = 0) -> datetime:
    index = moment.year * 12 + moment.month - 1 + months
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        with op.batch_alter_table(TABLE, recreate="always") as batch_op:
            batch_op.drop_constraint("pk_telematics_track_chunks", type_="primary")
            batch_op.create_primary_key("pk_telematics_track_chunks", ["id", "created_at"])
        return
    connection = op.get_bind()
    op.execute(f"ALTER TABLE {TABLE} RENAME TO {TABLE}_old")
    op.execute(f"ALTER TABLE {TABLE}_old RENAME CONSTRAINT pk_{TABLE} TO pk_{TABLE}_old")
    op.execute(f"ALTER INDEX ix_{TABLE}_trip_id RENAME TO ix_{TABLE}_old_trip_id")
    op.execute(f"""CREATE TABLE {TABLE} (
        id VARCHAR(40) NOT NULL, trip_id VARCHAR(64) NOT NULL, first_ts TIMESTAMP WITH TIME ZONE NOT NULL,
        last_ts TIMESTAMP WITH TIME ZONE NOT NULL, points INTEGER NOT NULL, packed BYTEA,
        created_at TIMESTAMP WITH TIME ZONE NOT NULL,
        CONSTRAINT pk_{TABLE} PRIMARY KEY (id, created_at)) PARTITION BY RANGE (created_at)""")
    op.execute(f"CREATE INDEX ix_{TABLE}_trip_id ON {TABLE} (trip_id)")
    op.execute(f"CREATE TABLE {TABLE}_default PARTITION OF {TABLE} DEFAULT")
    now = datetime.now(UTC)
    oldest = connection.execute(sa.text(f"SELECT min(created_at) FROM {TABLE}_old")).scalar() or now
    start, last = _month(oldest), _month(now, 3)
    while start <= last:
        end = _month(start, 1)
        op.execute(f"CREATE TABLE {TABLE}_p{start:%Y%m} PARTITION OF {TABLE} "
                   f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')")
        start = end
    op.execute(f"INSERT INTO {TABLE} ({COLUMNS}) SELECT {COLUMNS} FROM {TABLE}_old")
    op.execute(f"DROP TABLE {TABLE}_old")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        with op.batch_alter_table(TABLE, recreate="always") as batch_op:
            batch_op.drop_constraint("pk_telematics_track_chunks", type_="primary")
            batch_op.create_primary_key("pk_telematics_track_chunks", ["id"])
        return
    op.execute(f"ALTER TABLE {TABLE} RENAME TO {TABLE}_parted")
    op.execute(f"ALTER TABLE {TABLE}_parted RENAME CONSTRAINT pk_{TABLE} TO pk_{TABLE}_parted")
    op.execute(f"ALTER INDEX ix_{TABLE}_trip_id RENAME TO ix_{TABLE}_parted_trip_id")
    op.execute(f"""CREATE TABLE {TABLE} (
        id VARCHAR(40) NOT NULL, trip_id VARCHAR(64) NOT NULL, first_ts TIMESTAMP WITH TIME ZONE NOT NULL,
        last_ts TIMESTAMP WITH TIME ZONE NOT NULL, points INTEGER NOT NULL, packed BYTEA,
        created_at TIMESTAMP WITH TIME ZONE NOT NULL, CONSTRAINT pk_{TABLE} PRIMARY KEY (id))""")
    op.execute(f"CREATE INDEX ix_{TABLE}_trip_id ON {TABLE} (trip_id)")
    op.execute(f"INSERT INTO {TABLE} ({COLUMNS}) SELECT {COLUMNS} FROM {TABLE}_parted")
    op.execute(f"DROP TABLE {TABLE}_parted CASCADE")
