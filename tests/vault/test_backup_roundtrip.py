"""Every column of every table comes back from a backup equal, in type and value, NULLs included.

The rows are built from the metadata (tests/vault/metadata_rows.py), so a table added later is in this
test without anyone editing it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Table, insert, select

from tests.conftest import fresh_database
from tests.vault.metadata_rows import ROWS, rows_for
from tripguard.core.db import make_engine
from tripguard.core.settings import Settings
from tripguard.models import metadata
from tripguard.privacy.service import reapply_erasures
from tripguard.vault import backup
from tripguard.vault.codec import RowCodec
from tripguard.vault.keys import build_vault

WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")


def fill_from_metadata(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    made: dict[str, list[dict[str, Any]]] = {}
    with engine.begin() as connection:
        for table in metadata.sorted_tables:
            made[table.name] = rows_for(table, made)
            connection.execute(insert(table), made[table.name])
    return made


def everything(engine: Engine, table: Table) -> list[tuple[Any, ...]]:
    """Every row, each value with its type; for JSON columns also whether it is SQL NULL (not JSON null)."""
    json_columns = RowCodec(table).json_columns
    statement = select(table, *(c.is_(None) for c in json_columns)).order_by(*table.primary_key.columns)
    with engine.connect() as connection:
        return [tuple((type(value), value) for value in row) for row in connection.execute(statement)]


def test_every_column_of_every_table_round_trips(cli_site: Settings, tmp_path: Path) -> None:
    source = make_engine(cli_site.database_url)
    made = fill_from_metadata(source)
    vault = build_vault(cli_site)
    file = tmp_path / "all.tgbk"
    summary = backup.create_backup(source, vault, file)
    assert summary.rows == {name: ROWS for name in made}

    target = make_engine(fresh_database(f"tg_rt_{WORKER}", tmp_path / "r"))
    restored = backup.restore_backup(target, vault, file, after_erasures=reapply_erasures)
    assert restored.rows == summary.rows and restored.erasures == 0
    try:
        for table in metadata.sorted_tables:
            before = everything(source, table)
            assert len(before) == ROWS, table.name
            assert everything(target, table) == before, table.name
    finally:
        source.dispose()
        target.dispose()
