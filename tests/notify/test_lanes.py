"""Outbox lanes: the emergency lane is claimed first, and each destination's sends are bounded apart."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tripguard.core.clock import utcnow
from tripguard.core.db import unit_of_work
from tripguard.notify import service
from tripguard.notify.channels import RecordingChannel, Rendered
from tripguard.notify.models import OutboxMessage, Priority
from tripguard.notify.service import Claimed, Notifier, claim_due, send_all


def claim(factory: sessionmaker[Session], vault, **options) -> list[Claimed]:  # type: ignore[no-untyped-def]
    with unit_of_work(factory) as session:
        return claim_due(session, vault=vault, **options)


def queue_mix(db: Session, app) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """A webhook and a code queued long ago, then an SOS's gateway payload and contact SMS just now."""
    vault = app.state.vault
    ids = {
        "webhook": service.enqueue_webhook(db, url="http://hooks.example.com/tg", event="alert", payload={"n": 1},
                                           idempotency_key="lane-webhook").id,
        "code": service.enqueue_to_person(db, vault=vault, subject_id="psg_1", channel="sms", to="13800000001",
                                          template="verification_code", locale="en",
                                          params={"code": "111111", "minutes": 10}, idempotency_key="lane-code").id,
    }
    for message in db.scalars(select(OutboxMessage).where(OutboxMessage.id.in_(ids.values()))):
        message.next_attempt_at = utcnow() - timedelta(minutes=5)  # queued earlier: FIFO would send them first
    ids["gateway"] = service.enqueue_emergency(db, vault=vault, subject_id="psg_2", payload={"incident_id": "inc_1"},
                                               idempotency_key="lane-gateway").id
    ids["contact"] = service.enqueue_to_person(
        db, vault=vault, subject_id="psg_3", channel="sms", to="13800000003", template="sos_contact", locale="zh_CN",
        params={"name": "张*", "plate": None, "colour": None, "model": None, "link": None},
        idempotency_key="lane-contact", priority=Priority.EMERGENCY).id
    db.commit()
    return ids


def test_enqueue_stores_each_messages_lane_and_destination(db: Session, app) -> None:  # type: ignore[no-untyped-def]
    ids = queue_mix(db, app)
    stored = {m.id: (m.priority, m.destination) for m in db.scalars(select(OutboxMessage))}
    assert stored[ids["gateway"]] == (Priority.EMERGENCY, "emergency")
    assert stored[ids["contact"]] == (Priority.EMERGENCY, "sms")
    assert stored[ids["code"]] == (Priority.PEOPLE, "sms")
    assert stored[ids["webhook"]] == (Priority.SYSTEMS, "webhook http://hooks.example.com")
    assert service.webhook_destination("HTTPS://Hooks.Example.com:8443/a?b=1") == "webhook https://hooks.example.com:8443"


def test_the_emergency_lane_is_claimed_before_older_messages(db: Session, app,  # type: ignore[no-untyped-def]
                                                              session_factory: sessionmaker[Session]) -> None:
    ids = queue_mix(db, app)
    order = [c.message_id for c in claim(session_factory, app.state.vault, limit=10)]
    assert set(order[:2]) == {ids["gateway"], ids["contact"]}
    assert order[2:] == [ids["code"], ids["webhook"]]


def test_a_batch_too_small_for_everything_takes_the_emergency_lane(db: Session, app,  # type: ignore[no-untyped-def]
                                                                   session_factory: sessionmaker[Session]) -> None:
    ids = queue_mix(db, app)
    sms, gateway = RecordingChannel(name="sms"), RecordingChannel(name="emergency")
    notifier = Notifier(channels={"sms": sms, "emergency": gateway, "webhook": RecordingChannel(name="webhook")},
                        batch=2)
    assert service.dispatch_due(session_factory, vault=app.state.vault, notifier=notifier).sent == 2
    assert [m.message_id for m in gateway.sent] == [ids["gateway"]]
    assert [m.message_id for m in sms.sent] == [ids["contact"]]


def test_a_sender_claims_only_its_lanes_and_what_its_bulkheads_take(db: Session, app,  # type: ignore[no-untyped-def]
                                                                     session_factory: sessionmaker[Session]) -> None:
    ids = queue_mix(db, app)
    emergency = claim(session_factory, app.state.vault, limit=10, priorities=[Priority.EMERGENCY],
                          take=lambda destination: destination != "sms")  # the SMS bulkhead is full
    assert [c.message_id for c in emergency] == [ids["gateway"]]
    others = claim(session_factory, app.state.vault, limit=10, priorities=[Priority.PEOPLE, Priority.SYSTEMS],
                       skip_destinations=["sms"])
    assert [c.message_id for c in others] == [ids["webhook"]]
    # Refused and skipped rows are left pending and due; claimed ones are not due until the claim lapses.
    assert [c.message_id for c in claim(session_factory, app.state.vault, limit=10)] == [ids["contact"], ids["code"]]


class SlowChannel(RecordingChannel):
    """A receiver taking `seconds` per message, counting how many it holds at once."""

    def __init__(self, name: str, seconds: float) -> None:
        super().__init__(name=name)
        self.seconds = seconds
        self.at_once = 0
        self.most_at_once = 0
        self.finished_at: dict[str, float] = {}
        self._count = threading.Lock()

    def send(self, message: Rendered) -> None:
        with self._count:
            self.at_once += 1
            self.most_at_once = max(self.most_at_once, self.at_once)
        time.sleep(self.seconds)
        super().send(message)
        with self._count:
            self.at_once -= 1
            self.finished_at[message.message_id] = time.monotonic()


def test_a_batch_sends_each_destination_apart_up_to_its_cap() -> None:
    slow, fast = SlowChannel("webhook", 0.3), SlowChannel("sms", 0)
    notifier = Notifier(channels={"webhook": slow, "sms": fast}, concurrency=3)
    batch = [Claimed(f"slow-{n}", "webhook http://slow", Rendered("webhook", "http://slow", "alert", "{}", f"slow-{n}"))
             for n in range(9)] + [Claimed("fast", "sms", Rendered("sms", "138", "", "hi", "fast"))]
    started = time.monotonic()
    outcomes = send_all(notifier, batch)
    assert sorted(message_id for message_id, error in outcomes if error is None) == sorted(c.message_id for c in batch)
    assert slow.most_at_once == 3  # the cap, reached
    assert fast.finished_at["fast"] - started < 0.25  # not behind the slow receiver's first send
    assert time.monotonic() - started < 9 * 0.3  # the slow receiver's nine, three at a time
