"""Found by the outside review of #26: damage that ends in a traceback (exit 1) instead of "a clear error, exit 2":
- a key backup whose header's created_at is not an ISO date, an integer, or a date without a zone
  (`backup verify`, `backup restore`, `backup drill`; the drill then records no backup.drill_failed);
- a directory given as FILE or --keys (`backup verify`, `backup drill`, `backup create`, `keys backup`);
- an unreadable backup-keys.json (`backup create`, `keys backup`, `backup verify`, `retention run`)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.vault.test_backup import cli_ok, site  # noqa: F401
from tripguard.cli import app as cli
from tripguard.core.settings import Settings


def _clean_failure(*args: str) -> None:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), (args, repr(result.exception))


def _set_keys_created_at(keys: Path, value: object) -> None:
    data = keys.read_bytes()
    length = struct.unpack(">I", data[6:10])[0]
    header = json.loads(data[10:10 + length])
    header["created_at"] = value
    raw = json.dumps(header, sort_keys=True).encode()
    keys.write_bytes(data[:6] + struct.pack(">I", len(raw)) + raw + data[10 + length:])


@pytest.mark.parametrize("created_at", ["garbage", 7, "2030-01-01T00:00:00"])
def test_a_key_backup_header_with_a_bad_date_is_a_clean_error(site: Settings, tmp_path: Path,  # noqa: F811
                                                             created_at: object) -> None:
    file = tmp_path / "b.tgbk"
    cli_ok("backup", "create", str(file))
    _set_keys_created_at(Path(f"{file}.keys"), created_at)
    _clean_failure("backup", "verify", str(file))
    _clean_failure("backup", "drill", str(file))


def test_a_directory_is_a_clean_error(site: Settings, tmp_path: Path) -> None:  # noqa: F811
    file = tmp_path / "b.tgbk"
    cli_ok("backup", "create", str(file))
    _clean_failure("backup", "verify", str(tmp_path))
    _clean_failure("backup", "verify", str(file), "--keys", str(tmp_path))
    _clean_failure("backup", "drill", str(file), "--keys", str(tmp_path))
    _clean_failure("backup", "create", str(tmp_path))
    _clean_failure("keys", "backup", str(tmp_path))


def test_an_unreadable_backup_keys_file_is_a_clean_error(site: Settings, tmp_path: Path) -> None:  # noqa: F811
    file = tmp_path / "b.tgbk"
    cli_ok("backup", "create", str(file))
    (site.key_dir / "backup-keys.json").write_text("garbage")
    _clean_failure("backup", "create", str(tmp_path / "c.tgbk"))
    _clean_failure("keys", "backup", str(tmp_path / "c.keys"))
    _clean_failure("backup", "verify", str(file))
    assert not list(tmp_path.glob("c.*"))


def test_a_backup_replaces_only_a_file(site: Settings, tmp_path: Path) -> None:  # noqa: F811
    """`backup create /dev/full` once turned the device into a regular file."""
    import os
    import stat

    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    _clean_failure("backup", "create", str(pipe))
    _clean_failure("keys", "backup", str(pipe))
    assert stat.S_ISFIFO(pipe.stat().st_mode) and not (tmp_path / "pipe.keys").exists()
    _clean_failure("backup", "create", "")
