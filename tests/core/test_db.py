"""The embedded database: SQLite writers of one process queue instead of polling SQLite, one queue per
file shared by every engine on it, the emergency lane's writers first."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import event, text

from tripguard.core.db import make_engine
from tripguard.core.sqlite_writer import WriterQueue, writer_queue_for


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


def _without_polling(engine):  # type: ignore[no-untyped-def]
    @event.listens_for(engine, "connect")
    def no_polling(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_connection.execute("PRAGMA busy_timeout=0")
    return engine


def _writer(engine, order: list[str], name: str) -> threading.Thread:  # type: ignore[no-untyped-def]
    def write() -> None:
        with engine.begin() as connection:
            order.append(f"{name} begins")
            connection.execute(text("INSERT INTO events VALUES (3)"))

    thread = threading.Thread(target=write)
    thread.start()
    return thread


def test_engines_on_one_file_share_its_writer_queue(sqlite_engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    emergency = _without_polling(make_engine(f"sqlite:///{tmp_path}/queue.db", urgent=True))
    try:
        order: list[str] = []
        with sqlite_engine.begin() as bulk:
            bulk.execute(text("INSERT INTO events VALUES (1)"))
            second = _writer(emergency, order, "emergency")
            second.join(0.3)
            assert second.is_alive() and order == []  # queued, not failing with "database is locked"
            order.append("bulk commits")
        second.join(5)
        assert order == ["bulk commits", "emergency begins"]
    finally:
        emergency.dispose()


def test_an_emergency_writer_goes_ahead_of_waiting_bulk_writers(sqlite_engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    emergency = _without_polling(make_engine(f"sqlite:///{tmp_path}/queue.db", urgent=True))
    try:
        order: list[str] = []
        with sqlite_engine.begin() as holder:
            holder.execute(text("INSERT INTO events VALUES (1)"))
            bulk = [_writer(sqlite_engine, order, "bulk") for _ in range(3)]
            time.sleep(0.2)  # the bulk writers queue first
            urgent = _writer(emergency, order, "emergency")
            time.sleep(0.2)
            assert order == []
        for thread in [*bulk, urgent]:
            thread.join(5)
        assert order == ["emergency begins", "bulk begins", "bulk begins", "bulk begins"]
    finally:
        emergency.dispose()


def test_an_urgent_writer_that_gives_up_lets_the_others_go() -> None:
    queue = WriterQueue()
    assert queue.acquire(urgent=False, timeout=1)
    assert not queue.acquire(urgent=True, timeout=0.1)  # the holder did not finish in its time
    queue.release()
    assert queue.acquire(urgent=False, timeout=0.1)  # nobody urgent is waiting any more


def test_each_file_has_one_queue(tmp_path: Path) -> None:
    assert writer_queue_for(str(tmp_path / "a.db")) is writer_queue_for(str(tmp_path / "." / "a.db"))
    assert writer_queue_for(str(tmp_path / "a.db")) is not writer_queue_for(str(tmp_path / "b.db"))
    assert writer_queue_for(":memory:") is not writer_queue_for(":memory:")


def test_a_bulk_writer_never_takes_the_turn_of_a_waiting_urgent_one() -> None:
    queue = WriterQueue()
    assert queue.acquire(urgent=False, timeout=1)
    got: list[bool] = []
    urgent = threading.Thread(target=lambda: got.append(queue.acquire(urgent=True, timeout=5)))
    urgent.start()
    time.sleep(0.2)  # the urgent writer waits
    queue.release()
    assert not queue.acquire(urgent=False, timeout=0)  # free this instant, but the urgent writer is next
    urgent.join(5)
    assert got == [True]
    queue.release()
