"""Wake the emergency sender the moment another process stores an SOS: PostgreSQL LISTEN/NOTIFY.

The SOS transaction runs `pg_notify` (service.py), which PostgreSQL delivers when it commits. The
listener holds a connection of its own; a lost notification, or a connection that drops, only
delays a message to the sender's next poll. It reconnects with backoff, and wakes the sender after
each (re)connection for what it may have missed meanwhile.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import psycopg
from sqlalchemy.engine import make_url

from tripguard.notify.service import EMERGENCY_NOTIFY_CHANNEL

logger = logging.getLogger("tripguard.notify")
APPLICATION_NAME = "tripguard-outbox-listener"
CHECK_EVERY = 10.0  # seconds without a notification before the connection is checked
MAX_BACKOFF = 10.0


def libpq_conninfo(database_url: str) -> str:
    """`postgresql+psycopg://…` (SQLAlchemy's form) as libpq takes it."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


class EmergencyListener:
    def __init__(self, database_url: str, *, on_notify: Callable[[], None], wait: float = 0.5) -> None:
        self._conninfo = libpq_conninfo(database_url)
        self._on_notify = on_notify
        self._wait = wait  # seconds between looks at `stop`
        self.listening = threading.Event()  # set while LISTEN is in force
        self.connections = 0  # connections made (a reconnection counts)

    def run(self, stop: threading.Event) -> None:
        backoff = 0.5
        while not stop.is_set():
            try:
                self._listen(stop)
                backoff = 0.5
            except psycopg.Error as exc:
                self.listening.clear()
                logger.warning("outbox listener lost its connection; reconnecting",
                               extra={"event": f"notify.listener: {type(exc).__name__}"})
                stop.wait(backoff)
                backoff = min(MAX_BACKOFF, backoff * 2)

    def _listen(self, stop: threading.Event) -> None:
        # keepalives and tcp_user_timeout: a peer gone silent (a partition) is noticed in seconds, not minutes.
        with psycopg.connect(self._conninfo, autocommit=True, application_name=APPLICATION_NAME, connect_timeout=5,
                             keepalives=1, keepalives_idle=5, keepalives_interval=2, keepalives_count=3,
                             tcp_user_timeout=10_000) as connection:
            connection.execute(f"LISTEN {EMERGENCY_NOTIFY_CHANNEL}")
            self.connections += 1
            self.listening.set()
            self._on_notify()  # what was stored while nobody listened goes now, not at the next poll
            checked = time.monotonic()
            while not stop.is_set():
                heard = False
                for _ in connection.notifies(timeout=self._wait):
                    heard = True
                    self._on_notify()
                if heard:
                    checked = time.monotonic()
                elif time.monotonic() - checked > CHECK_EVERY:
                    connection.execute("SELECT 1")  # raises if the connection has died quietly
                    checked = time.monotonic()
            self.listening.clear()
