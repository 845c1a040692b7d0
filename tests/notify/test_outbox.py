"""The outbox: queued in the caller's transaction, sent at least once, retried, sealed for people."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from sqlalchemy.orm import Session, sessionmaker

from tripguard.core.clock import utcnow
from tripguard.notify import service
from tripguard.notify.channels import RecordingChannel, Rendered, TransientError, WebhookChannel
from tripguard.notify.models import OutboxMessage
from tripguard.notify.service import Notifier, dispatch_due


class FlakyChannel(RecordingChannel):
    def __init__(self, failures: int) -> None:
        super().__init__(name="sms")
        self.failures = failures
        self.attempted: list[Rendered] = []

    def send(self, message: Rendered) -> None:
        self.attempted.append(message)
        if self.failures > 0:
            self.failures -= 1
            raise TransientError("gateway timeout")
        super().send(message)


def queue_code(db: Session, app, key: str = "code-1", locale: str = "zh_CN") -> OutboxMessage:  # type: ignore[no-untyped-def]
    return service.enqueue_to_person(db, vault=app.state.vault, subject_id="psg_42", channel="sms", to="13800004242",
                                     template="verification_code", locale=locale,
                                     params={"code": "493817", "minutes": 10}, idempotency_key=key)


def test_enqueue_is_idempotent_and_sealed(db: Session, app) -> None:  # type: ignore[no-untyped-def]
    first = queue_code(db, app)
    again = queue_code(db, app)
    assert first.id == again.id
    assert b"13800004242" not in first.sealed_content and b"493817" not in first.sealed_content  # type: ignore[operator]


def test_dispatch_sends_once(db: Session, app, session_factory: sessionmaker[Session]) -> None:  # type: ignore[no-untyped-def]
    queue_code(db, app)
    queue_code(db, app, key="code-2", locale="en")
    db.commit()
    sms = RecordingChannel(name="sms")
    result = dispatch_due(session_factory, vault=app.state.vault, notifier=Notifier(channels={"sms": sms}))
    assert result.sent == 2
    assert dispatch_due(session_factory, vault=app.state.vault, notifier=Notifier(channels={"sms": sms})).sent == 0
    bodies = sorted(m.body for m in sms.sent)
    assert any("验证码是 493817" in b for b in bodies) and any("Your code is 493817" in b for b in bodies)
    assert {m.to for m in sms.sent} == {"13800004242"}


def test_a_backlog_is_sent_in_batches_until_none_is_full(db: Session, app,  # type: ignore[no-untyped-def]
                                                        session_factory: sessionmaker[Session]) -> None:
    for n in range(7):
        queue_code(db, app, key=f"burst-{n}")
    db.commit()
    sms = RecordingChannel(name="sms")
    notifier = Notifier(channels={"sms": sms}, batch=3)
    assert service.dispatch_backlog(session_factory, vault=app.state.vault, notifier=notifier, rounds=2).sent == 6
    assert service.dispatch_backlog(session_factory, vault=app.state.vault, notifier=notifier).sent == 1
    assert len(sms.sent) == 7


def test_transient_failures_back_off_then_die(db: Session, app, session_factory: sessionmaker[Session]) -> None:  # type: ignore[no-untyped-def]
    message = queue_code(db, app)
    db.commit()
    notifier = Notifier(channels={"sms": FlakyChannel(failures=100)}, max_attempts=3)
    for attempt in range(1, 4):
        result = dispatch_due(session_factory, vault=app.state.vault, notifier=notifier)
        db.refresh(message)
        assert message.attempts == attempt
        if attempt < 3:
            assert result.retried == 1 and message.next_attempt_at > utcnow()
            message.next_attempt_at = utcnow() - timedelta(seconds=1)  # skip the wait
            db.commit()
    assert message.status == "dead" and message.last_error == "gateway timeout"


def test_a_retry_succeeds(db: Session, app, session_factory: sessionmaker[Session]) -> None:  # type: ignore[no-untyped-def]
    message = queue_code(db, app)
    db.commit()
    channel = FlakyChannel(failures=1)
    dispatch_due(session_factory, vault=app.state.vault, notifier=Notifier(channels={"sms": channel}))
    db.refresh(message)
    message.next_attempt_at = utcnow() - timedelta(seconds=1)
    db.commit()
    assert dispatch_due(session_factory, vault=app.state.vault, notifier=Notifier(channels={"sms": channel})).sent == 1
    assert len(channel.sent) == 1


def test_message_to_an_erased_person_is_not_sent(db: Session, app, session_factory: sessionmaker[Session]) -> None:  # type: ignore[no-untyped-def]
    message = queue_code(db, app)
    app.state.vault.shred(db, subject_id="psg_42", reason="subject_request")
    db.commit()
    sms = RecordingChannel(name="sms")
    assert dispatch_due(session_factory, vault=app.state.vault, notifier=Notifier(channels={"sms": sms})).dead == 1
    db.refresh(message)
    assert message.status == "dead" and not sms.sent


@pytest.fixture
def webhook_receiver() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    received: list[tuple[dict[str, str], bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hooks/tripguard", received
    server.shutdown()


def test_webhook_is_signed(db: Session, app, session_factory, webhook_receiver) -> None:  # type: ignore[no-untyped-def]
    url, received = webhook_receiver
    service.enqueue_webhook(db, url=url, event="driver.suspended", payload={"driver_id": "drv_7"},
                            idempotency_key="evt-1")
    db.commit()
    secret = "webhook-secret-for-tests"
    result = dispatch_due(session_factory, vault=app.state.vault,
                          notifier=Notifier(channels={"webhook": WebhookChannel(secret=secret)}))
    assert result.sent == 1
    headers, body = received[0]
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert headers["x-tripguard-signature"] == f"sha256={expected}"
    assert json.loads(body)["data"]["driver_id"] == "drv_7" and json.loads(body)["event"] == "driver.suspended"


def test_every_attempt_carries_the_same_message_id(db: Session, app, session_factory: sessionmaker[Session]) -> None:  # type: ignore[no-untyped-def]
    """A receiver de-duplicates on it: a retry after a lost answer is the same message, not a second SMS."""
    message = queue_code(db, app)
    db.commit()
    flaky = FlakyChannel(failures=1)
    dispatch_due(session_factory, vault=app.state.vault, notifier=Notifier(channels={"sms": flaky}))
    db.refresh(message)
    message.next_attempt_at = utcnow() - timedelta(seconds=1)
    db.commit()
    dispatch_due(session_factory, vault=app.state.vault, notifier=Notifier(channels={"sms": flaky}))
    assert [m.message_id for m in flaky.attempted] == [message.id, message.id]
