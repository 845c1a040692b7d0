"""The embedded database: SQLite writers of one process queue on a lock instead of polling SQLite."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import event, text

from tripguard.core.db import make_engine


@pytest.fixture
def sqlite_engine(tmp_path: Path):  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{tmp_path}/queue.db")

    @event.listens_for(engine, "connect")
    def no_polling(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        # Without the queue a second writer now fails at once ("database is locked") instead of polling.
        dbapi_connection.execute("PRAGMA busy_timeout=0")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE events (n INTEGER)"))
    yield engine
    engine.dispose()


def _second_writer(engine, order: list[str], started: threading.Event) -> threading.Thread:  # type: ignore[no-untyped-def]
    def write() -> None:
        started.set()
        with engine.begin() as connection:
            order.append("second begins")
            connection.execute(text("INSERT INTO events VALUES (2)"))

    thread = threading.Thread(target=write)
    thread.start()
    started.wait()
    return thread


@pytest.mark.parametrize("ending", ["commit", "rollback", "close"])
def test_a_writer_waits_for_the_one_before_it_however_that_one_ends(sqlite_engine, ending: str) -> None:  # type: ignore[no-untyped-def]
    order: list[str] = []
    connection = sqlite_engine.connect()
    transaction = connection.begin()
    connection.execute(text("INSERT INTO events VALUES (1)"))
    second = _second_writer(sqlite_engine, order, threading.Event())
    second.join(0.3)
    assert second.is_alive() and order == []  # queued behind the first writer, not failing or polling
    order.append(f"first {ending}s")
    if ending == "commit":
        transaction.commit()
    elif ending == "rollback":
        transaction.rollback()
    connection.close()
    second.join(5)
    assert not second.is_alive() and order == [f"first {ending}s", "second begins"]
    with sqlite_engine.connect() as check:
        expected = [1, 2] if ending == "commit" else [2]
        assert [row[0] for row in check.execute(text("SELECT n FROM events ORDER BY n"))] == expected


def test_readers_do_not_queue(sqlite_engine) -> None:  # type: ignore[no-untyped-def]
    from tripguard.core.db import READ_ONLY

    with sqlite_engine.connect() as writer:
        writer.begin()
        writer.execute(text("INSERT INTO events VALUES (1)"))
        with sqlite_engine.connect().execution_options(**{READ_ONLY: True}) as reader, reader.begin():
            assert reader.execute(text("SELECT count(*) FROM events")).scalar() == 0  # the snapshot before
