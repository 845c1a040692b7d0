"""Trips' data keys are kept open for the process a short while (ingest seals every trip's positions batch
after batch); people's never are, a shred evicts at once, and a key whose transaction rolled back is
never reused."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from tripguard.vault.crypto import Suite
from tripguard.vault.keys import vault_in
from tripguard.vault.keysource import KeyringFile
from tripguard.vault.service import SubjectErased, Vault

PLACE = {"table": "telematics_track_chunks", "column": "packed", "row_id": "trk_1"}


@pytest.fixture
def vault(tmp_path: Path) -> Vault:
    return vault_in(tmp_path, KeyringFile(tmp_path / "keyring.json", "correct horse battery"), Suite.AES)


def _key_reads(session: Session) -> list[str]:
    reads: list[str] = []
    event.listen(session, "do_orm_execute", lambda state: reads.append(str(state.statement)))
    return reads


def test_a_trip_key_is_opened_once_per_process(vault: Vault, session_factory: sessionmaker[Session]) -> None:
    with session_factory() as session:
        sealed = vault.seal_bytes(session, subject_id="trip:TK1", data=b"positions", **PLACE)
        session.commit()
    with session_factory() as session:
        vault.prefetch(session, ["trip:TK1"])  # from the database, then kept
        session.rollback()
    with session_factory() as session:
        reads = _key_reads(session)
        vault.prefetch(session, ["trip:TK1"])
        assert vault.open_bytes(session, subject_id="trip:TK1", blob=sealed, **PLACE) == b"positions"
        assert not [r for r in reads if "vault_data_keys" in r]  # no query for the key

        vault.shred(session, subject_id="trip:TK1", reason="retention")  # evicted at once
        session.commit()
    with session_factory() as session, pytest.raises(SubjectErased):
        vault.open_bytes(session, subject_id="trip:TK1", blob=sealed, **PLACE)


def test_a_person_s_key_is_never_kept_beyond_the_session(vault: Vault, session_factory: sessionmaker[Session]) -> None:
    with session_factory() as session:
        vault.seal(session, subject_id="psg_TK2", value="+8613800000000", **PLACE)
        session.commit()
    with session_factory() as session:
        vault.prefetch(session, ["psg_TK2"])
    assert "psg_TK2" not in vault.trip_keys


def test_a_key_made_in_a_transaction_that_rolled_back_is_not_reused(
        vault: Vault, session_factory: sessionmaker[Session]) -> None:
    with session_factory() as session:
        vault.seal_bytes(session, subject_id="trip:TK3", data=b"lost", **PLACE)
        session.rollback()  # the key never reached the database
    assert "trip:TK3" not in vault.trip_keys
    with session_factory() as session:  # so the next batch makes (and stores) a new one
        sealed = vault.seal_bytes(session, subject_id="trip:TK3", data=b"kept", **PLACE)
        session.commit()
    vault.trip_keys.clear()
    with session_factory() as session:
        assert vault.open_bytes(session, subject_id="trip:TK3", blob=sealed, **PLACE) == b"kept"
