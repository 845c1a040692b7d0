"""`tripguard backup verify`: a good backup passes with a summary; a flipped byte, a cut-off file, a swapped
key backup or another schema's backup each fail with a message that says what is wrong; nothing is ever
written to a database."""

from __future__ import annotations

import base64
import shutil
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from tests.vault.test_backup import cli_ok, restore_into_fresh, site  # noqa: F401 (site: the fixture)
from tripguard.audit.models import AuditEntry
from tripguard.cli import app as cli
from tripguard.core.db import make_engine, make_sessionmaker
from tripguard.core.settings import Settings
from tripguard.vault import backup
from tripguard.vault.keys import build_vault


def verify(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["backup", "verify", *args], env={"COLUMNS": "200"})
    return result.exit_code, result.output


def audit_count(settings: Settings) -> int:
    engine = make_engine(settings.database_url)
    with make_sessionmaker(engine)() as session:
        count = session.scalar(select(func.count()).select_from(AuditEntry)) or 0
    engine.dispose()
    return count


def test_a_good_backup_verifies(site: Settings, tmp_path: Path) -> None:  # noqa: F811
    file = tmp_path / "site.tgbk"
    cli_ok("backup", "create", str(file))
    entries = audit_count(site)
    code, output = verify(str(file))
    assert code == 0, output
    assert "site.tgbk: OK" in output and "privacy_subjects" in output and "match the counts" in output
    assert "key backup" in output and "2 data keys" in output and "opens until" in output
    assert audit_count(site) == entries  # it wrote nothing


@pytest.mark.parametrize("damage", ["flip", "flip in the key backup", "cut", "cut at a chunk", "header"])
def test_a_damaged_backup_fails_with_a_clear_message(site: Settings, tmp_path: Path,  # noqa: F811
                                                     damage: str) -> None:
    file = tmp_path / "site.tgbk"
    cli_ok("backup", "create", str(file))
    target = backup.keys_file_for(file) if "key backup" in damage else file
    data = bytearray(target.read_bytes())
    expected = {"flip": "chunk 0 of the backup was altered",
                "flip in the key backup": "chunk 0 of the backup was altered",
                "cut": "cut off inside chunk 0", "cut at a chunk": "cut off: its final chunk is missing",
                "header": "or the header it is bound to was changed"}[damage]
    if damage.startswith("flip"):
        data[-20] ^= 0x01
    elif damage == "cut":
        del data[-40:]
    elif damage == "cut at a chunk":
        header_end = len(backup.MAGIC) + 4 + int.from_bytes(data[len(backup.MAGIC):len(backup.MAGIC) + 4], "big")
        del data[header_end:]
    else:
        data[len(backup.MAGIC) + 6] ^= 0x20
    target.write_bytes(bytes(data))
    code, output = verify(str(file))
    assert code == 2 and "does not verify" in output and expected in output, output


def test_a_swapped_key_backup_fails(site: Settings, tmp_path: Path) -> None:  # noqa: F811
    first, second = tmp_path / "a" / "site.tgbk", tmp_path / "b" / "site.tgbk"
    first.parent.mkdir()
    second.parent.mkdir()
    cli_ok("backup", "create", str(first))
    time.sleep(0.01)
    cli_ok("backup", "create", str(second))
    shutil.copy(backup.keys_file_for(first), tmp_path / "first.keys")
    shutil.copy(backup.keys_file_for(second), backup.keys_file_for(first))  # a newer one, made with another
    code, output = verify(str(first))
    assert code == 2 and "belongs to another data backup" in output, output
    shutil.copy(tmp_path / "first.keys", backup.keys_file_for(second))  # an older one
    code, output = verify(str(second))
    assert code == 2 and "older than the data backup" in output, output
    # Given explicitly, any key backup made since opens it (as `backup restore --keys` accepts).
    code, output = verify(str(first), "--keys", str(backup.keys_file_for(first)))
    assert code == 0, output
    code, output = verify(str(first), "--keys", str(first))
    assert code == 2 and "not a key backup" in output, output


def test_a_backup_of_another_schema_is_not_taken_for_this_one(site: Settings, tmp_path: Path,  # noqa: F811
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "site.tgbk"
    cli_ok("backup", "create", str(file))
    monkeypatch.setattr("tripguard.vault.backup_verify.head_revision", lambda: "9999")
    code, output = verify(str(file))
    assert code == 2 and "this TripGuard at 9999" in output, output


def test_counts_that_do_not_match_the_header_fail(site: Settings, tmp_path: Path,  # noqa: F811
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A header whose counts are not the content's stops the backup that wrote it; sealed with the right key
    (only the counts lie), it fails verify and restore."""
    real = backup._count_rows
    monkeypatch.setattr(backup, "_count_rows", lambda connection, tables: {
        name: count + (name == "privacy_subjects") for name, count in real(connection, tables).items()})
    file = tmp_path / "site.tgbk"
    result = CliRunner().invoke(cli, ["backup", "create", str(file)])
    assert result.exit_code == 2 and "table privacy_subjects: 3 rows counted, 2 written" in result.output, result.output
    assert list(tmp_path.glob("site.tgbk*")) == []

    monkeypatch.setattr(backup, "_count_rows", real)
    vault, engine = build_vault(site), make_engine(site.database_url)
    backup.create_backup(engine, vault, file)  # no audit entry: the database stays as the backup saw it
    with file.open("rb") as handle:
        header, _ = backup._read_header(handle)
    key = vault.unwrap_backup_key(int(header["kek_version"]), base64.b64decode(header["wrapped_key"]))
    header["rows"]["privacy_subjects"] += 1
    with engine.connect() as connection, pytest.raises(backup.BackupError, match="3 rows counted, 2 written"):
        backup._write_file(connection, file, header, key, vault.suite, backup._data_tables())
    engine.dispose()
    code, output = verify(str(file))
    assert code == 2 and "privacy_subjects: the header counts 3 rows, the backup holds 2" in output, output
    _, output = restore_into_fresh(site, tmp_path / "r", file, monkeypatch, expect_ok=False)
    assert "the header counts 3 rows" in output
