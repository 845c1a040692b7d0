"""`backup-keys.json` entry by entry: a key made for one key backup and wrapped with its id, journal head and
deadline; when each key's window ends; one key destroyed at once (a key backup that was never completed); how
many keys past their window retention destroys or would destroy; keys moved along their own journal."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tripguard.vault import crypto, keybackup
from tripguard.vault.crypto import Suite
from tripguard.vault.journal import GENESIS_MAC, Head
from tripguard.vault.keybackup import BackupKeysDamaged, BackupKeyStore, KeyBackupExpired

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


# -- a key made, read and moved along the journal --------------------------------------------------------------

WRAP = b"w" * 32
WRAPS = {1: WRAP, 2: b"v" * 32}  # what each KEK version's wrapping key stands for here
HEAD_1 = Head(1, "11" * 32)
HEAD_2 = Head(2, "22" * 32)


def context(key_id: str, head: Head, until: datetime) -> bytes:
    """The associated data a key is wrapped with, written out: its id, its journal head, its window's end."""
    return f"tripguard/key-backup/{key_id}|journal/{head.count}/{head.last}|until/{until.isoformat()}".encode()


def test_a_key_is_made_for_its_window_wrapped_with_its_id_head_and_deadline(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    at(monkeypatch, MADE)
    store = BackupKeyStore(tmp_path, WINDOW)
    key_id, key, expires = store.create(kek_version=3, wrap=WRAP, suite=Suite.AES, head=HEAD_1)
    assert key_id.startswith("kbk") and len(key) == 32 and expires == MADE + WINDOW
    entry = json.loads(store.path.read_text())[key_id]
    assert {k: v for k, v in entry.items() if k != "wrapped"} == {
        "created_at": MADE.isoformat(), "expires_at": (MADE + WINDOW).isoformat(), "kek_version": 3,
        "journal": {"count": 1, "last": "11" * 32}}
    assert crypto.decrypt(WRAP, base64.b64decode(entry["wrapped"]), context(key_id, HEAD_1, MADE + WINDOW)) == key
    assert store.path.stat().st_mode & 0o777 == 0o600
    sealed = store.sealed(key_id)
    assert (sealed.key_id, sealed.kek_version, sealed.head, sealed.until) == (
        key_id, 3, HEAD_1, (MADE + WINDOW).isoformat())
    assert crypto.decrypt(WRAP, sealed.sealed, sealed.context) == key
    sm4_id, sm4_key, _ = store.create(kek_version=3, wrap=b"s" * 16, suite=Suite.SM4, head=HEAD_1)
    assert len(sm4_key) == 16 and crypto.suite_of(store.sealed(sm4_id).sealed) is Suite.SM4


def test_making_a_key_destroys_the_keys_past_their_window(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store, _ = a_store(tmp_path, monkeypatch, 1)
    at(monkeypatch, MADE + WINDOW)
    new, _, _ = store.create(kek_version=1, wrap=WRAP, suite=Suite.AES, head=HEAD_1)
    assert list(json.loads(store.path.read_text())) == [new]


def test_a_key_opens_until_the_instant_its_window_ends(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store, (key_id,) = a_store(tmp_path, monkeypatch, 1)
    at(monkeypatch, MADE + WINDOW - timedelta(microseconds=1))
    assert store.sealed(key_id).key_id == key_id
    at(monkeypatch, MADE + WINDOW)
    with pytest.raises(KeyBackupExpired) as gone:
        store.sealed(key_id)
    assert str(gone.value) == (
        f"the key of key backup {key_id} is gone (made more than 30 days ago, or with another key folder): this key "
        "backup can no longer be opened; restore with a fresher one (`tripguard keys backup FILE` on the live "
        "system, then `--keys FILE`)")
    at(monkeypatch, MADE)
    with pytest.raises(KeyBackupExpired, match="the key of key backup kbk_unknown is gone"):
        store.sealed("kbk_unknown")
    entries = json.loads(store.path.read_text())
    entries[key_id]["expires_at"] = "2099-01-01"  # no zone: read as no deadline, so it opens nothing
    store.path.write_text(json.dumps(entries))
    with pytest.raises(KeyBackupExpired):
        store.sealed(key_id)


def test_the_key_file_missing_is_no_keys_and_damaged_stops_everything(tmp_path: Path) -> None:
    store = BackupKeyStore(tmp_path, WINDOW)
    assert store.expires_at("kbk_x") is None and store.purge() == 0 and not store.bound_to_a_journal()
    unreadable = r"^backup-keys.json in the key folder cannot be read \(JSONDecodeError\): put it back from a copy of"
    for content, reason in (("garbage", unreadable + " the key folder$"),
                            ("[1, 2]", "^backup-keys.json in the key folder is damaged: put it back from a copy$")):
        store.path.write_text(content)
        for use in (store.purge, store.expired_count, lambda: store.sealed("kbk_x")):
            with pytest.raises(BackupKeysDamaged, match=reason):
                use()


def test_keys_from_before_the_binding_are_told_apart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store, (bound, legacy) = a_store(tmp_path, monkeypatch, 2)
    assert not store.unbound() and store.bound_to_a_journal()
    entries = json.loads(store.path.read_text())
    del entries[legacy]["journal"]
    store.path.write_text(json.dumps(entries))
    assert store.unbound() and store.bound_to_a_journal()
    del entries[bound]["journal"]
    store.path.write_text(json.dumps(entries))
    assert store.unbound() and not store.bound_to_a_journal()
    at(monkeypatch, MADE + WINDOW)  # an unbound key past its window no longer counts
    assert not store.unbound()
    store.path.write_text(json.dumps({"kbk_x": 1}))
    assert not store.unbound() and store.bound_to_a_journal()  # a damaged file is no sign of a fresh folder


def test_keys_move_to_a_later_head_of_their_own_journal_only(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    at(monkeypatch, MADE)
    store = BackupKeyStore(tmp_path, WINDOW)
    made = {name: store.create(kek_version=version, wrap=WRAPS[version],
                               suite=Suite.AES, head=head)
            for name, version, head in (("behind", 1, HEAD_1), ("elsewhere", 1, Head(1, "ee" * 32)),
                                        ("level", 1, HEAD_2), ("other kek", 2, HEAD_1), ("legacy", 1, HEAD_1),
                                        ("behind too", 1, HEAD_1))}
    entries = json.loads(store.path.read_text())
    legacy_id, legacy_key, _ = made["legacy"]
    del entries[legacy_id]["journal"]
    entries[legacy_id]["wrapped"] = base64.b64encode(crypto.encrypt(
        Suite.AES, WRAP, legacy_key, f"tripguard/key-backup/{legacy_id}".encode())).decode()
    # First in the file, so that a key that opens nothing is seen to be passed over, not to stop the others.
    entries = {"kbk_damaged": {"expires_at": (MADE + WINDOW).isoformat(), "kek_version": 1, "wrapped": "AAAA"},
               **entries, "kbk_expired": {"expires_at": MADE.isoformat(), "kek_version": 1, "wrapped": "AAAA"}}
    store.path.write_text(json.dumps(entries))
    wraps: list[tuple[int, Suite]] = []

    def wrap_for(version: int, suite: Suite) -> bytes:
        wraps.append((version, suite))
        return WRAPS[version] if suite is Suite.AES else b""

    moved = store.advance(Head(3, "33" * 32), contains=lambda head: head in (HEAD_1, HEAD_2), wrap_for=wrap_for)

    assert moved == 5 and sorted(wraps) == [(1, Suite.AES), (2, Suite.AES)]  # derived once per KEK version
    after = json.loads(store.path.read_text())
    assert "kbk_expired" not in after and after["kbk_damaged"] == entries["kbk_damaged"]
    assert after[made["elsewhere"][0]] == entries[made["elsewhere"][0]]
    for name, (key_id, key, expires) in made.items():
        sealed = store.sealed(key_id)
        if name == "elsewhere":
            assert sealed.head == Head(1, "ee" * 32)
            continue
        assert sealed.head == Head(3, "33" * 32) and after[key_id]["journal"] == {"count": 3, "last": "33" * 32}
        wrap = WRAPS[2] if name == "other kek" else WRAP
        assert crypto.decrypt(wrap, sealed.sealed, context(key_id, Head(3, "33" * 32), expires)) == key, name
    # Nothing behind the head on its journal any more: nothing moves, nothing is written.
    written = store.path.read_bytes()
    assert store.advance(Head(3, "33" * 32), contains=lambda head: head.count == 3, wrap_for=wrap_for) == 0
    assert store.path.read_bytes() == written
    # Only an expired key to drop: the file is written without it.
    entries = json.loads(written) | {"kbk_expired": {"expires_at": MADE.isoformat()}}
    store.path.write_text(json.dumps(entries))
    assert store.advance(Head(3, "33" * 32), contains=lambda head: head.count == 3, wrap_for=wrap_for) == 0
    assert "kbk_expired" not in json.loads(store.path.read_text())
