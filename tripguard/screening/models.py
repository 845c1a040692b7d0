"""Applicants (drivers and couriers, screened and then watched), the reports asked of a screening
agency and the checks they hold, disputes with their documents, shift-start identity checks, and
each applicant's timeline.

An applicant's id is the operator's id for the worker: the same id names them as a data subject,
so an erasure of the person shreds what screening sealed under their key too."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Float, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tripguard.core.db import Base, UTCDateTime
from tripguard.privacy.catalogue import Category, personal_column


class Applicant(Base):
    __tablename__ = "screening_applicants"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the operator's id for the worker
    role: Mapped[str] = mapped_column(String(16))  # driver | courier
    city: Mapped[str | None] = mapped_column(String(40))  # names a local policy overlay, if any
    # screening -> clear: active | consider: review | reject: pre_adverse -> disputed -> active | rejected;
    # active -> suspended (a disqualifying record) ; any -> offboarded
    status: Mapped[str] = mapped_column(String(16), index=True)
    name: Mapped[bytes | None] = personal_column(Category.NAME)
    id_number: Mapped[bytes | None] = personal_column(Category.GOVERNMENT_ID)
    phone: Mapped[bytes | None] = personal_column(Category.PHONE)
    selfie: Mapped[bytes | None] = personal_column(Category.FACE)  # base64 reference photo, for face match
    locale: Mapped[str] = mapped_column(String(8))
    notice_version: Mapped[str] = mapped_column(String(32))  # the screening notice consented to
    consented_at: Mapped[datetime] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(String(12))  # the policy's latest: clear | consider | reject | pending
    reasons: Mapped[bytes | None] = personal_column(Category.BACKGROUND)  # JSON list of reason codes
    policy_version: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by: Mapped[str | None] = mapped_column(String(80))
    assigned_to: Mapped[str | None] = mapped_column(String(40))  # the screening officer who took the case
    notice_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the pre-adverse notice
    notice_key: Mapped[str | None] = mapped_column(String(200))  # its outbox message (is it delivered?)
    notice_failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # it did not reach the applicant
    dispute_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the last clear screening
    rescreen_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    suspended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    identity_blocked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # a shift-start face mismatch
    offboarded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Report(Base):
    """One request to a screening agency (first screening, yearly re-screening, or un-enrolment from
    its continuous monitoring), sent by the dispatcher outside any transaction, retried with back-off."""

    __tablename__ = "screening_reports"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    applicant_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(12))  # initial | rescreen | monitor (a pushed record) | unenroll
    agency: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(12), index=True)  # queued | requested | complete | failed | cancelled
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    last_error: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Check(Base):
    """One screening of a report: what it found is sealed under the applicant's key."""

    __tablename__ = "screening_checks"
    __table_args__ = (UniqueConstraint("report_id", "kind"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    report_id: Mapped[str] = mapped_column(String(40), index=True)
    applicant_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    status: Mapped[str] = mapped_column(String(12))  # pending | complete | suspended | cancelled
    result: Mapped[str | None] = mapped_column(String(12))  # clear | consider
    facts: Mapped[bytes | None] = personal_column(Category.BACKGROUND, subject_column="applicant_id")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AgencyEvent(Base):
    """A callback taken from an agency, by its event id: a second delivery of it changes nothing."""

    __tablename__ = "screening_agency_events"

    id: Mapped[str] = mapped_column(String(160), primary_key=True)  # "<agency>:<event id>"
    applicant_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(24))  # check.completed | record.found
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Dispute(Base):
    __tablename__ = "screening_disputes"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    applicant_id: Mapped[str] = mapped_column(String(64), index=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    text: Mapped[bytes | None] = personal_column(Category.NOTE, subject_column="applicant_id")
    status: Mapped[str] = mapped_column(String(12))  # open | upheld | dismissed
    filed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by: Mapped[str | None] = mapped_column(String(80))


class DisputeDocument(Base):
    """A paper sent with a dispute (a court record, a corrected certificate), sealed whole."""

    __tablename__ = "screening_dispute_documents"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    dispute_id: Mapped[str] = mapped_column(String(40), index=True)
    applicant_id: Mapped[str] = mapped_column(String(64), index=True)
    content_type: Mapped[str] = mapped_column(String(80))
    size: Mapped[int] = mapped_column(Integer)
    content: Mapped[bytes | None] = personal_column(Category.BACKGROUND, subject_column="applicant_id")  # base64


class IdentityCheck(Base):
    """A shift-start selfie matched against the screened identity (the photo is not kept)."""

    __tablename__ = "screening_identity_checks"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    applicant_id: Mapped[str] = mapped_column(String(64), index=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    provider: Mapped[str] = mapped_column(String(32))
    score: Mapped[float] = mapped_column(Float)
    matched: Mapped[bool] = mapped_column()
    incident_id: Mapped[str | None] = mapped_column(String(40))
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class Event(Base):
    """One line of an applicant's timeline. `details` holds codes and ids, never personal data."""

    __tablename__ = "screening_events"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    applicant_id: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    kind: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(80))
    details: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)


class Invitation(Base):
    """A link the operator sends a prospective driver or courier to apply and consent themselves; only a
    keyed hash of its token is kept."""

    __tablename__ = "screening_invitations"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    worker_id: Mapped[str] = mapped_column(String(64), index=True)
    role: Mapped[str] = mapped_column(String(16))
    city: Mapped[str | None] = mapped_column(String(40))
    locale: Mapped[str] = mapped_column(String(8))
    notice_version: Mapped[str] = mapped_column(String(32))
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Consent(Base):
    """A separate consent (PIPL Art. 29) to one sensitive kind of data the screening processes (a criminal
    record, a credit evaluation, a face), given under the notice version that named it."""

    __tablename__ = "screening_consents"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    applicant_id: Mapped[str] = mapped_column(String(64), index=True)
    category: Mapped[str] = mapped_column(String(40))
    notice_version: Mapped[str] = mapped_column(String(32))
    given_at: Mapped[datetime] = mapped_column(UTCDateTime)
    given_by: Mapped[str] = mapped_column(String(80))
