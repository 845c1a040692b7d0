"""Blind indexes are never backed up, and a restore rebuilds them from what still opens."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import String, func, select
from sqlalchemy.orm import Session

from tests.builders import TEST_ACTOR
from tests.privacy.backups import (
    PEOPLE,
    add_people,
    backup_plaintext,
    cli_ok,
    erase,
    restore_into_fresh,
    site_session,
)
from tripguard.audit.models import AuditEntry
from tripguard.core.settings import Settings
from tripguard.models import metadata
from tripguard.privacy import indexes, service
from tripguard.privacy.models import DataSubject
from tripguard.vault.service import BLIND_INDEX_INFO, Vault


@pytest.mark.no_database
def test_every_blind_index_is_declared_so_backups_leave_it_out() -> None:
    """A column holding a keyed hash of a person's value is marked, names a sealed source and how its
    value is normalised: the backup's encoder blanks it and the restore rebuilds it without anyone
    remembering it. A column named like an index and not marked fails here."""
    declared = {(i.table, i.column): i for i in indexes.blind_indexes(metadata)}
    assert {("privacy_subjects", "phone_index"), ("safety_contacts", "phone_index")} <= set(declared)
    for index in declared.values():
        assert index.kind in indexes.NORMALISE, index
    named_like_one = {(t.name, c.name) for t in metadata.sorted_tables for c in t.columns
                      if isinstance(c.type, String) and c.name.endswith(("_index", "_bidx", "_blind", "_lookup"))}
    assert named_like_one <= set(declared)
    marked = {(t.name, c.name) for t in metadata.sorted_tables for c in t.columns if BLIND_INDEX_INFO in c.info}
    assert marked == set(declared)


def test_a_data_backup_holds_no_blind_index_and_a_restore_rebuilds_them(
        cli_site: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    add_people(cli_site)
    file = tmp_path / "site.tgbk"
    cli_ok("backup", "create", str(file))  # made while both people are on file
    erase(cli_site, "psg_erase")

    rows = backup_plaintext(cli_site, file)
    subjects = [r for r in rows if r["table"] == "privacy_subjects"]
    assert {r["id"] for r in subjects} == set(PEOPLE) and all(r["phone_index"] is None for r in subjects)
    with site_session(cli_site) as (_, vault):
        wanted = {index_of_phone(vault, phone) for _, phone in PEOPLE.values()}
    text = "\n".join(str(r) for r in rows)
    assert not any(value in text for value in wanted)  # nowhere in the file, under any column

    restored = restore_into_fresh(cli_site, tmp_path / "r", file, monkeypatch)
    with site_session(restored) as (session, vault):
        assert [s.id for s in service.find_by_phone(session, vault=vault, phone="+86 138-0000-2222")] == ["psg_keep"]
        assert service.find_by_phone(session, vault=vault, phone=PEOPLE["psg_erase"][1]) == []
        erased = session.get(DataSubject, "psg_erase")
        assert erased is not None and erased.phone_index is None and erased.erased_at is not None
        rebuilt = session.scalars(select(AuditEntry).where(AuditEntry.action == "privacy.blind_index_rebuild",
                                                           AuditEntry.target_type == "privacy_subjects")).one()
        assert (rebuilt.target_type, rebuilt.target_id) == ("privacy_subjects", "phone_index")
        assert '"built":1' in rebuilt.details and '"without":1' in rebuilt.details


def index_of_phone(vault: Vault, phone: str) -> str:
    value = indexes.index_of(vault, "phone", phone)
    assert value is not None
    return value


def test_rebuild_computes_each_index_from_the_sealed_value_and_none_where_it_no_longer_opens(
        db: Session, settings: Settings) -> None:
    from tripguard.vault.keys import build_vault

    vault = build_vault(settings)
    service.publish_notice(db, actor=TEST_ACTOR, version="n1", purposes=["emergency"], categories=["user.name"],
                           retention_zh="两年", retention_en="two years", text_zh="说明", text_en="notice")
    for subject_id, (name, phone) in PEOPLE.items():
        service.upsert_subject(db, vault=vault, actor=TEST_ACTOR, subject_id=subject_id, kind="passenger",
                               notice_version="n1", values={"name": name, "phone": phone})
    service.upsert_subject(db, vault=vault, actor=TEST_ACTOR, subject_id="psg_nophone", kind="passenger",
                           notice_version="n1", values={"name": "韩梅梅"})
    expected = {s.id: s.phone_index for s in db.scalars(select(DataSubject))}
    # As a backup leaves them; and a key gone without its row cleared (the journal's shred alone).
    db.query(DataSubject).update({DataSubject.phone_index: None})
    vault.shred(db, subject_id="psg_erase", reason="test")
    assert indexes.rebuild(db, vault) == {"privacy_subjects.phone_index": 1, "safety_contacts.phone_index": 0}
    now = {s.id: s.phone_index for s in db.scalars(select(DataSubject))}
    assert now == expected | {"psg_erase": None}
    assert db.scalar(select(func.count()).select_from(DataSubject).where(DataSubject.phone_index.is_not(None))) == 1
