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
    settings = Settings(env="production", key_dir=tmp_path, secret_key="x" * 16 + "y" * 16 + "z",
                        keyring_passphrase="a real passphrase from the secret store")
    with pytest.raises(SettingsError, match="ALLOW_RECORDING_CHANNELS"):  # nobody would be told of an SOS
        settings.check_safe_to_start()
    with pytest.raises(SettingsError, match="ALLOW_SIMULATED_SCREENING"):  # nobody would really be screened
        settings.model_copy(update={"allow_recording_channels": True}).check_safe_to_start()
    settings.model_copy(update={"allow_recording_channels": True,
                                "allow_simulated_screening": True}).check_safe_to_start()
    real_agency = settings.model_copy(update={"allow_recording_channels": True, "screening_agency": "http"})
    with pytest.raises(SettingsError, match="SCREENING_CALLBACK_SECRET"):
        real_agency.check_safe_to_start()
    real_agency.model_copy(update={"screening_agency_url": "https://agency.example", "screening_agency_api_key": "k",
                                   "screening_callback_secret": "s" * 32}).check_safe_to_start()


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


def test_a_bare_serve_never_runs_on_a_public_constant(tmp_path: Path) -> None:
    """Secrets not configured are generated once into the key folder (0600) and kept."""
    from tripguard.core.settings import DEV_KEYRING_PASSPHRASE, DEV_SECRET, with_generated_secrets

    first = with_generated_secrets(Settings(_env_file=None, key_dir=tmp_path))  # type: ignore[call-arg]
    assert first.secret_key.get_secret_value() != DEV_SECRET and len(first.secret_key.get_secret_value()) >= 32
    assert first.keyring_passphrase.get_secret_value() != DEV_KEYRING_PASSPHRASE
    assert first.subject_token_secret is not None
    again = with_generated_secrets(Settings(_env_file=None, key_dir=tmp_path))  # type: ignore[call-arg]
    assert again.secret_key == first.secret_key and again.subject_token_secret == first.subject_token_secret
    # the screening agency's callbacks can be tried in development (continuous monitoring)
    assert first.screening_callback_secret is not None
    assert again.screening_callback_secret == first.screening_callback_secret
    for name in ("secret-key", "keyring-passphrase", "subject-token-secret", "screening-callback-secret"):
        assert (tmp_path / name).stat().st_mode & 0o077 == 0


def test_demo_token_opens_the_app_routes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from tripguard.cli import app as cli
    from tripguard.core.settings import get_settings
    from tripguard.security.subject_tokens import verify_subject_token

    monkeypatch.setenv("TRIPGUARD_KEY_DIR", str(tmp_path))
    monkeypatch.setenv("TRIPGUARD_ENV", "development")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli, ["demo", "token", "--role", "passenger", "--sub", "P1"])
        assert result.exit_code == 0, result.output
        claims = verify_subject_token(result.output.strip(), get_settings())
        assert (claims.subject_id, claims.role.value) == ("P1", "passenger")
        bad = CliRunner().invoke(cli, ["demo", "token", "--role", "safety_agent"])
        assert bad.exit_code == 2
    finally:
        get_settings.cache_clear()
