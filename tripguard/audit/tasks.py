"""Background work on the audit log: sequencing new entries, and signing tree heads."""

from __future__ import annotations

import time

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.orm import Session, sessionmaker

from tripguard.audit import service
from tripguard.core.db import unit_of_work

SEQUENCE_CHUNK = 100  # entries per transaction, so sequencing a busy second never holds the writer long
PAUSE_SECONDS = 0.01  # between chunks: foreground requests (an SOS burst) get the interpreter meanwhile


def sequence_entries(factory: sessionmaker[Session], *, chunk: int = SEQUENCE_CHUNK,
                     pause: float = PAUSE_SECONDS) -> int:
    """Sequence everything pending, a chunk per transaction; return how many."""
    total = 0
    while True:
        with unit_of_work(factory) as session:
            if total == 0 and service.pending_count(session) == 0:  # cheap check, no lock
                return 0
            done = service.sequence_pending(session, batch=chunk)
        total += done
        if done < chunk:
            return total
        time.sleep(pause)


def sign_head_if_grown(factory: sessionmaker[Session], *, key: Ed25519PrivateKey) -> None:
    with unit_of_work(factory) as session:
        latest = service.latest_head(session)
        if latest is None or service.tree_size(session) + service.pending_count(session) > latest.tree_size:
            service.sign_new_head(session, key=key)
