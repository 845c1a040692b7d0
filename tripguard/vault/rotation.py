"""Key-encryption key rotation: add a version, rewrap every data key online, retire the old one.

Data keys are rewrapped in small committed batches (rows locked with SKIP LOCKED on PostgreSQL),
so requests keep reading throughout: a data key opens under its old version until its batch
commits, and under the new one after. Interrupted, it resumes where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from tripguard.core.db import unit_of_work
from tripguard.vault.keysource import KeySourceError
from tripguard.vault.service import Vault


def rewrap_all(factory: sessionmaker[Session], *, vault: Vault, batch: int = 500,
               progress: Callable[[int], None] | None = None) -> int:
    target = vault.keys.current_version()
    total = 0
    while True:
        with unit_of_work(factory) as session:
            done = vault.rewrap_batch(session, target_version=target, batch=batch)
        total += done
        if progress is not None and done:
            progress(done)
        if done == 0:
            return total


def remaining(factory: sessionmaker[Session], *, vault: Vault) -> int:
    from sqlalchemy import func, select

    from tripguard.vault.models import DataKey

    with factory() as session:
        return session.scalar(select(func.count()).select_from(DataKey).where(
            DataKey.kek_version != vault.keys.current_version(), DataKey.wrapped_key.is_not(None))) or 0


def retire(factory: sessionmaker[Session], *, vault: Vault, version: int) -> None:
    if version == vault.keys.current_version():
        raise KeySourceError("the current version cannot be retired: rotate to a new one first")
    with factory() as session:
        if version in set(vault.versions_in_use(session)):
            raise KeySourceError(f"version {version} still wraps data keys: run `tripguard keys rotate --resume`")
    vault.keys.retire(version)
