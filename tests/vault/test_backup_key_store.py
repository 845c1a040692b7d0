"""`backup-keys.json` entry by entry: when each key's window ends, one key destroyed at once (a key backup
that was never completed), and how many keys past their window retention destroys or would destroy."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tripguard.vault import keybackup
from tripguard.vault.crypto import Suite
from tripguard.vault.journal import GENESIS_MAC, Head
from tripguard.vault.keybackup import BackupKeysDamaged, BackupKeyStore

pytestmark = pytest.mark.no_database

MADE = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
WINDOW = timedelta(days=30)


def at(monkeypatch: pytest.MonkeyPatch, moment: datetime) -> None:
    monkeypatch.setattr(keybackup, "utcnow", lambda: moment)


def a_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keys: int) -> tuple[BackupKeyStore, list[str]]:
    at(monkeypatch, MADE)
    store = BackupKeyStore(tmp_path, WINDOW)
    ids = [store.create(kek_version=1, wrap=b"w" * 32, suite=Suite.AES, head=Head(0, GENESIS_MAC.hex()))[0]
           for _ in range(keys)]
    return store, ids


def test_each_keys_window_ends_as_written_and_an_unknown_key_has_none(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    store, (first, second) = a_store(tmp_path, monkeypatch, 2)
    assert store.expires_at(first) == MADE + WINDOW
    assert store.expires_at("kbk_unknown") is None
    entries = json.loads(store.path.read_text())
    entries[second]["expires_at"] = "2027-01-01T00:00:00+00:00"
    entries[first]["expires_at"] = "2027-01-01T00:00:00"  # no zone: unreadable, so it opens nothing
    store.path.write_text(json.dumps(entries))
    assert store.expires_at(second) == datetime(2027, 1, 1, tzinfo=UTC)
    assert store.expires_at(first) is None


def test_forgetting_a_key_destroys_that_key_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store, (gone, kept) = a_store(tmp_path, monkeypatch, 2)
    before = json.loads(store.path.read_text())
    store.forget(gone)
    assert json.loads(store.path.read_text()) == {kept: before[kept]}
    assert store.expires_at(gone) is None and store.expires_at(kept) == MADE + WINDOW
    # An unknown id (or one already forgotten) changes nothing and raises nothing.
    content = store.path.read_bytes()
    store.forget(gone)
    store.forget("kbk_unknown")
    assert store.path.read_bytes() == content


def test_forgetting_a_key_in_a_damaged_file_is_refused_and_changes_nothing(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    store, (key_id,) = a_store(tmp_path, monkeypatch, 1)
    store.path.write_text("[]")
    with pytest.raises(BackupKeysDamaged):
        store.forget(key_id)
    assert store.path.read_text() == "[]"


def test_retention_counts_and_destroys_exactly_the_keys_past_their_window(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    store, ids = a_store(tmp_path, monkeypatch, 3)
    entries = json.loads(store.path.read_text())
    entries[ids[0]]["expires_at"] = (MADE + timedelta(days=1)).isoformat()
    entries[ids[1]]["expires_at"] = "not a date"  # unreadable: destroyed with the expired ones
    store.path.write_text(json.dumps(entries))
    for moment, expired in ((MADE, 1), (MADE + timedelta(days=1), 2), (MADE + WINDOW, 3)):
        at(monkeypatch, moment)
        assert store.expired_count() == expired, moment
    at(monkeypatch, MADE + timedelta(days=2))
    assert store.expired_count() == 2
    assert store.purge() == 2
    assert list(json.loads(store.path.read_text())) == [ids[2]]
    assert store.expired_count() == 0 and store.purge() == 0
