"""The outbox claim on a real, committed database of this run's backend: two senders never claim one
message. On PostgreSQL the second skips the rows the first holds (and does not wait for them); on SQLite
it waits for the file's writer lock; on both, a claimed message is not due again until its claim lapses."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import BACKEND
from tripguard.core.db import make_engine, make_sessionmaker, unit_of_work
from tripguard.core.settings import Settings
from tripguard.notify.service import Claimed, claim_due, enqueue_webhook
from tripguard.vault.keys import build_vault
from tripguard.vault.service import Vault

MESSAGES = 4


@pytest.fixture
def site(cli_site: Settings) -> Iterator[tuple[sessionmaker[Session], Vault]]:
    engine: Engine = make_engine(cli_site.database_url)
    factory = make_sessionmaker(engine)
    with unit_of_work(factory) as session:
        for n in range(MESSAGES):
            enqueue_webhook(session, url="http://hooks.example.com/tg", event="alert", payload={"n": n},
                            idempotency_key=f"claim:{n}")
    yield factory, build_vault(cli_site)
    engine.dispose()


def ids(claimed: list[Claimed]) -> set[str]:
    return {c.message_id for c in claimed}


def test_two_senders_never_claim_one_message(site: tuple[sessionmaker[Session], Vault]) -> None:
    factory, vault = site
    first_session = factory()
    try:
        first = ids(claim_due(first_session, vault=vault, limit=2))  # its transaction still open: the rows held
        assert len(first) == 2
        second: list[Claimed] = []
        sender = threading.Thread(target=lambda: second.extend(_claim(factory, vault)))
        sender.start()
        if BACKEND == "postgres":
            sender.join(10)  # SKIP LOCKED: the other two at once, without waiting for the first's commit
            assert not sender.is_alive(), "the second sender waited for the first one's rows"
        first_session.commit()
    finally:
        first_session.close()
    sender.join(30)
    assert not sender.is_alive()
    assert len(ids(second)) == MESSAGES - len(first) and not ids(second) & first
    assert _claim(factory, vault) == []  # every message claimed: none due again until a claim lapses


def _claim(factory: sessionmaker[Session], vault: Vault) -> list[Claimed]:
    with unit_of_work(factory) as session:
        return claim_due(session, vault=vault, limit=MESSAGES)
