"""A key-backup key opens until its window ends, checked when it is read: not only when retention
(hourly) destroys it, so a key past its window opens nothing in the hour before it is purged."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from tripguard.core.clock import utcnow
from tripguard.vault import keybackup
from tripguard.vault.crypto import Suite
from tripguard.vault.keybackup import KeyBackupExpired
from tripguard.vault.keys import vault_in
from tripguard.vault.keysource import KeyringFile

pytestmark = pytest.mark.no_database


def test_a_key_past_its_window_opens_nothing_before_it_is_purged(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    keyring = KeyringFile(tmp_path / "ring" / "keyring.json", "correct horse battery")
    vault = vault_in(tmp_path / "keys", keyring, Suite.AES, key_backup_window_days=30)
    key_id, key = vault.new_key_backup_key()
    made = utcnow()
    for later, opens in ((timedelta(days=29, hours=23), True), (timedelta(days=30, minutes=1), False),
                         (timedelta(days=400), False)):
        monkeypatch.setattr(keybackup, "utcnow", lambda later=later: made + later)
        if opens:
            assert vault.open_key_backup_key(key_id) == key, later
            assert vault.key_backup_journal_head(key_id) is not None
        else:
            with pytest.raises(KeyBackupExpired):
                vault.open_key_backup_key(key_id)
            with pytest.raises(KeyBackupExpired):
                vault.key_backup_journal_head(key_id)
    assert key_id in vault.backup_keys.path.read_text()  # not purged yet: the read alone refused it
