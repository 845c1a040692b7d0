"""The vault: sealing bound to its place, both cipher suites, keyrings, shredding and its journal."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from tripguard.vault import crypto
from tripguard.vault.crypto import DecryptionFailed, Suite
from tripguard.vault.journal import JournalError
from tripguard.vault.keys import vault_in
from tripguard.vault.keysource import EnvKeySource, KeyringFile, KeySourceError
from tripguard.vault.models import DataKey
from tripguard.vault.service import SubjectErased, Vault

PLACE = {"table": "privacy_subjects", "column": "phone", "row_id": "psg_1"}


@pytest.fixture(scope="module")
def keyring(tmp_path_factory: pytest.TempPathFactory) -> KeyringFile:
    return KeyringFile(tmp_path_factory.mktemp("ring") / "keyring.json", "correct horse battery")


@pytest.fixture(params=[Suite.AES, Suite.SM4], ids=["aes256gcm", "sm4gcm"])
def vault(request: pytest.FixtureRequest, keyring: KeyringFile, tmp_path: Path) -> Vault:
    return vault_in(tmp_path, keyring, request.param)


def test_seal_and_open(vault: Vault, db: Session) -> None:
    blob = vault.seal(db, subject_id="psg_1", value="13800001234", **PLACE)
    assert b"13800001234" not in blob and crypto.suite_of(blob) is vault.suite
    assert vault.open(db, subject_id="psg_1", blob=blob, **PLACE) == "13800001234"
    assert db.get(DataKey, "psg_1").suite == vault.suite.value  # type: ignore[union-attr]


@pytest.mark.parametrize("moved", [{"row_id": "psg_2"}, {"column": "name"}, {"table": "other"}])
def test_a_ciphertext_moved_elsewhere_does_not_open(vault: Vault, db: Session, moved: dict[str, str]) -> None:
    blob = vault.seal(db, subject_id="psg_1", value="13800001234", **PLACE)
    with pytest.raises(DecryptionFailed):
        vault.open(db, subject_id="psg_1", blob=blob, **(PLACE | moved))


def test_another_subjects_key_does_not_open_it(vault: Vault, db: Session) -> None:
    blob = vault.seal(db, subject_id="psg_1", value="secret", **PLACE)
    vault.seal(db, subject_id="psg_2", value="other", **PLACE)
    with pytest.raises(DecryptionFailed):
        vault.open(db, subject_id="psg_2", blob=blob, **PLACE)


def test_tampered_ciphertext_fails(vault: Vault, db: Session) -> None:
    blob = bytearray(vault.seal(db, subject_id="psg_1", value="secret", **PLACE))
    blob[-1] ^= 1
    with pytest.raises(DecryptionFailed):
        vault.open(db, subject_id="psg_1", blob=bytes(blob), **PLACE)


def test_shredding_makes_every_copy_unreadable_and_is_journaled(vault: Vault, db: Session) -> None:
    blob = vault.seal(db, subject_id="psg_9", value="王小明", **PLACE)
    db.commit()
    assert vault.shred(db, subject_id="psg_9", reason="subject_request") is True
    db.commit()
    db.info.clear()  # a later request: no cached key
    with pytest.raises(SubjectErased):
        vault.open(db, subject_id="psg_9", blob=blob, **PLACE)
    with pytest.raises(SubjectErased):
        vault.seal(db, subject_id="psg_9", value="again", **PLACE)
    assert "psg_9" in set(vault.journal.subject_ids())


def test_journal_reapplies_an_erasure_to_a_restored_key(vault: Vault, db: Session) -> None:
    vault.seal(db, subject_id="psg_r", value="x", **PLACE)
    record = db.get(DataKey, "psg_r")
    saved = record.wrapped_key  # type: ignore[union-attr]
    vault.shred(db, subject_id="psg_r", reason="subject_request")
    record.wrapped_key, record.shredded_at = saved, None  # type: ignore[union-attr]  # as an old backup would
    db.flush()
    assert [e.subject_id for e in vault.reapply_journal(db)] == ["psg_r"]
    assert db.get(DataKey, "psg_r").wrapped_key is None  # type: ignore[union-attr]


def test_blind_index_is_keyed_and_stable(vault: Vault, keyring: KeyringFile, tmp_path: Path) -> None:
    first = vault.blind_index("phone", "13800001234")
    assert first == vault.blind_index("phone", "13800001234")
    assert first != vault.blind_index("phone", "13800001235")
    assert first != vault.blind_index("email", "13800001234")
    other_ring = KeyringFile(tmp_path / "other.json", "another passphrase")
    other = vault_in(tmp_path / "other", other_ring, vault.suite)
    assert other.blind_index("phone", "13800001234") != first


def test_keyring_needs_its_passphrase(keyring: KeyringFile) -> None:
    with pytest.raises(KeySourceError, match="wrong passphrase"):
        KeyringFile(keyring.path, "not the passphrase")


def test_keyring_versions(tmp_path: Path) -> None:
    ring = KeyringFile(tmp_path / "ring.json", "passphrase one two")
    first = ring.current_version()
    second = ring.add_version()
    assert second == first + 1 and ring.current_version() == second
    with pytest.raises(KeySourceError, match="current"):
        ring.retire(second)
    ring.retire(first)
    with pytest.raises(KeySourceError, match="retired"):
        ring.kek(first)
    reopened = KeyringFile(tmp_path / "ring.json", "passphrase one two")
    assert reopened.current_version() == second and len(reopened.kek(second)) == 32
    assert (tmp_path / "ring.json").stat().st_mode & 0o077 == 0


def test_env_key_source() -> None:
    k1, k2, index = (base64.b64encode(os.urandom(32)).decode() for _ in range(3))
    source = EnvKeySource(f"1:{k1},2:{k2}", index)
    assert source.current_version() == 2 and source.kek(1) == base64.b64decode(k1)
    with pytest.raises(KeySourceError):
        source.add_version()
    with pytest.raises(KeySourceError):
        EnvKeySource("1:" + base64.b64encode(b"short").decode(), index)


def test_a_journal_from_before_authentication_is_adopted_once(vault: Vault, tmp_path: Path) -> None:
    """Installations from before the journal was authenticated keep their erasures (and gain a head)."""
    folder = tmp_path / "old"
    folder.mkdir()
    (folder / "erasure-journal.jsonl").write_text(
        '{"subject_id": "psg_old", "at": "2026-11-01T00:00:00+00:00", "reason": "subject_request"}\n')
    adopted = vault_in(folder, vault.keys, vault.suite)
    assert adopted.journal.subject_ids() == ["psg_old"]
    assert (folder / "erasure-journal.head").exists()
    (folder / "erasure-journal.head").unlink()  # once authenticated, a missing head is an error, not a v1
    with pytest.raises(JournalError):
        vault_in(folder, vault.keys, vault.suite).journal.entries()
