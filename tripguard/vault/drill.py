"""The restore drill (`tripguard backup drill FILE`): restore a backup into a throw-away database, beside the
live one and never into it, and count what came back.

The scratch database is a new SQLite file in a private folder next to the live database file, or, on
PostgreSQL, a new database on the same server (the role needs CREATEDB), migrated to the backup's schema
revision. The restore is the real one (`restore_backup`, the erasure journal re-applied); then every
table of the scratch database is counted and compared with the counts the backup's header took in its
snapshot. The scratch database is dropped whatever happens. The caller records the drill in the live
audit log, where `tripguard security check` looks for it.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from tripguard.core.db import make_engine
from tripguard.core.db_timeouts import maintenance_timeouts
from tripguard.core.migrations import upgrade
from tripguard.core.settings import Settings
from tripguard.vault import backup
from tripguard.vault.backup import BackupError, BackupSummary
from tripguard.vault.journal import Erasure
from tripguard.vault.service import Vault


@dataclass(frozen=True)
class DrillReport:
    summary: BackupSummary
    backend: str
    counted: dict[str, int]  # rows in the scratch database once the restore committed
    added_by_restore: dict[str, int]  # rows the restore changed (erasures re-applied, indexes rebuilt)
    seconds: float


def _postgres_url(url: str) -> str:
    return "postgresql+psycopg://" + url.removeprefix("postgresql://") if url.startswith("postgresql://") else url


@contextlib.contextmanager
def scratch_database(settings: Settings) -> Iterator[str]:
    """The URL of a new, empty database of the live one's kind, dropped when the block ends."""
    if settings.is_sqlite:
        live = Path(settings.database_url.split("///", 1)[-1])
        folder = Path(tempfile.mkdtemp(prefix="tripguard-drill-", dir=live.parent if live.name else None))
        try:
            yield f"sqlite:///{folder / 'drill.db'}"
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    name = f"tripguard_drill_{secrets.token_hex(6)}"
    admin = make_engine(settings.database_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        try:
            with admin.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
        except DBAPIError as exc:
            raise BackupError(f"the drill could not create a scratch database on the server "
                              f"({type(exc.orig).__name__}): the database role needs CREATEDB") from exc
        try:
            yield make_url(_postgres_url(settings.database_url)).set(database=name).render_as_string(
                hide_password=False)
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def _schema_of(path: Path) -> str | None:
    with path.open("rb") as handle:
        header, _ = backup._read_header(handle)
    if "schema_revision" not in header:
        raise BackupError("the backup header is damaged: it has no schema_revision")
    return header["schema_revision"] if header["schema_revision"] is None else str(header["schema_revision"])


def _migrate(url: str, revision: str | None) -> None:
    if revision is None:
        return
    try:
        upgrade(url, revision)
    except Exception as exc:  # alembic: a revision this TripGuard does not know
        raise BackupError(f"the scratch database could not be migrated to the backup's schema {revision} "
                          f"({type(exc).__name__}): drill it with the TripGuard version that made it") from exc


def run_drill(settings: Settings, vault: Vault, path: Path, *, keys_path: Path | None = None,
              after_erasures: Callable[[Session, list[Erasure]], None] | None = None,
              rebuild_blind_indexes: Callable[[Session, Vault], object] | None = None) -> DrillReport:
    """Restore `path` into a scratch database and count it; raises BackupError when anything does not match."""
    started = time.monotonic()
    revision = _schema_of(path)
    with scratch_database(settings) as url:
        _migrate(url, revision)
        engine = make_engine(url, timeouts=maintenance_timeouts(settings), poolclass=NullPool)
        try:
            summary = backup.restore_backup(engine, vault, path, keys_path=keys_path, after_erasures=after_erasures,
                                            rebuild_blind_indexes=rebuild_blind_indexes)
            with engine.connect() as connection:
                counted = {t.name: int(connection.execute(select(func.count()).select_from(t)).scalar_one())
                           for t in backup.metadata.sorted_tables}
        finally:
            engine.dispose()
    expected = {name: summary.rows.get(name, 0) + summary.changed_by_restore.get(name, 0) for name in counted}
    wrong = sorted(name for name in counted if counted[name] != expected[name])
    if wrong:
        name = wrong[0]
        raise BackupError(f"drill failed: table {name} holds {counted[name]} rows after the restore, the "
                          f"backup {summary.rows.get(name, 0)} (and the restore changed "
                          f"{summary.changed_by_restore.get(name, 0):+d})")
    return DrillReport(summary=summary, backend=engine.dialect.name, counted=counted,
                       added_by_restore=summary.changed_by_restore,
                       seconds=time.monotonic() - started)
