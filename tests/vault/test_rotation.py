"""Rotating the key-encryption key while requests run: nothing lost, no read broken."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from tests.builders import TEST_ACTOR
from tests.conftest import fresh_database, make_settings
from tripguard.core.db import make_engine, make_sessionmaker, unit_of_work
from tripguard.privacy import access, service
from tripguard.privacy.models import DataSubject
from tripguard.vault import rotation
from tripguard.vault.keys import KEYRING_FILE, build_vault, vault_in
from tripguard.vault.keysource import KeyringFile, KeySourceError
from tripguard.vault.service import Vault

SUBJECTS = 200


def phone_of(i: int) -> str:
    return f"1380000{i:04d}"


def read_phone(factory: sessionmaker[Session], vault: Vault, subject_id: str) -> str | None:
    with factory() as session:
        subject = session.get(DataSubject, subject_id)
        assert subject is not None
        return access.open_field(vault, session, subject, "phone")


def test_rotation_under_load(tmp_path: Path) -> None:
    url = fresh_database(f"tg_rot_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}", tmp_path)
    settings = make_settings(url, tmp_path / "keys")
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    server_vault = build_vault(settings)  # what the running server holds
    with unit_of_work(factory) as session:
        service.publish_notice(session, actor=TEST_ACTOR, version="n1", purposes=["emergency"],
                               categories=["user.contact.phone_number"], retention_zh="两年",
                               retention_en="two years", text_zh="说明", text_en="notice")
        for i in range(SUBJECTS):
            service.upsert_subject(session, vault=server_vault, actor=TEST_ACTOR, subject_id=f"psg_{i}",
                                   kind="passenger", notice_version="n1", values={"phone": phone_of(i)})
    old_version = server_vault.keys.current_version()

    errors: list[str] = []
    reads = [0]
    written: list[int] = []
    stop = threading.Event()

    def reader() -> None:
        i = 0
        while not stop.is_set():
            subject = i % SUBJECTS
            try:
                if read_phone(factory, server_vault, f"psg_{subject}") != phone_of(subject):
                    errors.append(f"psg_{subject} read wrong")
                reads[0] += 1
            except Exception as exc:  # noqa: BLE001 - any failure is what this test exists to catch
                errors.append(f"read psg_{subject}: {exc!r}")
            i += 7

    def writer() -> None:
        i = SUBJECTS
        while not stop.is_set() and i < SUBJECTS + 200:
            try:
                with unit_of_work(factory) as session:
                    service.upsert_subject(session, vault=server_vault, actor=TEST_ACTOR, subject_id=f"psg_{i}",
                                           kind="passenger", notice_version="n1", values={"phone": phone_of(i)})
                written.append(i)
            except Exception as exc:  # noqa: BLE001 - as the reader's
                errors.append(f"write psg_{i}: {exc!r}")
            i += 1

    threads = [threading.Thread(target=reader), threading.Thread(target=reader), threading.Thread(target=writer)]
    for thread in threads:
        thread.start()
    try:
        # The operator's `tripguard keys rotate`, with its own handle on the keyring.
        operator_vault = vault_in(settings.key_dir, KeyringFile(settings.key_dir / KEYRING_FILE,
                                                                settings.keyring_passphrase.get_secret_value()),
                                  server_vault.suite)
        new_version = operator_vault.keys.add_version()
        rewrapped = rotation.rewrap_all(factory, vault=operator_vault, batch=7)
    finally:
        stop.set()
        for thread in threads:
            thread.join()

    assert errors == []
    assert reads[0] > 0 and rewrapped >= SUBJECTS
    # Keys a request created under the old version just before it saw the new one: a resumed run.
    rotation.rewrap_all(factory, vault=operator_vault)
    assert rotation.remaining(factory, vault=operator_vault) == 0
    rotation.retire(factory, vault=operator_vault, version=old_version)
    with pytest.raises(KeySourceError):
        operator_vault.keys.kek(old_version)
    with pytest.raises(KeySourceError):  # the running server's handle sees the retirement too
        server_vault.keys.kek(old_version)
    fresh_server = vault_in(settings.key_dir, KeyringFile(settings.key_dir / KEYRING_FILE,
                                                          settings.keyring_passphrase.get_secret_value()),
                            server_vault.suite)
    for i in list(range(SUBJECTS)) + written:
        assert read_phone(factory, fresh_server, f"psg_{i}") == phone_of(i)
    assert fresh_server.keys.current_version() == new_version
    engine.dispose()
