"""The outbox's senders: a slow webhook host holds only its own bulkhead, never another host or the emergency lane."""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import fresh_database
from tests.notify.receivers import webhook_receiver
from tripguard.core.db import make_engine, make_sessionmaker, unit_of_work
from tripguard.notify import service
from tripguard.notify.channels import RecordingChannel, WebhookChannel
from tripguard.notify.models import OutboxMessage
from tripguard.notify.senders import EMERGENCY_LANE, OTHER_LANES, OutboxSenders, Sender
from tripguard.notify.service import Notifier

SLOW = 0.5  # seconds the slow receiver takes per webhook


@pytest.fixture(scope="module")
def committed_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """A database of this module's own, with real commits: the senders' threads each take a connection
    of their own. (On the suite's one connection, their savepoints interleave: "savepoint does not exist".)"""
    url = fresh_database(f"tg_senders_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}",
                         tmp_path_factory.mktemp("senders"))
    engine = make_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture
def session_factory(committed_engine: Engine) -> sessionmaker[Session]:
    factory = make_sessionmaker(committed_engine)
    with unit_of_work(factory) as session:  # each test starts with an empty outbox
        session.execute(delete(OutboxMessage))
    return factory


def queue_webhooks(db: Session, url: str, count: int, tag: str) -> list[str]:
    ids = [service.enqueue_webhook(db, url=url, event="alert", payload={"n": n}, idempotency_key=f"{tag}:{n}").id
           for n in range(count)]
    db.commit()
    return ids


def notifier() -> Notifier:
    return Notifier(channels={"webhook": WebhookChannel(secret="webhook-secret-for-tests"),
                              "emergency": RecordingChannel(name="emergency"), "sms": RecordingChannel(name="sms")})


@contextmanager
def running(sender: Sender) -> Iterator[None]:
    stop = threading.Event()
    thread = threading.Thread(target=sender.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        sender.wake.set()
        thread.join(30)


def test_a_slow_webhook_host_does_not_delay_another_hosts(db: Session, app,  # type: ignore[no-untyped-def]
                                                          session_factory: sessionmaker[Session]) -> None:
    with webhook_receiver(SLOW) as slow, webhook_receiver(0) as fast:
        slow_ids = queue_webhooks(db, slow.url, 120, "slow")  # a minute of work at 2 a second: queued first
        fast_ids = queue_webhooks(db, fast.url, 10, "fast")
        sender = Sender("general", session_factory, app.state.vault, notifier(), OTHER_LANES, threading.Lock(),
                        concurrency=4, poll=0.2)
        started = time.monotonic()
        slow_host = service.webhook_destination(slow.url)
        most_claimed = 0
        with running(sender):
            while len(fast.arrivals) < len(fast_ids) and time.monotonic() - started < 10:
                most_claimed = max(most_claimed, sender.in_flight(slow_host))
                time.sleep(0.01)
            fast_done = time.monotonic() - started
            assert fast_done < 5, f"the other host's webhooks took {fast_done:.1f} s behind the slow host's"
            while time.monotonic() - started < fast_done + 2 * SLOW:
                most_claimed = max(most_claimed, sender.in_flight(slow_host))
                time.sleep(0.01)
        assert slow.most_at_once == most_claimed == 4  # the slow host's bulkhead: full, and no more claimed
        assert set(fast.arrivals) == set(fast_ids)
        assert 4 <= len(slow.arrivals) < len(slow_ids)
    statuses = Counter(db.scalars(select(OutboxMessage.status).where(OutboxMessage.id.in_(fast_ids))))
    assert statuses == Counter({"sent": len(fast_ids)})  # recorded as they finished, not at the end of a batch


def test_the_emergency_sender_sends_while_every_webhook_bulkhead_is_busy(db: Session, app,  # type: ignore[no-untyped-def]
                                                                         session_factory: sessionmaker[Session],
                                                                         settings) -> None:
    chosen = notifier()
    with webhook_receiver(SLOW) as slow:
        queue_webhooks(db, slow.url, 200, "slow")
        senders = OutboxSenders(session_factory, app.state.vault, chosen, database_url="sqlite://", poll=30)
        assert senders.listener is None
        senders.start()
        try:
            deadline = time.monotonic() + 10
            while slow.at_once < 4 and time.monotonic() < deadline:  # the general sender is deep in the webhooks
                time.sleep(0.02)
            gateway = service.enqueue_emergency(db, vault=app.state.vault, subject_id="psg_9",
                                                payload={"incident_id": "inc_9"}, idempotency_key="sos:inc_9:gateway")
            db.commit()
            pressed = time.monotonic()
            senders.wake.set()  # as the app does once an SOS is stored
            sent = chosen.channels["emergency"].sent  # type: ignore[attr-defined]
            while not sent and time.monotonic() - pressed < 10:
                time.sleep(0.01)
            took = time.monotonic() - pressed
        finally:
            senders.stop()
    assert [m.message_id for m in sent] == [gateway.id]
    assert took < 1, f"the emergency message left {took:.2f} s after it was queued"
    assert senders.emergency.priorities == EMERGENCY_LANE
    # Each lane's bulkheads have the cap set for it: a burst of SOS drains at its own pace.
    assert (senders.emergency.concurrency, senders.general.concurrency) == (16, 4)


def test_a_send_that_raises_is_retried_and_frees_its_place(db: Session, app,  # type: ignore[no-untyped-def]
                                                           session_factory: sessionmaker[Session]) -> None:
    class BrokenChannel(RecordingChannel):
        attempted = 0

        def send(self, message):  # type: ignore[no-untyped-def]
            self.attempted += 1
            raise RuntimeError("a bug in an adapter")

    ids = [service.enqueue_to_person(db, vault=app.state.vault, subject_id="psg_1", channel="sms", to="13800000001",
                                     template="verification_code", locale="en", params={"code": "1", "minutes": 1},
                                     idempotency_key=f"broken:{n}").id for n in range(3)]
    db.commit()
    broken = BrokenChannel(name="sms")
    sender = Sender("general", session_factory, app.state.vault, Notifier(channels={"sms": broken}),
                    OTHER_LANES, threading.Lock(), concurrency=1, poll=0.05)
    with running(sender):  # one at a time (cap 1): each place is given back after its failure
        deadline = time.monotonic() + 10
        while broken.attempted < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
    assert sender.in_flight() == 0
    stored = list(db.scalars(select(OutboxMessage).where(OutboxMessage.id.in_(ids))
                             .execution_options(populate_existing=True)))
    assert [(m.status, m.attempts, m.last_error) for m in stored] == [("pending", 1, "a bug in an adapter")] * 3


def test_outcomes_of_a_round_that_failed_are_recorded_by_the_next(db: Session, app,  # type: ignore[no-untyped-def]
                                                                   session_factory: sessionmaker[Session]) -> None:
    message = service.enqueue_emergency(db, vault=app.state.vault, subject_id="psg_1", payload={"incident_id": "inc_1"},
                                        idempotency_key="sos:inc_1:gateway")
    db.commit()
    gateway = RecordingChannel(name="emergency")
    sender = Sender("emergency", session_factory, app.state.vault, Notifier(channels={"emergency": gateway}),
                    EMERGENCY_LANE, threading.Lock())
    assert sender.round()  # claimed, and handed to the gateway's bulkhead
    deadline = time.monotonic() + 5
    while sender.in_flight() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(gateway.sent) == 1

    def database_away() -> Session:
        raise ConnectionError("the database is away")

    sender.factory = database_away  # type: ignore[assignment]
    with pytest.raises(ConnectionError):
        sender.round()
    sender.factory = session_factory
    assert not sender.round()
    db.refresh(message)
    assert (message.status, message.attempts, len(gateway.sent)) == ("sent", 1, 1)  # not sent again later
