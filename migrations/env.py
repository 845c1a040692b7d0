"""Alembic environment: the URL comes from TripGuard's settings or the caller (tests, CLI)."""

from __future__ import annotations

from alembic import context

from tripguard.core.db import make_engine
from tripguard.core.db_timeouts import MAINTENANCE
from tripguard.core.settings import get_settings
from tripguard.models import metadata
from tripguard.telematics.store.partitions import compared_by_migrations

config = context.config
url = config.attributes.get("database_url") or get_settings().database_url
connection = config.attributes.get("connection")


def run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection, target_metadata=metadata, render_as_batch=True,
        compare_type=True, include_name=compared_by_migrations,
    )
    with context.begin_transaction():
        context.run_migrations()


if connection is not None:
    run(connection)
else:
    engine = make_engine(url, timeouts=MAINTENANCE)  # a long migration is expected; a dead peer is not
    with engine.connect() as conn:
        run(conn)
        conn.commit()
    engine.dispose()
