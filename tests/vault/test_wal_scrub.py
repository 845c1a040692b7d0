"""After an erasure commits on SQLite, the shredded key's bytes are in none of the database's files (the
database, its -wal and -shm), and emptying the log never holds up an SOS write."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, text

from tests.conftest import BACKEND
from tests.vault.test_backup import erase, site  # noqa: F401 (site: the fixture)
from tripguard.core.db import READ_ONLY, make_engine, make_sessionmaker
from tripguard.core.db_timeouts import emergency_timeouts
from tripguard.core.settings import Settings
from tripguard.core.sqlite_scrub import scrubber_for
from tripguard.vault.models import DataKey

pytestmark = pytest.mark.skipif(BACKEND != "sqlite", reason="SQLite's write-ahead log")


def database_file(settings: Settings) -> Path:
    return Path(settings.database_url.split("///", 1)[1])


def raw_bytes(path: Path) -> bytes:
    return b"".join(Path(f"{path}{suffix}").read_bytes() for suffix in ("", "-wal", "-shm")
                    if Path(f"{path}{suffix}").exists())


def wrapped_keys(settings: Settings) -> dict[str, bytes]:
    engine = make_engine(settings.database_url)
    with make_sessionmaker(engine)() as session:
        keys = {k.subject_id: k.wrapped_key for k in session.scalars(select(DataKey)) if k.wrapped_key}
    engine.dispose()
    return keys


@pytest.fixture
def server_connection(site: Settings) -> Iterator[sqlite3.Connection]:  # noqa: F811
    """An open connection, as a running server holds: without one, SQLite empties the log when the last
    connection closes, and the test would prove nothing."""
    connection = sqlite3.connect(database_file(site))
    connection.execute("SELECT count(*) FROM privacy_subjects").fetchall()
    yield connection
    connection.close()


def test_a_shredded_key_is_in_none_of_sqlites_files(site: Settings,  # noqa: F811
                                                    server_connection: sqlite3.Connection) -> None:
    path = database_file(site)
    keys = wrapped_keys(site)
    assert keys["psg_erase"] in raw_bytes(path)  # the search can see a key where it is

    erase(site, "psg_erase")
    assert scrubber_for(str(path)).wait(30)

    files = raw_bytes(path)
    assert keys["psg_erase"] not in files
    assert keys["psg_keep"] in files  # the others are where they were
    assert not Path(f"{path}-wal").exists() or Path(f"{path}-wal").stat().st_size == 0


def test_emptying_the_log_never_holds_up_an_sos_write(site: Settings,  # noqa: F811
                                                      server_connection: sqlite3.Connection) -> None:
    path = database_file(site)
    keys = wrapped_keys(site)
    reports = make_engine(site.database_url)  # a long read (a report) that keeps old pages in use
    reader = reports.connect().execution_options(**{READ_ONLY: True})
    reader.begin()
    reader.execute(text("SELECT count(*) FROM privacy_subjects")).scalar()

    erase(site, "psg_erase")
    scrubber = scrubber_for(str(path))
    sos = make_engine(site.database_url, timeouts=emergency_timeouts(site), urgent=True)
    slowest = 0.0
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:  # the scrubber keeps trying while the reader stays
        started = time.perf_counter()
        with sos.begin() as connection:
            connection.execute(text("UPDATE privacy_subjects SET kind = kind WHERE id = 'psg_keep'"))
        slowest = max(slowest, time.perf_counter() - started)
        time.sleep(0.02)
    assert not scrubber.wait(0)  # it could not finish: the reader still needs the old pages
    assert slowest < 0.25, f"an SOS write waited {slowest:.3f} s"

    reader.rollback()
    reader.close()
    reports.dispose()
    assert scrubber.wait(60)
    assert keys["psg_erase"] not in raw_bytes(path)
    sos.dispose()
