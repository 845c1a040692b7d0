"""A backup that fails leaves nothing behind (no file, no `.partial`, no half key backup, no key-backup key,
no register entry, no audit record) and says which table and column stopped it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from typer.testing import CliRunner

from tests.conftest import BACKEND
from tests.vault.test_backup import site  # noqa: F401 (the fixture)
from tripguard.audit.models import AuditEntry
from tripguard.cli import app as cli
from tripguard.core.db import make_engine, make_sessionmaker
from tripguard.core.settings import Settings
from tripguard.reporting import snapshots
from tripguard.vault import keybackup

# A value each backend stores but no reader can make into the column's type ('infinity' is a valid PostgreSQL
# date and timestamp, and any text goes into an SQLite column), in the table whose Date column once broke
# every backup, and in the key table, which is written after the whole data backup.
DAMAGE = [("reporting_device_days", "day", "infinity"), ("vault_data_keys", "created_at", "infinity")]
if BACKEND == "sqlite":
    DAMAGE.append(("reporting_device_days", "vehicles", "many"))  # a str where an int belongs


def key_folder_state(settings: Settings) -> dict[str, object]:
    register = settings.key_dir / keybackup.REGISTER_FILE
    keys = settings.key_dir / keybackup.KEYS_FILE
    return {"register": register.read_text() if register.exists() else "",
            "key_backup_keys": sorted(json.loads(keys.read_text())) if keys.exists() else []}


@pytest.mark.parametrize(("table", "column", "value"), DAMAGE)
def test_a_failed_backup_leaves_nothing_and_names_table_and_column(site: Settings, tmp_path: Path,  # noqa: F811
                                                                   table: str, column: str, value: str) -> None:
    engine = make_engine(site.database_url)
    snapshots.take(make_sessionmaker(engine), timezone=site.timezone)  # what `tripguard serve` writes hourly
    with engine.begin() as connection:
        connection.execute(text(f"UPDATE {table} SET {column} = :value"), {"value": value})  # noqa: S608 - DAMAGE's names
    folder = tmp_path / "backups"
    folder.mkdir()
    before = key_folder_state(site)

    result = CliRunner().invoke(cli, ["backup", "create", str(folder / "site.tgbk")])

    assert result.exit_code == 2, result.output
    assert f"table {table}, column {column}" in result.output
    assert value not in result.output  # the value itself is never printed (nor logged)
    assert sorted(p.name for p in folder.iterdir()) == []
    assert key_folder_state(site) == before
    with make_sessionmaker(engine)() as session:
        assert session.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "backup.create")) == 0
    engine.dispose()
