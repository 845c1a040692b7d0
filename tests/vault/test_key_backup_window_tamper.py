"""Found by the outside review of #26: the key-backup window rests on `expires_at` in backup-keys.json, which nothing
authenticates (the wrap's associated data binds only the key id and the journal head) and nothing validates.
Someone who can write to the key folder, without the keyring, keeps every key backup openable for ever:
- moving `expires_at` to 2099: `backup verify` says "opens until 2099-01-01" (the window is 1-365 days),
  retention never destroys the key, `security check` passes;
- adding one entry whose `expires_at` does not parse: `retention run` (and the hourly job, and the API's
  retention run: 500) crashes before destroying any expired key; `backup create`, `keys backup` and
  `backup verify` crash with a traceback.

docs/operations.md "Backups": that key is destroyed when the key-backup window has passed."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from typer.testing import CliRunner

from tests.vault.test_backup import cli_ok, site  # noqa: F401
from tripguard.cli import app as cli
from tripguard.core.clock import utcnow
from tripguard.core.settings import Settings
from tripguard.vault.backup_verify import verify_backup
from tripguard.vault.keys import build_vault


def _keys_file(settings: Settings) -> Path:
    return settings.key_dir / "backup-keys.json"


def test_a_key_backups_deadline_cannot_be_moved_by_editing_the_key_folder(site: Settings,  # noqa: F811
                                                                         tmp_path: Path) -> None:
    file = tmp_path / "b.tgbk"
    cli_ok("backup", "create", str(file))
    entries = json.loads(_keys_file(site).read_text())
    for entry in entries.values():
        entry["expires_at"] = "2099-01-01T00:00:00+00:00"
    _keys_file(site).write_text(json.dumps(entries))
    try:
        report = verify_backup(build_vault(site), file)
    except Exception:  # noqa: BLE001 (refusing the changed entry is fine)
        return
    window = timedelta(days=site.key_backup_window_days)
    assert report.key_backup_opens_until is None or report.key_backup_opens_until <= utcnow() + window, \
        report.key_backup_opens_until  # today: 2099-01-01


def test_one_unreadable_entry_does_not_stop_expired_keys_being_destroyed(site: Settings,  # noqa: F811
                                                                        tmp_path: Path) -> None:
    cli_ok("backup", "create", str(tmp_path / "b.tgbk"))
    entries = json.loads(_keys_file(site).read_text())
    for entry in entries.values():
        entry["expires_at"] = "2020-01-01T00:00:00+00:00"  # past its window
    entries["kbk_junk"] = {"expires_at": 5}
    _keys_file(site).write_text(json.dumps(entries))
    result = CliRunner().invoke(cli, ["retention", "run"])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    left = json.loads(_keys_file(site).read_text())
    assert not any(str(v.get("expires_at", "")).startswith("2020") for v in left.values()), left
