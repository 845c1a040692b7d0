"""Build the vault from the settings."""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from pathlib import Path

from tripguard.core.settings import Settings
from tripguard.vault import crypto
from tripguard.vault.crypto import Suite
from tripguard.vault.journal import ErasureJournal
from tripguard.vault.keybackup import BackupKeyStore, BackupRegister
from tripguard.vault.keysource import EnvKeySource, KeyringFile, KeySource
from tripguard.vault.service import Vault

KEYRING_FILE = "keyring.json"


@lru_cache(maxsize=8)
def _keyring(path: Path, passphrase: str) -> KeyringFile:
    # scrypt makes opening a keyring deliberately slow: once per process and file.
    return KeyringFile(path, passphrase)


def key_source(settings: Settings) -> KeySource:
    if settings.key_source == "env":
        assert settings.keks is not None and settings.blind_index_key is not None
        return EnvKeySource(settings.keks.get_secret_value(), settings.blind_index_key.get_secret_value())
    return _keyring(settings.key_dir / KEYRING_FILE, settings.keyring_passphrase.get_secret_value())


def journal_key(keys: KeySource) -> bytes:
    # Fixed to SHA-256 so that switching the cipher suite does not orphan the journal.
    return crypto.derive(keys.index_key(), info="tripguard/erasure-journal", suite=Suite.AES)


def journal_in(folder: Path, keys: KeySource) -> ErasureJournal:
    """The erasure journal of the key folder `folder`, as it is (nothing is created)."""
    return ErasureJournal(folder, key=lambda: journal_key(keys))


def vault_in(folder: Path, keys: KeySource, suite: Suite, *, key_backup_window_days: int = 30,
             journal_may_start: bool = True) -> Vault:
    """A vault whose journal, key-backup keys and backup register live in the key folder `folder`.

    The journal is started here only in a key folder never used before, and never when
    `journal_may_start` is False (a restore); a missing one is logged, and erasures and restores are
    refused until it is resolved: the vault still builds, so nothing else (an SOS) stops."""
    journal = journal_in(folder, keys)
    backup_keys = BackupKeyStore(folder, timedelta(days=key_backup_window_days))
    register = BackupRegister(folder)
    journal.prepare(may_start=journal_may_start, in_use=(backup_keys.path, register.path),
                    adopt_v1=not backup_keys.bound_to_a_journal())
    vault = Vault(keys=keys, suite=suite, journal=journal, backup_keys=backup_keys, register=register)
    if journal_may_start and backup_keys.unbound():
        vault.bind_key_backups()  # keys made by an earlier release: bound to the journal as it is now, once
    return vault


def build_vault(settings: Settings, *, journal_may_start: bool = True) -> Vault:
    return vault_in(settings.key_dir, key_source(settings), Suite(settings.crypto_suite),
                    key_backup_window_days=settings.key_backup_window_days, journal_may_start=journal_may_start)
