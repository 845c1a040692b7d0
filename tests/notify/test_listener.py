"""PostgreSQL NOTIFY wakes the emergency sender when an SOS's transaction commits, and keeps doing so
after its connection is cut."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from tests.conftest import BACKEND
from tripguard.core.db import make_engine, make_sessionmaker, unit_of_work
from tripguard.core.settings import Settings
from tripguard.notify.listener import APPLICATION_NAME, EmergencyListener
from tripguard.notify.service import enqueue_emergency
from tripguard.vault.keys import build_vault

pytestmark = pytest.mark.skipif(BACKEND != "postgres", reason="LISTEN/NOTIFY is PostgreSQL's")


class Woken:
    def __init__(self) -> None:
        self.count = 0
        self.event = threading.Event()

    def __call__(self) -> None:
        self.count += 1
        self.event.set()

    def expect(self, seconds: float) -> bool:
        woken = self.event.wait(seconds)
        self.event.clear()
        return woken


@pytest.fixture
def listening(cli_site: Settings) -> Iterator[tuple[EmergencyListener, Woken]]:
    woken = Woken()
    listener = EmergencyListener(cli_site.database_url, on_notify=woken, wait=0.1)
    stop = threading.Event()
    thread = threading.Thread(target=listener.run, args=(stop,), daemon=True)
    thread.start()
    assert listener.listening.wait(10)
    assert woken.expect(1)  # once on connecting: for what was stored while nobody listened
    yield listener, woken
    stop.set()
    thread.join(10)


def queue_emergency(cli_site: Settings, key: str, *, commit: bool) -> None:
    engine = make_engine(cli_site.database_url)
    factory = make_sessionmaker(engine)
    vault = build_vault(cli_site)
    try:
        with factory() as session:
            for n in range(3):  # one notification per transaction, however many messages
                enqueue_emergency(session, vault=vault, subject_id="psg_1", payload={"incident_id": key},
                                  idempotency_key=f"{key}:{n}")
            session.flush()
            time.sleep(0.3)  # the transaction is open: nothing is delivered yet
            if commit:
                session.commit()
            else:
                session.rollback()
    finally:
        engine.dispose()


def test_a_committed_emergency_message_wakes_the_listener_and_a_rolled_back_one_does_not(
        cli_site: Settings, listening: tuple[EmergencyListener, Woken]) -> None:
    _, woken = listening
    queue_emergency(cli_site, "rolled-back", commit=False)
    assert not woken.expect(0.5)
    started = time.monotonic()
    queue_emergency(cli_site, "committed", commit=True)
    assert woken.expect(2)
    assert time.monotonic() - started < 1
    assert not woken.expect(0.3)  # one wake-up for the transaction


def test_the_listener_reconnects_after_its_connection_is_killed(cli_site: Settings,
                                                                 listening: tuple[EmergencyListener, Woken]) -> None:
    listener, woken = listening
    engine = make_engine(cli_site.database_url)
    try:
        with unit_of_work(make_sessionmaker(engine)) as session:
            killed = session.scalar(text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                         "WHERE application_name = :name AND datname = current_database()"),
                                    {"name": APPLICATION_NAME})
        assert killed == 1
        assert woken.expect(10)  # reconnected, and woke the sender for what it may have missed
        assert listener.connections == 2 and listener.listening.is_set()
        queue_emergency(cli_site, "after", commit=True)
        assert woken.expect(2)
    finally:
        engine.dispose()
