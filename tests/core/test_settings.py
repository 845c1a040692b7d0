"""Settings: safe defaults for development, refusal to start on defaults in production."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from tripguard.audit.signing import create_key_file
from tripguard.core.settings import Settings, SettingsError


def test_production_refuses_default_secret_and_missing_key(tmp_path: Path) -> None:
    settings = Settings(env="production", key_dir=tmp_path)
    with pytest.raises(SettingsError) as refused:
        settings.check_safe_to_start()
    assert "TRIPGUARD_SECRET_KEY" in str(refused.value) and "audit signing key" in str(refused.value)


def test_production_starts_with_real_secret_and_key(tmp_path: Path) -> None:
    create_key_file(tmp_path / "audit-signing.key")
    Settings(env="production", key_dir=tmp_path, secret_key="x" * 16 + "y" * 16 + "z",
             keyring_passphrase="a real passphrase from the secret store").check_safe_to_start()


def test_production_refuses_the_development_keyring_passphrase(tmp_path: Path) -> None:
    create_key_file(tmp_path / "audit-signing.key")
    settings = Settings(env="production", key_dir=tmp_path, secret_key="s" * 40)
    with pytest.raises(SettingsError, match="KEYRING_PASSPHRASE"):
        settings.check_safe_to_start()


def test_development_defaults_are_embedded() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.is_sqlite and settings.bus_url == "memory://"


def test_unknown_bus_is_rejected() -> None:
    with pytest.raises(ValidationError):
        Settings(bus_url="kafka://x")


def test_environment_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIPGUARD_BUS_URL", "nats://127.0.0.1:4222")
    assert Settings().bus_url == "nats://127.0.0.1:4222"
