"""Data subjects (their personal fields sealed by the vault), privacy notices, deletion records."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tripguard.core.db import Base, UTCDateTime
from tripguard.privacy.catalogue import Category, Key, blind_index_column, personal_column


class DataSubject(Base):
    """A person TripGuard holds data about: passenger, customer, driver, courier, merchant, staff, emergency
    contact. Recorded by the operator (with the fields below), or registered by the first write of a domain
    about them (`privacy.subjects`: no fields here; kind and notice when that domain knows them)."""

    __tablename__ = "privacy_subjects"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the operator's id for the person
    kind: Mapped[str | None] = mapped_column(String(24))
    name: Mapped[bytes | None] = personal_column(Category.NAME)
    phone: Mapped[bytes | None] = personal_column(Category.PHONE)
    phone_index: Mapped[str | None] = blind_index_column(kind="phone", source="phone")
    email: Mapped[bytes | None] = personal_column(Category.EMAIL)
    notice_version: Mapped[str | None] = mapped_column(String(32))
    source: Mapped[str | None] = mapped_column(String(40))  # where first seen: operator | order | screening | trip …
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PrivacyNotice(Base):
    """What a person is told at collection: purposes, categories, retention; zh-CN and en."""

    __tablename__ = "privacy_notices"

    version: Mapped[str] = mapped_column(String(32), primary_key=True)
    purposes: Mapped[list[str]] = mapped_column(JSON)
    categories: Mapped[list[str]] = mapped_column(JSON)
    retention_zh: Mapped[str] = mapped_column(Text)
    retention_en: Mapped[str] = mapped_column(Text)
    text_zh: Mapped[str] = mapped_column(Text)
    text_en: Mapped[str] = mapped_column(Text)
    published_at: Mapped[datetime] = mapped_column(UTCDateTime)


CODE_TRIES_PER_REQUEST = 10  # wrong codes over a request's whole life (resends included); then in person only


class SubjectRequest(Base):
    """A person's access, correction or erasure request (PIPL Art. 45-47), with its deadline clock."""

    __tablename__ = "privacy_requests"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(160), unique=True)
    subject_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # access | correction | erasure
    status: Mapped[str] = mapped_column(String(24), index=True)
    # awaiting_verification -> verified (correction: awaiting the privacy officer) -> completed | rejected
    correction: Mapped[bytes | None] = personal_column(Category.NOTE, subject_column="subject_id")
    code_hash: Mapped[str | None] = mapped_column(String(64))
    code_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    code_attempts: Mapped[int] = mapped_column(default=0)  # over the request's life: a new code never resets it
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)  # 15 days
    hard_due_at: Mapped[datetime] = mapped_column(UTCDateTime)  # 30 days at most
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome_note: Mapped[str | None] = mapped_column(String(500))  # no personal data
    handled_by: Mapped[str | None] = mapped_column(String(80))

    @property
    def verify_by(self) -> str | None:
        """How the person proves who they are while it waits: a code sent to them, or (nothing on file to send
        it to, or too many wrong codes) the privacy officer confirming in person; None once verified."""
        if self.status != "awaiting_verification":
            return None
        return "code" if self.code_hash and self.code_attempts < CODE_TRIES_PER_REQUEST else "in_person"


class LegalHold(Base):
    """Keeps a person's data past its retention while a case needs it (an open incident, a dispute)."""

    __tablename__ = "privacy_legal_holds"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    subject_id: Mapped[str] = mapped_column(String(64), index=True)
    case_ref: Mapped[str] = mapped_column(String(64))  # e.g. the incident id
    reason: Mapped[str] = mapped_column(String(200))
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RetentionRun(Base):
    """One pass of the retention engine and what it erased, by rule (counts and ids, never data)."""

    __tablename__ = "privacy_retention_runs"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    dry_run: Mapped[bool] = mapped_column(default=False)
    actor: Mapped[str] = mapped_column(String(80))
    report: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)


class Breach(Base):
    """A personal-information security incident, from discovery to the closing report (PIPL Art. 57)."""

    __tablename__ = "privacy_breaches"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), index=True)  # open | contained | notifying | closed
    serious: Mapped[bool] = mapped_column(default=False)
    discovered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    occurred_from: Mapped[datetime] = mapped_column(UTCDateTime)
    occurred_to: Mapped[datetime] = mapped_column(UTCDateTime)
    categories: Mapped[list[str]] = mapped_column(JSON)
    cause: Mapped[str] = mapped_column(Text)
    harm: Mapped[str] = mapped_column(Text)
    measures: Mapped[str] = mapped_column(Text)
    advice: Mapped[str] = mapped_column(Text)
    contact: Mapped[str] = mapped_column(String(200))
    containment: Mapped[list[dict[str, object]]] = mapped_column(JSON, default=list)
    authority_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    authority_reported_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    authority_reference: Mapped[str | None] = mapped_column(String(100))
    opened_by: Mapped[str] = mapped_column(String(80))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    report: Mapped[dict[str, object] | None] = mapped_column(JSON)


class BreachSubject(Base):
    __tablename__ = "privacy_breach_subjects"

    breach_id: Mapped[str] = mapped_column(ForeignKey("privacy_breaches.id"), primary_key=True)
    subject_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    found_by: Mapped[str] = mapped_column(String(16))  # investigation | manual
    notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class DeletionRecord(Base):
    """Proof that a subject's data was erased: what, when, why, by whom. Never the data itself."""

    __tablename__ = "privacy_deletion_records"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    subject_id: Mapped[str] = mapped_column(String(64), index=True)
    categories: Mapped[list[str]] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(String(32))  # subject_request | retention | operator
    request_id: Mapped[str | None] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(80))
    erased_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # What the law keeps after the erasure (trip data), until when, and what it stays open for.
    retained: Mapped[list[dict[str, object]] | None] = mapped_column(JSON)


class FreeText(Base):
    """Free text a person typed (a reason, a case note), sealed under the key of whom it is about."""

    __tablename__ = "privacy_free_texts"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    subject_id: Mapped[str] = mapped_column(String(64), index=True)  # whose key seals it
    text: Mapped[bytes | None] = personal_column(Category.NOTE, subject_column="subject_id", key=Key.ANY)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
