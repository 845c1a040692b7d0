"""kill -9 the outbox worker mid-send: every message still arrives, at least once, with its id to de-duplicate on."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

from sqlalchemy import select

from tests.conftest import SUBJECT_SECRET
from tripguard.core.db import make_engine, make_sessionmaker, unit_of_work
from tripguard.core.settings import Settings
from tripguard.notify.models import OutboxMessage
from tripguard.notify.service import enqueue_webhook

TRIPGUARD = str(Path(sys.executable).with_name("tripguard"))
MESSAGES = 24


class _Receiver(BaseHTTPRequestHandler):
    """The operator's backend: slow to answer, and counting every delivery by its message id."""

    received: ClassVar[Counter[str]] = Counter()
    lock = threading.Lock()

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        time.sleep(0.15)  # a send takes a while: the worker is killed in the middle of its batch
        with self.lock:
            self.received[body["data"]["message_id"]] += 1
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return


def _worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([TRIPGUARD, "worker", "outbox", "--interval", "0.2"], env=env, stderr=log.open("w"),
                            stdout=subprocess.DEVNULL)


def test_a_killed_worker_loses_no_message(cli_site: Settings, tmp_path: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    _Receiver.received = Counter()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    engine = make_engine(cli_site.database_url)
    with unit_of_work(make_sessionmaker(engine)) as session:
        ids = [enqueue_webhook(session, url=url, event="alert", payload={"n": n}, idempotency_key=f"fault:{n}").id
               for n in range(MESSAGES)]
    env = {**os.environ, "TRIPGUARD_DATABASE_URL": cli_site.database_url, "TRIPGUARD_KEY_DIR": str(cli_site.key_dir),
           "TRIPGUARD_ENV": "test", "TRIPGUARD_SECRET_KEY": "test-secret-key-0123456789abcdef0123456789",
           "TRIPGUARD_SUBJECT_TOKEN_SECRET": SUBJECT_SECRET, "TRIPGUARD_WEBHOOK_SECRET": "webhook-secret-0123456789",
           "TRIPGUARD_OUTBOX_CLAIM_SECONDS": "2"}
    first = _worker(env, tmp_path / "first.log")
    second = None
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and sum(_Receiver.received.values()) < 3:
            time.sleep(0.05)
        assert sum(_Receiver.received.values()) >= 3, (tmp_path / "first.log").read_text()[-2000:]
        first.send_signal(signal.SIGKILL)  # mid-batch: some sent and not yet marked, some not sent
        first.wait(10)
        assert len(_Receiver.received) < MESSAGES
        second = _worker(env, tmp_path / "second.log")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(_Receiver.received) < MESSAGES:
            time.sleep(0.1)
        assert set(_Receiver.received) == set(ids)  # every message arrived, at least once
        while time.monotonic() < deadline:  # and each is marked sent in the end
            with unit_of_work(make_sessionmaker(engine)) as session:
                statuses = Counter(session.scalars(select(OutboxMessage.status).where(OutboxMessage.id.in_(ids))))
            if statuses == Counter({"sent": MESSAGES}):
                break
            time.sleep(0.2)
        assert statuses == Counter({"sent": MESSAGES})
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(10)
        server.shutdown()
        engine.dispose()
