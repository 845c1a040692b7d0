"""Alembic, configured in code: `tripguard db upgrade` and the test fixtures both come through here."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Engine

from tripguard.core.db import READ_ONLY

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option(
        "file_template", "%%(year)d%%(month).2d%%(day).2d_%%(rev)s_%%(slug)s"
    )
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


@cache
def head_revision() -> str | None:
    """The newest migration this code has. Read once per process: alembic parses every migration file to
    find it (about 60 ms), and each app made asks it (tests make one per test)."""
    return ScriptDirectory.from_config(alembic_config("")).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The migration the database is at, read on a read-only connection; raises what the database raises."""
    with engine.connect().execution_options(**{READ_ONLY: True}) as connection:
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
