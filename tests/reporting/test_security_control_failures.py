"""Every control of `tripguard security check` fails on bad evidence (issue #27, outside review): the audit
control compares the stored entries with the latest signed head (its signature, its size, its root), the
storage control reads every stored value's header, and the controls whose failing case had no test of its
own get one here."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import delete, insert, update
from sqlalchemy.orm import Session

from tests.builders import TEST_ACTOR
from tests.reporting.test_security_evidence import (
    OldKeys,
    contact,
    evidence,
    signed_log,
    triggers_off,
)
from tripguard.audit import merkle
from tripguard.audit import service as audit
from tripguard.audit.models import AuditEntry, TreeHead
from tripguard.audit.signing import key_id, sign_head
from tripguard.core.clock import utcnow
from tripguard.core.ids import new_id
from tripguard.core.settings import DEV_SECRET
from tripguard.privacy import access
from tripguard.reporting.security_check import STORAGE_SAMPLE, assess
from tripguard.safety.models import EmergencyContact
from tripguard.vault.keys import key_source

# --- audit.coverage: the entries against the latest signed head ---------------------------------------


def test_audit_control_passes_on_a_whole_signed_log_and_says_what_it_checked(db: Session, app: FastAPI) -> None:
    signed_log(db, app, entries=6)
    found = evidence(db, app, "audit.coverage")
    assert found.passed, found.text()
    assert "signature verifies" in found.text() and "6 entries" in found.text() and "root" in found.text()


def test_audit_control_with_the_newest_entries_pruned(db: Session, app: FastAPI) -> None:
    made = signed_log(db, app, entries=6)
    with triggers_off(db):
        db.execute(delete(AuditEntry).where(AuditEntry.id.in_([m.id for m in made[3:]])))  # the last three
    db.commit()
    found = evidence(db, app, "audit.coverage")
    assert not found.passed and "3 of the 6 entries" in found.text(), found.text()


def test_audit_control_with_an_entry_missing_in_the_middle(db: Session, app: FastAPI) -> None:
    made = signed_log(db, app, entries=6)
    with triggers_off(db):
        db.execute(delete(AuditEntry).where(AuditEntry.id == made[2].id))
    db.commit()
    found = evidence(db, app, "audit.coverage")
    assert not found.passed and "1 of the 6 entries" in found.text(), found.text()


def test_audit_control_with_every_entry_deleted(db: Session, app: FastAPI) -> None:
    signed_log(db, app, entries=6)
    with triggers_off(db):
        db.execute(delete(AuditEntry))
    db.commit()
    found = evidence(db, app, "audit.coverage")
    assert not found.passed and "6 of the 6 entries" in found.text(), found.text()


def test_audit_control_with_an_entry_replaced(db: Session, app: FastAPI) -> None:
    """Every leaf index is there, but the newest entry is another one: the head's root no longer matches."""
    made = signed_log(db, app, entries=6)
    last = made[-1]
    with triggers_off(db):
        db.execute(delete(AuditEntry).where(AuditEntry.id == last.id))
    forged = AuditEntry(seq=last.seq, ts=last.ts, actor_type=last.actor_type, actor_id=last.actor_id,
                        action="test.innocent", target_type="t", target_id="5", outcome="success", details="{}")
    forged.leaf_hash = merkle.leaf_hash(audit.leaf_data(forged))
    db.add(forged)
    db.commit()
    found = evidence(db, app, "audit.coverage")
    assert not found.passed and "root" in found.text(), found.text()


@pytest.mark.parametrize("forgery", ["bad signature", "another key"])
def test_audit_control_when_the_latest_head_does_not_verify(db: Session, app: FastAPI, forgery: str) -> None:
    signed_log(db, app, entries=3)
    audit.record(db, actor=TEST_ACTOR, action="test.entry", target_type="t", target_id="3")
    db.flush()
    audit.sequence_all(db)
    size, root, at = 4, audit.StoredRanges(db)(0, 4), utcnow().replace(microsecond=0)
    other = Ed25519PrivateKey.generate()
    if forgery == "bad signature":
        head = {"key_id": key_id(app.state.audit_key.public_key()), "signature": bytes(64)}
    else:
        head = {"key_id": key_id(other.public_key()), "signature": sign_head(other, size, root, at)}
    db.execute(insert(TreeHead).values(tree_size=size, root_hash=root, signed_at=at, **head))
    db.commit()
    found = evidence(db, app, "audit.coverage")
    assert not found.passed and "does not verify" in found.text(), found.text()


# --- crypto.storage: every row's header, a sample's keys ------------------------------------------------


def test_storage_control_with_plaintext_in_the_middle_of_a_table(db: Session, app: FastAPI) -> None:
    rows = []
    for n in range(2 * STORAGE_SAMPLE + 5):
        row = EmergencyContact(id=new_id("con"), subject_id=f"P{n:03d}", slot=1, created_at=utcnow())
        db.add(row)
        access.write_field(app.state.vault, db, row, "name", "王小明")
        access.write_field(app.state.vault, db, row, "phone", "13800000001")
        rows.append(row)
    db.commit()
    assert evidence(db, app, "crypto.storage").passed
    middle = sorted(rows, key=lambda r: r.id)[STORAGE_SAMPLE + 2]  # in neither end's sample
    db.execute(update(EmergencyContact).where(EmergencyContact.id == middle.id).values(phone=b"13800000001"))
    db.commit()
    found = evidence(db, app, "crypto.storage")
    assert not found.passed and "safety_contacts.phone (1 of" in found.text(), found.text()


@pytest.mark.parametrize("stored", [bytes([1, 1]) + b"short", bytes([1, 9]) + os.urandom(40),
                                    bytes([2, 1]) + os.urandom(40), "王小明".encode()],
                         ids=["too short", "unknown suite", "unknown format", "text"])
def test_storage_control_reads_the_vault_header_of_every_row(db: Session, app: FastAPI, stored: bytes) -> None:
    """Too short for a nonce and a tag, an unknown suite, an unknown format, text: each is found by the scan."""
    contact(db, app, "P1")
    db.execute(update(EmergencyContact).where(EmergencyContact.subject_id == "P1").values(name=stored))
    db.commit()
    found = evidence(db, app, "crypto.storage")
    assert not found.passed and "safety_contacts.name (1 of 1" in found.text(), found.text()


# --- the controls whose failing case had no test -------------------------------------------------------


def test_key_rotation_fails_on_a_key_older_than_a_year(db: Session, app: FastAPI) -> None:
    assert evidence(db, app, "keys.rotation").passed
    old = OldKeys(key_source(app.state.settings), days=400)
    found = evidence(db, app, "keys.rotation", old)  # type: ignore[arg-type]
    assert not found.passed and "400" in found.text(), found.text()


@pytest.mark.parametrize(("change", "named"), [
    ({"secret_key": SecretStr(DEV_SECRET)}, "TRIPGUARD_SECRET_KEY"),
    ({"subject_token_secret": None, "subject_token_public_key_file": None}, "TRIPGUARD_SUBJECT_TOKEN_SECRET"),
    ({"env": "test"}, "TRIPGUARD_ENV=test"),
])
def test_default_secrets_fail_on_each_development_value(db: Session, app: FastAPI, change: dict[str, object],
                                                       named: str) -> None:
    production = app.state.settings.model_copy(update={"env": "production"})
    keys = key_source(production)

    def found(settings: object) -> tuple[bool, str]:
        result = {c.key: e for c, e in assess(db, settings=settings, keys=keys, now=utcnow()).results}  # type: ignore[arg-type]
        return result["secrets.defaults"].passed, result["secrets.defaults"].text()

    assert found(production)[0], found(production)[1]
    passed, text = found(production.model_copy(update=change))
    assert not passed and named in text, text


def _recorded(db: Session, action: str, days_ago: int, **details: int) -> None:
    entry = audit.record(db, actor=TEST_ACTOR, action=action, target_type="t", target_id="x", details=details)
    db.flush()
    db.execute(update(AuditEntry).where(AuditEntry.id == entry.id).values(ts=utcnow() - timedelta(days=days_ago)))
    db.commit()


@pytest.mark.parametrize(("key", "action", "days", "details"), [
    ("backup.recent", "backup.create", 3, {}),
    ("backup.restore_drill", "backup.drill", 93, {}),
    ("deps.scan", "security.scan", 31, {"audited": 104, "vulnerable": 0, "skipped": 0}),
])
def test_evidence_too_old_fails(db: Session, app: FastAPI, key: str, action: str, days: int,
                                details: dict[str, int]) -> None:
    _recorded(db, action, days, **details)
    found = evidence(db, app, key)
    assert not found.passed and f"{days}.0 days ago" in found.text(), found.text()
    _recorded(db, action, days - 2, **details)  # the same evidence, in time
    assert evidence(db, app, key).passed
