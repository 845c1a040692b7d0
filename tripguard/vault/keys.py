"""Build the vault from the settings."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from tripguard.core.settings import Settings
from tripguard.vault.crypto import Suite
from tripguard.vault.journal import ErasureJournal
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


def build_vault(settings: Settings) -> Vault:
    return Vault(keys=key_source(settings), suite=Suite(settings.crypto_suite),
                 journal=ErasureJournal(settings.erasure_journal_path))
