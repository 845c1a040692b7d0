from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import fresh_database, make_settings
from tripguard.core.db import make_engine, make_sessionmaker, unit_of_work
from tripguard.core.settings import Settings
from tripguard.regulator.models import Feed, Lane, PlannedOutage, Upload
from tripguard.vault.keys import build_vault
from tripguard.vault.service import Vault


@pytest.fixture
def vault(settings: Settings) -> Vault:
    return build_vault(settings)


@pytest.fixture(scope="module")
def committed_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A database of the module's own with real commits, for threads that each take a connection."""
    return fresh_database(f"tg_regulator_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}",
                          tmp_path_factory.mktemp("regulator"))


@pytest.fixture(scope="module")
def committed_engine(committed_url: str) -> Iterator[Engine]:
    engine = make_engine(committed_url)
    yield engine
    engine.dispose()


@pytest.fixture
def committed(committed_engine: Engine) -> sessionmaker[Session]:
    factory = make_sessionmaker(committed_engine)
    with unit_of_work(factory) as session:  # each test starts with an empty feed
        for model in (Upload, Feed, Lane, PlannedOutage):
            session.execute(delete(model))
    return factory


@pytest.fixture(scope="module")
def committed_keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("regulator-keys")


@pytest.fixture(scope="module")
def committed_vault(committed_url: str, committed_keys: Path) -> Vault:
    return build_vault(make_settings(committed_url, committed_keys))
