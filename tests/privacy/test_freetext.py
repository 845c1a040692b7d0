"""A text's MAC dies with the key it is sealed under: no backup, keyring or not, confirms a guess after."""

from __future__ import annotations

import importlib.util
import json
import shutil
from datetime import timedelta
from pathlib import Path
from types import ModuleType

import pytest
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.builders import TEST_ACTOR
from tests.conftest import sign_agreement
from tests.privacy.backups import (
    PEOPLE,
    add_people,
    backup_plaintext,
    cli_ok,
    erase,
    restore_into_fresh,
    site_session,
)
from tripguard.audit import service as audit
from tripguard.audit.models import AuditEntry
from tripguard.core.clock import utcnow
from tripguard.core.db import make_engine, make_sessionmaker
from tripguard.core.ids import new_id
from tripguard.core.migrations import MIGRATIONS_DIR
from tripguard.core.settings import Settings
from tripguard.privacy import freetext, service
from tripguard.safety.models import IncidentEvent
from tripguard.screening.models import Event as ScreeningEvent
from tripguard.security.permissions import Purpose, Role
from tripguard.security.principal import Principal
from tripguard.vault import keybackup
from tripguard.vault.keys import build_vault
from tripguard.vault.service import SUBJECT_MAC_PREFIX, SubjectErased

NOTES = {"psg_erase": "乘客说司机绕路，电话13800001111", "psg_keep": "乘客确认已安全到家"}


def test_a_text_mac_is_keyed_by_the_subjects_data_key_and_dies_with_it(db: Session, settings: Settings) -> None:
    vault = build_vault(settings)
    refs = freetext.keep(db, vault=vault, subject_id="psg_mac", text="不要打电话", label="note")
    mac = refs["note_mac"]
    assert mac.startswith(SUBJECT_MAC_PREFIX) and len(mac) == len(SUBJECT_MAC_PREFIX) + 32
    assert vault.verify_subject_mac(db, "psg_mac", text="不要打电话", mac=mac)
    assert not vault.verify_subject_mac(db, "psg_mac", text="不要打电话!", mac=mac)
    # another person's key: another MAC
    assert not vault.verify_subject_mac(db, "psg_other", text="不要打电话", mac=mac)
    # The keyring alone (what every old backup's reader holds) does not make it.
    assert vault.blind_index("free-text", "不要打电话")[:32] not in mac
    # The older scheme is never confirmed, whatever it holds.
    older = vault.blind_index("free-text", "不要打电话")[:32]
    assert not vault.verify_subject_mac(db, "psg_mac", text="不要打电话", mac=older)
    vault.shred(db, subject_id="psg_mac", reason="test")
    with pytest.raises(SubjectErased):
        vault.verify_subject_mac(db, "psg_mac", text="不要打电话", mac=mac)


def keep_notes(settings: Settings) -> dict[str, str]:
    """A note about each person, sealed under their key and referred to by an audit entry (as a case note,
    a reveal's reason); returns each person's MAC as written."""
    macs = {}
    with site_session(settings) as (session, vault):
        for subject_id, note in NOTES.items():
            refs = freetext.keep(session, vault=vault, subject_id=subject_id, text=note, label="note")
            audit.record(session, actor=TEST_ACTOR, action="test.note", target_type="privacy_subjects",
                         target_id=subject_id, details={**refs})
            macs[subject_id] = refs["note_mac"]
    return macs


def keyring_guesses(settings: Settings, subject_id: str) -> set[str]:
    """Every value the keyring computes for the person's right guesses: the phone's blind index in the
    forms it takes, and the note's MAC under the keyring's index key (the scheme before)."""
    vault = build_vault(settings)
    phone = PEOPLE[subject_id][1]
    index = vault.blind_index("phone", phone)
    note_mac = vault.blind_index("free-text", NOTES[subject_id])
    return {index, index[:32], note_mac, note_mac[:32]}


def test_an_old_backup_and_the_keyring_confirm_no_guess_about_an_erased_person(
        cli_site: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The attacker's position: a data backup made while the person was on file, the keyring (today's and
    a copy from before), after the key-backup window. They know the person's phone and a note's text and
    want to confirm them. Through TripGuard, only a person still on file is found, through the gate."""
    add_people(cli_site)
    macs = keep_notes(cli_site)
    file = tmp_path / "site.tgbk"
    cli_ok("backup", "create", str(file))
    old_key_folder = tmp_path / "old-keys"
    shutil.copytree(cli_site.key_dir, old_key_folder)
    dek = erase(cli_site, "psg_erase")
    later = utcnow() + timedelta(days=cli_site.key_backup_window_days, minutes=1)
    monkeypatch.setattr(keybackup, "utcnow", lambda: later)
    cli_ok("retention", "run")  # the window has passed: the key backup's key is destroyed

    # Offline: the file opened with the keyring. The note's MAC is in it, but nothing the keyring computes
    # matches anything in it, for the erased person or anyone else.
    rows = backup_plaintext(cli_site, file)
    everything = "\n".join(json.dumps(row, ensure_ascii=False) for row in rows)
    assert macs["psg_erase"] in everything and macs["psg_keep"] in everything
    for subject_id in PEOPLE:
        assert not any(guess in everything for guess in keyring_guesses(cli_site, subject_id)), subject_id
        assert PEOPLE[subject_id][1] not in everything and NOTES[subject_id] not in everything
    # The one key that would make the erased person's MAC is in no file: not the backups, not either key folder.
    files = [file, tmp_path / "site.tgbk.keys",
             *(f for folder in (cli_site.key_dir, old_key_folder) for f in folder.iterdir() if f.is_file())]
    assert not any(dek in f.read_bytes() for f in files)

    # Through TripGuard: the old backup restored with a key backup made today (the old one no longer opens).
    cli_ok("keys", "backup", str(tmp_path / "today.keys"))
    restored = restore_into_fresh(cli_site, tmp_path / "r", file, monkeypatch, "--keys", str(tmp_path / "today.keys"))
    with site_session(restored) as (session, vault):
        assert service.find_by_phone(session, vault=vault, phone=PEOPLE["psg_erase"][1]) == []
        with pytest.raises(SubjectErased):
            vault.verify_subject_mac(session, "psg_erase", text=NOTES["psg_erase"], mac=macs["psg_erase"])
        # A person still on file: found by phone, their note opened through the gate (audited), its MAC checked.
        assert [s.id for s in service.find_by_phone(session, vault=vault, phone=PEOPLE["psg_keep"][1])] == ["psg_keep"]
        assert vault.verify_subject_mac(session, "psg_keep", text=NOTES["psg_keep"], mac=macs["psg_keep"])
    agent = Principal.for_roles("staff", "stf_T", frozenset({Role.SAFETY_AGENT}))
    engine = make_engine(restored.database_url)
    try:
        sign_agreement(make_sessionmaker(engine), agent)
    finally:
        engine.dispose()
    with site_session(restored) as (session, vault):
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "test.note",
                                                         AuditEntry.target_id == "psg_keep")).one()
        ref = json.loads(entry.details)["note_ref"]
        assert freetext.read(session, vault=vault, principal=agent, refs=[ref],
                             purpose=Purpose.EMERGENCY) == {ref: NOTES["psg_keep"]}
        assert session.scalars(select(AuditEntry).where(AuditEntry.action == "personal.read",
                                                        AuditEntry.target_id == ref)).one().purpose == "emergency"


def _migration() -> ModuleType:
    (path,) = (MIGRATIONS_DIR / "versions").glob("*_drop_keyring_text_macs.py")
    spec = importlib.util.spec_from_file_location("drop_keyring_text_macs", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_migration_drops_keyring_keyed_macs_from_the_timelines(db: Session) -> None:
    """Timelines are ordinary tables: the MACs a keyring could confirm are removed from them; the note's
    reference and a MAC of the new scheme stay. (The audit log's stay too: it is never rewritten.)"""
    old, new = ({"note_ref": "txt_old", "note_mac": "0123456789abcdef" * 2},
                {"note_ref": "txt_new", "note_mac": "dk1:" + "ab" * 16})
    now = utcnow()
    rows: list[IncidentEvent | ScreeningEvent] = [
            IncidentEvent(id=new_id("iev"), incident_id="inc_m", at=now, kind="note", actor="staff:x", details=old),
            IncidentEvent(id=new_id("iev"), incident_id="inc_m", at=now, kind="note", actor="staff:x", details=new),
            IncidentEvent(id=new_id("iev"), incident_id="inc_m", at=now, kind="assign", actor="staff:x",
                          details={"to": "stf_1"}),
            ScreeningEvent(id=new_id("sev"), applicant_id="drv_m", at=now, kind="officer.clear", actor="staff:x",
                           details=old)]
    db.add_all(rows)
    db.flush()
    with Operations.context(MigrationContext.configure(db.connection())):
        _migration().upgrade()
    db.expire_all()
    assert [row.details for row in rows] == [{"note_ref": "txt_old"}, new, {"to": "stf_1"}, {"note_ref": "txt_old"}]
