"""Found by the outside review of #26: someone who can write to the key folder but holds no keyring deletes the
journal, its head, backup-keys.json and backups.jsonl. The folder then looks "never used", TripGuard silently starts
a new, empty journal, and the documented way to restore an older backup (`keys backup NOW.keys`, then
`backup restore OLD --keys NOW.keys`) brings an erased person back un-erased: exit 0, no override, no audit.

docs/operations.md, "Threat model": a journal lost, deleted, emptied ... by someone who can write to the key
folder but does not hold the keyring: restores stop, erasures and backups are refused, security check fails;
nobody erased comes back quietly. The live database itself shows the folder was used (shredded keys, deletion
records, backup.create entries)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.reporting.test_erasure_journal_control import journal_control
from tests.vault.test_backup import cli_ok, erase, site  # noqa: F401
from tripguard.cli import app as cli
from tripguard.core.settings import Settings


def test_wiping_the_journal_and_its_witnesses_does_not_bring_an_erased_person_back(
        site: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    old = tmp_path / "old.tgbk"
    cli_ok("backup", "create", str(old))
    erase(site, "psg_erase")
    for name in ("erasure-journal.jsonl", "erasure-journal.head", "backup-keys.json", "backups.jsonl"):
        (site.key_dir / name).unlink()

    now_keys = tmp_path / "now.keys"
    made = CliRunner().invoke(cli, ["keys", "backup", str(now_keys)])  # the folder looks new: a journal starts
    assert made.exit_code == 0, made.output
    passed, evidence = journal_control(site)  # but the database remembers the shredded key
    assert not passed and "journal was reset" in evidence, evidence
    _, output = _restore(site, tmp_path, old, now_keys, monkeypatch)
    assert "error" in output and "the journal was reset" in output, output


def _restore(settings: Settings, tmp_path: Path, file: Path, keys: Path,
             monkeypatch: pytest.MonkeyPatch) -> tuple[Settings, str]:
    from tests.conftest import fresh_database
    from tripguard.core.settings import get_settings

    url = fresh_database("tg_rs_wipe", tmp_path / "r")
    monkeypatch.setenv("TRIPGUARD_DATABASE_URL", url)
    get_settings.cache_clear()
    result = CliRunner().invoke(cli, ["backup", "restore", str(file), "--keys", str(keys)])
    return settings.model_copy(update={"database_url": url}), result.output + (
        "" if result.exit_code == 0 else "error")
