"""The self-assessment's storage and audit controls check real evidence, and each fails when the evidence
is not there: a personal column holding plaintext (or bytes no vault key seals), an audit log with
entries missing or younger than six months on an older install."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import FastAPI
from sqlalchemy import delete, text, update
from sqlalchemy.orm import Session

from tests.builders import TEST_ACTOR
from tripguard.audit import service as audit
from tripguard.audit.models import AuditEntry
from tripguard.core.clock import utcnow
from tripguard.core.ids import new_id
from tripguard.privacy import access
from tripguard.reporting.security_check import AUDIT_KEPT, Evidence, assess
from tripguard.safety.models import EmergencyContact
from tripguard.vault.keys import key_source
from tripguard.vault.keysource import KekInfo, KeySource


def evidence(db: Session, app: FastAPI, key: str, keys: KeySource | None = None) -> Evidence:
    settings = app.state.settings
    found = assess(db, settings=settings, keys=keys or key_source(settings), now=utcnow()).results
    return next(e for c, e in found if c.key == key)


def contact(db: Session, app: FastAPI, subject_id: str) -> EmergencyContact:
    row = EmergencyContact(id=new_id("con"), subject_id=subject_id, slot=1, created_at=utcnow())
    db.add(row)
    access.write_field(app.state.vault, db, row, "name", "王小明")
    access.write_field(app.state.vault, db, row, "phone", "13800000001")
    db.commit()
    return row


def test_storage_fails_on_a_plaintext_personal_column(db: Session, app: FastAPI) -> None:
    row = contact(db, app, "P1")
    sealed = evidence(db, app, "crypto.storage")
    assert sealed.passed and sealed.values["sampled"] >= 2, sealed.text()  # type: ignore[operator]
    db.execute(update(EmergencyContact).where(EmergencyContact.id == row.id).values(phone=b"13800000001"))
    db.commit()
    plain = evidence(db, app, "crypto.storage")
    assert not plain.passed and "safety_contacts.phone (1 of 1 stored values" in plain.text(), plain.text()


def test_storage_fails_on_bytes_no_vault_key_seals(db: Session, app: FastAPI) -> None:
    contact(db, app, "P1")
    db.add(EmergencyContact(id=new_id("con"), subject_id="NOBODY", slot=1, created_at=utcnow(),
                            name=bytes([1, 1]) + os.urandom(40)))  # the vault's format, under no key it holds
    db.commit()
    found = evidence(db, app, "crypto.storage")
    assert not found.passed and "safety_contacts.name (sealed under no key" in found.text(), found.text()


@dataclass
class OldKeys:
    """The key folder of an install begun `days` ago."""

    inner: KeySource
    days: int

    def current_version(self) -> int:
        return self.inner.current_version()

    def versions(self) -> list[KekInfo]:
        made = (utcnow() - timedelta(days=self.days)).isoformat()
        return [KekInfo(v.version, made, v.retired_at) for v in self.inner.versions()]

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def signed_log(db: Session, app: FastAPI, entries: int = 3, *, first_days_ago: int = 0) -> list[AuditEntry]:
    made = [audit.record(db, actor=TEST_ACTOR, action="test.entry", target_type="t", target_id=str(n))
            for n in range(entries)]
    db.flush()
    if first_days_ago:  # before it is sequenced: after, the database refuses any change
        db.execute(update(AuditEntry).where(AuditEntry.id == made[0].id)
                   .values(ts=utcnow() - timedelta(days=first_days_ago)))
    audit.sequence_all(db)
    audit.sign_new_head(db, key=app.state.audit_key)
    db.commit()
    return made


def test_audit_on_a_young_install_says_so(db: Session, app: FastAPI) -> None:
    signed_log(db, app)
    found = evidence(db, app, "audit.coverage")
    assert found.passed and "this install is" in found.text() and f"{AUDIT_KEPT.days} days" in found.text()


def test_audit_fails_when_an_older_install_keeps_less_than_six_months(db: Session, app: FastAPI) -> None:
    signed_log(db, app)
    keys = OldKeys(key_source(app.state.settings), days=400)
    found = evidence(db, app, "audit.coverage", keys)  # type: ignore[arg-type]
    assert not found.passed and "does not cover" in found.text(), found.text()


def test_audit_passes_when_the_log_is_six_months_deep(db: Session, app: FastAPI) -> None:
    signed_log(db, app, first_days_ago=200)
    keys = OldKeys(key_source(app.state.settings), days=400)
    covered = evidence(db, app, "audit.coverage", keys)  # type: ignore[arg-type]
    assert covered.passed and "covering the" in covered.text(), covered.text()


@contextmanager
def triggers_off(db: Session) -> Iterator[None]:
    """What someone pruning the log would do first (inside the test's transaction, rolled back after)."""
    postgres = db.get_bind().dialect.name == "postgresql"
    if postgres:
        db.execute(text("ALTER TABLE audit_entries DISABLE TRIGGER audit_entries_append_only"))
    else:
        db.execute(text("DROP TRIGGER audit_entries_no_delete"))
    yield
    if postgres:
        db.execute(text("ALTER TABLE audit_entries ENABLE TRIGGER audit_entries_append_only"))
    else:
        db.execute(text("CREATE TRIGGER audit_entries_no_delete BEFORE DELETE ON audit_entries "
                        "BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END"))


def test_audit_fails_when_entries_are_missing(db: Session, app: FastAPI) -> None:
    made = signed_log(db, app, entries=4)
    with triggers_off(db):
        db.execute(delete(AuditEntry).where(AuditEntry.id == made[0].id))  # the first leaf, pruned
    db.commit()
    found = evidence(db, app, "audit.coverage")
    assert not found.passed and "missing" in found.text(), found.text()


def test_the_install_date_is_the_first_key_or_the_first_entry(db: Session, app: FastAPI) -> None:
    signed_log(db, app)
    first = datetime.fromisoformat(key_source(app.state.settings).versions()[0].created_at)
    assert utcnow() - first < AUDIT_KEPT  # the test key folder is new: the young-install branch above is real
