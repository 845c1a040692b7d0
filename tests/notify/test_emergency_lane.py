"""An SOS's police payload and contact SMS leave within a second, however many slow webhooks are queued.

Hundreds of webhooks wait for a receiver (a real HTTP server here) answering each after half a
second; the outbox is deep in them when the SOS is pressed. Embedded: the server's own senders,
woken in process. Scale-out: the press is stored by this process (the API replica) and sent by a
`tripguard worker outbox` process polling only every 30 s, so only PostgreSQL NOTIFY can wake it.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import or_, select

from tests.conftest import BACKEND, make_settings
from tests.notify.receivers import Receiver, webhook_receiver
from tests.processes import TRIPGUARD, process_env
from tripguard.app import create_app
from tripguard.core.clock import utcnow
from tripguard.core.db import unit_of_work
from tripguard.core.settings import Settings
from tripguard.notify.models import OutboxMessage
from tripguard.notify.service import enqueue_webhook
from tripguard.safety.models import EmergencyContact
from tripguard.security.auth import resolve_principal
from tripguard.security.permissions import Role
from tripguard.security.principal import Principal

WEBHOOKS = 300
SLOW = 0.5  # seconds per webhook: 150 s of work at one at a time
WEBHOOK_SECRET = "webhook-secret-0123456789"


def lane_app(site: Settings, **overrides: object) -> FastAPI:
    app = create_app(make_settings(site.database_url, site.key_dir, webhook_secret=WEBHOOK_SECRET, **overrides))
    app.dependency_overrides[resolve_principal] = lambda: Principal.for_roles("subject", "P7",
                                                                              frozenset({Role.PASSENGER}))
    return app


def with_a_verified_contact(client: TestClient, app: FastAPI) -> None:
    added = client.post("/api/v1/me/contacts", json={"name": "王芳", "phone": "13800005678"})
    assert added.status_code == 201, added.text
    with unit_of_work(app.state.sessionmaker) as session:
        contact = session.get(EmergencyContact, added.json()["id"])
        assert contact is not None
        contact.verified_at = contact.created_at
        for message in session.scalars(select(OutboxMessage)):  # the verification code: not what is measured
            message.status = "sent"


def queue_slow_webhooks(app: FastAPI, receiver: Receiver) -> None:
    with unit_of_work(app.state.sessionmaker) as session:
        for n in range(WEBHOOKS):
            enqueue_webhook(session, url=receiver.url, event="alert", payload={"n": n}, idempotency_key=f"slow:{n}")


def wait_busy(receiver: Receiver, seconds: float = 20) -> None:
    """Until the outbox is sending the slow webhooks."""
    deadline = time.monotonic() + seconds
    while receiver.at_once == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert receiver.at_once > 0, "the outbox never started on the webhooks"


def press(client: TestClient) -> tuple[float, datetime]:
    at, wall = time.monotonic(), utcnow()
    pressed = client.post("/api/v1/sos", json={"lon": 116.4, "lat": 39.9})
    assert pressed.status_code == 201, pressed.text
    return at, wall


def test_embedded_the_emergency_lane_does_not_wait_for_slow_webhooks(cli_site: Settings) -> None:
    app = lane_app(cli_site, outbox_interval_seconds=30)
    gateway, sms = app.state.notifier.channels["emergency"], app.state.notifier.channels["sms"]
    with webhook_receiver(SLOW) as receiver:
        with_a_verified_contact(TestClient(app), app)  # before start-up: nothing is sending yet
        queue_slow_webhooks(app, receiver)
        with TestClient(app) as client:
            wait_busy(receiver)
            pressed, _ = press(client)
            deadline = pressed + 10
            while not (gateway.sent and sms.sent) and time.monotonic() < deadline:
                time.sleep(0.005)
            took = time.monotonic() - pressed
            still_sending = receiver.at_once
    assert len(gateway.sent) == 1 and [m.to for m in sms.sent] == ["13800005678"]
    assert took < 1, f"the police payload and the contact's SMS left {took:.2f} s after the press"
    assert still_sending > 0 and len(receiver.arrivals) < WEBHOOKS  # the webhooks were under way all along


@contextmanager
def outbox_worker(site: Settings, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = process_env(site, TRIPGUARD_WEBHOOK_SECRET=WEBHOOK_SECRET)
    worker = subprocess.Popen([TRIPGUARD, "worker", "outbox", "--interval", "30"], env=env, stderr=log.open("w"),
                              stdout=subprocess.DEVNULL)
    try:
        yield worker
    finally:
        worker.terminate()
        try:
            worker.wait(15)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(5)


@pytest.mark.skipif(BACKEND != "postgres", reason="scale-out: processes meet on PostgreSQL (NOTIFY)")
def test_scaled_out_the_outbox_worker_is_woken_by_notify_past_slow_webhooks(cli_site: Settings,
                                                                            tmp_path: Path) -> None:
    app = lane_app(cli_site, run_jobs=False)  # this process is an API replica: it stores, the worker sends
    log = tmp_path / "outbox.log"
    with webhook_receiver(SLOW) as receiver, TestClient(app) as client:
        with_a_verified_contact(client, app)
        queue_slow_webhooks(app, receiver)
        with outbox_worker(cli_site, log) as worker:
            wait_busy(receiver)
            time.sleep(0.5)  # its listener is up (it connects before the first webhook's answer)
            pressed, pressed_wall = press(client)
            deadline = pressed + 10
            while time.monotonic() < deadline:
                with unit_of_work(app.state.sessionmaker) as session:
                    emergency = session.scalars(select(OutboxMessage).where(or_(
                        OutboxMessage.channel == "emergency", OutboxMessage.template == "sos_contact"))).all()
                if len(emergency) == 2 and all(m.status == "sent" for m in emergency):
                    break
                time.sleep(0.02)
            assert worker.poll() is None, log.read_text()[-3000:]
            still_sending = receiver.at_once
    assert sorted(m.channel for m in emergency) == ["emergency", "sms"]
    assert all(m.status == "sent" for m in emergency), log.read_text()[-3000:]
    took = max((m.sent_at - pressed_wall).total_seconds() for m in emergency if m.sent_at)
    assert took < 1, f"the police payload and the contact's SMS left {took:.2f} s after the press"
    assert still_sending > 0 and len(receiver.arrivals) < WEBHOOKS
