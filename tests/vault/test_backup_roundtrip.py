"""Every column of every table comes back from a backup equal, in type and value, NULLs included.

The rows are built from the metadata (tests/vault/metadata_rows.py), so a table added later is in this
test without anyone editing it."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import pytest
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
from tripguard.vault.service import BLIND_INDEX_INFO

WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")


def fill_from_metadata(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    made: dict[str, list[dict[str, Any]]] = {}
    with engine.begin() as connection:
        for table in metadata.sorted_tables:
            made[table.name] = rows_for(table, made)
            connection.execute(insert(table), made[table.name])
    return made


def everything(engine: Engine, table: Table, *, as_backed_up: bool = False) -> list[tuple[Any, ...]]:
    """Every row, each value with its type; for JSON columns also whether it is SQL NULL (not JSON null).

    `as_backed_up`: blind indexes as a backup holds them, empty (the restore rebuilds them from what still
    opens: tests/privacy/test_indexes.py)."""
    json_columns = RowCodec(table).json_columns
    statement = select(table, *(c.is_(None) for c in json_columns)).order_by(*table.primary_key.columns)
    left_out = {i for i, column in enumerate(table.columns) if as_backed_up and BLIND_INDEX_INFO in column.info}
    with engine.connect() as connection:
        return [tuple((type(None), None) if i in left_out else (type(value), value) for i, value in enumerate(row))
                for row in connection.execute(statement)]


def test_every_column_of_every_table_round_trips(cli_site: Settings, tmp_path: Path) -> None:
    source = make_engine(cli_site.database_url)
    made = fill_from_metadata(source)
    vault = build_vault(cli_site)
    for key in made[backup.KEY_TABLE]:  # a key shredded is an erasure the journal holds (a restore checks)
        if key["wrapped_key"] is None:
            vault.journal.append(key["subject_id"], "round trip")
    file = tmp_path / "all.tgbk"
    summary = backup.create_backup(source, vault, file)
    backed_up = {t.name for t in backup._data_tables()} | {backup.KEY_TABLE}
    assert summary.rows == {name: ROWS for name in made if name in backed_up}
    # Left out, each with its reason: the monitor's state (positions under a key no erasure shreds), the batches
    # it has not applied yet (the same, before detection), and the read cache's change log (a process's own).
    assert set(made) - backed_up == {"telematics_monitor_checkpoints", "telematics_inbox", "core_read_changes"}

    target = make_engine(fresh_database(f"tg_rt_{WORKER}", tmp_path / "r"))
    restored = backup.restore_backup(target, vault, file)  # (the key stays shredded; nothing else changes)
    assert restored.rows == summary.rows
    try:
        for table in metadata.sorted_tables:
            before = everything(source, table)
            assert len(before) == ROWS, table.name
            expected = everything(source, table, as_backed_up=True) if table.name in backed_up else []
            assert everything(target, table) == expected, table.name
    finally:
        source.dispose()
        target.dispose()


def rewrite_as_format_1(source: Path, target: Path, key: bytes, suite: Any) -> None:
    """`source` as the code before the column codecs wrote it: JSON values bare, no backup id, no counts."""
    import hashlib
    import json
    import struct

    with source.open("rb") as handle:
        header, header_bytes = backup._read_header(handle)
        lines = list(backup._plaintext_lines(handle, key, hashlib.sha256(header_bytes).digest()))
    for name in ("backup_id", "rows", "data_backup_id"):
        header.pop(name, None)
    header["format"] = 1
    json_columns = {t.name: {c.name for c in RowCodec(t).json_columns} for t in metadata.sorted_tables}
    table = ""
    new_header = json.dumps(header, sort_keys=True).encode()
    with target.open("wb") as handle:
        handle.write(backup.MAGIC + struct.pack(">I", len(new_header)) + new_header)
        writer = backup._ChunkWriter(handle, suite, key, hashlib.sha256(new_header).digest())
        for line in lines:
            record = json.loads(line)
            if set(record) == {"table"}:
                table = record["table"]
            else:
                record = {k: (v[0] if k in json_columns[table] and v is not None else v) for k, v in record.items()}
            writer.write(json.dumps(record, ensure_ascii=False).encode() + b"\n")
        writer.close()


def test_a_backup_made_before_the_codecs_still_restores(cli_site: Settings, tmp_path: Path) -> None:
    from tests.builders import TEST_ACTOR
    from tripguard.core.db import make_sessionmaker, unit_of_work
    from tripguard.privacy import access, service
    from tripguard.privacy.models import DataSubject

    source, vault = make_engine(cli_site.database_url), build_vault(cli_site)
    with unit_of_work(make_sessionmaker(source)) as session:
        service.publish_notice(session, actor=TEST_ACTOR, version="n1", purposes=["emergency"],
                               categories=["user.name"], retention_zh="两年", retention_en="two years",
                               text_zh="说明", text_en="notice")
        service.upsert_subject(session, vault=vault, actor=TEST_ACTOR, subject_id="psg_old", kind="passenger",
                               notice_version="n1", values={"name": "韩梅梅", "phone": "13800003333"})
    new = tmp_path / "new.tgbk"
    backup.create_backup(source, vault, new)
    old = tmp_path / "old.tgbk"
    with new.open("rb") as handle:
        header, _ = backup._read_header(handle)
    rewrite_as_format_1(new, old, vault.unwrap_backup_key(int(header["kek_version"]),
                                                          base64.b64decode(header["wrapped_key"])), vault.suite)
    with backup.keys_file_for(new).open("rb") as handle:
        keys_header, _ = backup._read_header(handle)
    rewrite_as_format_1(backup.keys_file_for(new), backup.keys_file_for(old),
                        vault.open_key_backup_key(keys_header["key_backup_id"]), vault.suite)

    target = make_engine(fresh_database(f"tg_rt_{WORKER}", tmp_path / "r"))
    backup.restore_backup(target, vault, old, after_erasures=reapply_erasures)
    for table in metadata.sorted_tables:
        assert everything(target, table) == everything(source, table, as_backed_up=True), table.name
    with make_sessionmaker(target)() as session:
        subject = session.get(DataSubject, "psg_old")
        assert subject is not None and access.open_field(vault, session, subject, "name") == "韩梅梅"
    source.dispose()
    target.dispose()


def test_the_monitors_state_is_left_out_and_an_older_backup_holding_it_still_restores(
        cli_site: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its positions are sealed under a system key no erasure shreds: in a backup they would outlive every
    window. A backup made before it was left out restores, without it."""
    source, vault = make_engine(cli_site.database_url), build_vault(cli_site)
    checkpoints = metadata.tables["telematics_monitor_checkpoints"]
    with source.begin() as connection:
        connection.execute(insert(checkpoints), rows_for(checkpoints, {}))
    current = tmp_path / "now.tgbk"
    assert "telematics_monitor_checkpoints" not in backup.create_backup(source, vault, current).rows
    everything_then = [*backup._data_tables(), checkpoints]
    monkeypatch.setattr(backup, "_data_tables", lambda: everything_then)  # as the code before wrote it
    older = tmp_path / "older.tgbk"
    assert backup.create_backup(source, vault, older).rows["telematics_monitor_checkpoints"] == ROWS
    monkeypatch.undo()
    for file in (current, older):
        target = make_engine(fresh_database(f"tg_rt_{WORKER}", tmp_path / file.stem))
        try:
            restored = backup.restore_backup(target, vault, file, after_erasures=reapply_erasures)
            assert "telematics_monitor_checkpoints" not in restored.rows
            assert everything(target, checkpoints) == []
        finally:
            target.dispose()
    source.dispose()
