"""The workforce: training (courses, attempts, retraining), confidentiality agreements and their
signatures, violations and sanctions, and supervision over the audit log (findings, and how far the
rules have read the log)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tripguard.core.db import Base, UTCDateTime
from tripguard.privacy.catalogue import Category, personal_column


class SupervisionCursor(Base):
    """The last audit leaf (seq) the supervision rules have read: they never read the log twice."""

    __tablename__ = "workforce_supervision_cursor"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), default=-1)


class Finding(Base):
    __tablename__ = "workforce_findings"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    # many_people | after_hours | bulk_export | unassigned | gate_override
    rule: Mapped[str] = mapped_column(String(24), index=True)
    # unassigned: the order or trip read; gate_override: the order given
    record: Mapped[str | None] = mapped_column(String(64))
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str] = mapped_column(String(64), index=True)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime)
    window_end: Mapped[datetime] = mapped_column(UTCDateTime)
    count: Mapped[int] = mapped_column(Integer)
    evidence: Mapped[list[int]] = mapped_column(JSON)  # audit entry ids (the first 500)
    status: Mapped[str] = mapped_column(String(12), index=True)  # open | reviewed
    reviewed_by: Mapped[str | None] = mapped_column(String(80))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(String(16))  # justified | violation
    violation_id: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class Course(Base):
    """A training course: modules to read and a quiz to pass, in Chinese and English. `required` courses
    must be passed before a worker of the audience is dispatched, and again every `refresher_months`."""

    __tablename__ = "workforce_courses"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # a slug the trainer chooses
    kind: Mapped[str] = mapped_column(String(16))  # safety | emergency | service | confidentiality
    audience: Mapped[str] = mapped_column(String(8), index=True)  # driver | courier | worker (both)
    title_zh: Mapped[str] = mapped_column(String(200))
    title_en: Mapped[str] = mapped_column(String(200))
    modules: Mapped[list[dict[str, str]]] = mapped_column(JSON)  # title_zh, title_en, body_zh, body_en
    quiz: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # text_zh, text_en, options_zh, options_en, answer
    pass_mark: Mapped[int] = mapped_column(Integer)  # percent of questions right
    required: Mapped[bool] = mapped_column(Boolean)
    refresher_months: Mapped[int | None] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer)  # raised by each change of content
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Attempt(Base):
    """One submitted quiz. A passed attempt is the completion: it carries the certificate number and, for a
    course with refreshers, when it runs out."""

    __tablename__ = "workforce_attempts"
    __table_args__ = (Index("ix_workforce_attempts_worker_course", "worker_id", "course_id", "passed"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    worker_id: Mapped[str] = mapped_column(String(64))
    course_id: Mapped[str] = mapped_column(String(64), index=True)
    course_version: Mapped[int] = mapped_column(Integer)
    score: Mapped[int] = mapped_column(Integer)  # percent
    passed: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    certificate_no: Mapped[str | None] = mapped_column(String(40), unique=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    rating: Mapped[int | None] = mapped_column(Integer)  # the satisfaction survey after the course, 1-5
    rated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Retraining(Base):
    """A course a worker must pass again because of a violation: it blocks dispatch until done."""

    __tablename__ = "workforce_retraining"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    worker_id: Mapped[str] = mapped_column(String(64), index=True)
    course_id: Mapped[str] = mapped_column(String(64))
    violation_id: Mapped[str] = mapped_column(String(40))
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Agreement(Base):
    """One version of a confidentiality agreement for staff or for workers. Published versions never change:
    a signature names the version by the hash of its text."""

    __tablename__ = "workforce_agreements"
    __table_args__ = (UniqueConstraint("audience", "version"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    audience: Mapped[str] = mapped_column(String(8))  # staff | worker
    version: Mapped[str] = mapped_column(String(32))
    title_zh: Mapped[str] = mapped_column(String(200))
    title_en: Mapped[str] = mapped_column(String(200))
    body_zh: Mapped[str] = mapped_column(Text)
    body_en: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    published_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    published_by: Mapped[str] = mapped_column(String(80))


class Signature(Base):
    """Who signed which agreement text (by its hash), when and from where."""

    __tablename__ = "workforce_signatures"
    __table_args__ = (UniqueConstraint("signer_id", "sha256"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    signer_type: Mapped[str] = mapped_column(String(8))  # staff | subject
    signer_id: Mapped[str] = mapped_column(String(64), index=True)
    audience: Mapped[str] = mapped_column(String(8))
    version: Mapped[str] = mapped_column(String(32))
    sha256: Mapped[str] = mapped_column(String(64))
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(200))


class Violation(Base):
    """A breach of the rules by a worker or a staff member, linked to its evidence."""

    __tablename__ = "workforce_violations"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    offender_type: Mapped[str] = mapped_column(String(8))  # staff | worker
    offender_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # privacy | safety | service | conduct
    summary: Mapped[bytes | None] = personal_column(Category.NOTE, subject_column="offender_id")
    evidence: Mapped[dict[str, list[str]]] = mapped_column(JSON)  # audit | incidents | complaints | findings
    status: Mapped[str] = mapped_column(String(12), index=True)  # open | decided | closed
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)


class Sanction(Base):
    """What was decided on a violation. A suspension or dismissal is in force from `starts_at` until
    `ends_at` (none: until lifted) unless overturned on appeal; while in force it blocks dispatch and
    the reading of personal data."""

    __tablename__ = "workforce_sanctions"
    __table_args__ = (Index("ix_workforce_sanctions_offender_status", "offender_id", "status"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    violation_id: Mapped[str] = mapped_column(String(40), index=True)
    offender_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(12))  # warning | fine | suspension | dismissal | referral | retraining
    amount_fen: Mapped[int | None] = mapped_column(Integer)  # a fine, in fen
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(12))  # active | lifted | overturned
    decided_by: Mapped[str] = mapped_column(String(80))
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime)
    appeal: Mapped[bytes | None] = personal_column(Category.NOTE, subject_column="offender_id")
    appeal_status: Mapped[str | None] = mapped_column(String(12))  # pending | upheld | overturned
    appeal_filed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    appeal_decided_by: Mapped[str | None] = mapped_column(String(80))


class Checklist(Base):
    """What the supervision team inspects, item by item (a version per change, kept for past inspections)."""

    __tablename__ = "workforce_checklists"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    title_zh: Mapped[str] = mapped_column(String(200))
    title_en: Mapped[str] = mapped_column(String(200))
    items: Mapped[list[dict[str, str]]] = mapped_column(JSON)  # key, text_zh, text_en
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Inspection(Base):
    """One inspection against a checklist: each item's result, and the findings it looked at."""

    __tablename__ = "workforce_inspections"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    checklist_id: Mapped[str] = mapped_column(String(64), index=True)
    checklist_version: Mapped[int] = mapped_column(Integer)
    inspector: Mapped[str] = mapped_column(String(80))
    period: Mapped[str] = mapped_column(String(16))  # what was inspected, e.g. 2026-11 or 2026W48
    results: Mapped[list[dict[str, str]]] = mapped_column(JSON)  # key, result (pass | fail | n/a)
    notes: Mapped[bytes | None] = personal_column(Category.NOTE, subject_column="inspector", person="staff")
    failed: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
