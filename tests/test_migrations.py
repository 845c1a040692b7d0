"""The migrations build exactly the schema the models describe, on this run's backend."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine

from tripguard.core.migrations import head_revision
from tripguard.models import metadata
from tripguard.telematics.store.partitions import compared_by_migrations


def test_migrations_match_models(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True,
                                                               "include_name": compared_by_migrations})
        assert compare_metadata(context, metadata) == []


def test_database_is_at_head(engine: Engine) -> None:
    with engine.connect() as connection:
        assert MigrationContext.configure(connection).get_current_revision() == head_revision()


def test_migration_files_are_date_prefixed() -> None:
    from tripguard.core.migrations import MIGRATIONS_DIR

    names = [p.name for p in (MIGRATIONS_DIR / "versions").glob("*.py")]
    assert names and all(name[:8].isdigit() and name[8] == "_" for name in names)
