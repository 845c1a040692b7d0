"""Background work on the audit log: sequencing new entries, and signing tree heads."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.orm import Session, sessionmaker

from tripguard.audit import service
from tripguard.core.db import unit_of_work


def sequence_entries(factory: sessionmaker[Session]) -> int:
    with unit_of_work(factory) as session:
        if service.pending_count(session) == 0:  # cheap check, no lock
            return 0
        return service.sequence_all(session)


def sign_head_if_grown(factory: sessionmaker[Session], key: Ed25519PrivateKey) -> None:
    with unit_of_work(factory) as session:
        latest = service.latest_head(session)
        if latest is None or service.tree_size(session) + service.pending_count(session) > latest.tree_size:
            service.sign_new_head(session, key)
