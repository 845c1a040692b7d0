"""Incidents (an SOS, or an alert that needs a person), their timeline, and people's emergency contacts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from tripguard.core.db import Base, UTCDateTime
from tripguard.privacy.catalogue import Category, Key, blind_index_column, personal_column


class Incident(Base):
    """A case for the safety centre. Where the caller was is safety evidence of the case: sealed under the
    case's own key (`incident:<id>`), so erasing the caller leaves it to the case, read through the gate for
    the emergency purpose only, audited, until the `case_positions` retention rule removes it (the trip-data
    period after the case ended). `position_key` names the key (a case raised before this rule may still
    name the caller; erasing them moves it to the case's key first).

    `trip_id` and `order_id` are linked: the caller's own, checked. A trip or order the caller named that
    could not be linked to them (unknown yet, or not theirs) is kept as their claim, unverified, in
    `claimed_trip_id` / `claimed_order_id`, and never links the case to anyone's data.
    """

    __tablename__ = "safety_incidents"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    source: Mapped[str] = mapped_column(String(12))  # sos | alert | check_in
    severity: Mapped[str] = mapped_column(String(8))  # critical | high | medium
    status: Mapped[str] = mapped_column(String(12), index=True)  # open | acknowledged | in_progress | resolved | closed
    silent: Mapped[bool] = mapped_column(Boolean, default=False)
    caller_id: Mapped[str | None] = mapped_column(String(64), index=True)
    caller_role: Mapped[str | None] = mapped_column(String(16))
    trip_id: Mapped[str | None] = mapped_column(String(64), index=True)
    order_id: Mapped[str | None] = mapped_column(String(64), index=True)  # a delivery order (the operator's id)
    claimed_trip_id: Mapped[str | None] = mapped_column(String(64), index=True)  # named by the caller, not linked
    claimed_order_id: Mapped[str | None] = mapped_column(String(64))
    vehicle_id: Mapped[str | None] = mapped_column(String(64))
    driver_id: Mapped[str | None] = mapped_column(String(64))
    # "lon,lat", sealed under the key `position_key` names: "incident:<id>", the case's own; about the caller
    position: Mapped[bytes | None] = personal_column(Category.LOCATION, subject_column="position_key",
                                                     person_column="caller_id", key=Key.CASE)
    position_key: Mapped[str | None] = mapped_column(String(64))
    position_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    assigned_to: Mapped[str | None] = mapped_column(String(40))
    outcome: Mapped[str | None] = mapped_column(String(16))  # genuine | false_alarm | mistaken | malicious
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    ack_due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Raised by every change (the ORM's version counter): the live feed carries it, so a console never
    # applies an older state of the case over a newer one (items read or published out of order).
    version: Mapped[int] = mapped_column(Integer, server_default="1")

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012  (read once, by the mapper)


class IncidentEvent(Base):
    """One line of an incident's timeline. `details` never holds personal data."""

    __tablename__ = "safety_incident_events"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    incident_id: Mapped[str] = mapped_column(String(40), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)  # a live stream catches up by it
    kind: Mapped[str] = mapped_column(String(24))
    actor: Mapped[str] = mapped_column(String(80))
    details: Mapped[dict[str, object]] = mapped_column(JSON)


class EmergencyContact(Base):
    """Someone a person wants told when they press SOS; sealed under that person's key."""

    __tablename__ = "safety_contacts"
    # Each contact holds one of its person's five slots: parallel additions cannot pass the limit.
    __table_args__ = (Index("uq_safety_contacts_slot", "subject_id", "slot", unique=True),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    subject_id: Mapped[str] = mapped_column(String(64), index=True)
    slot: Mapped[int] = mapped_column(SmallInteger)  # 1-5 (contacts kept from before the slots may hold more)
    name: Mapped[bytes | None] = personal_column(Category.NAME, subject_column="subject_id", third_party=True)
    phone: Mapped[bytes | None] = personal_column(Category.PHONE, subject_column="subject_id", third_party=True)
    # The contact is a data subject of their own (`safety.contact_rights`): a random id, one per phone number
    # however many people name it, found through this blind index of the phone (left out of data backups,
    # rebuilt on restore, gone with the row when the contact is erased).
    phone_index: Mapped[str | None] = blind_index_column(kind="phone", source="phone")
    contact_subject_id: Mapped[str | None] = mapped_column(String(64), index=True)
    code_hash: Mapped[str | None] = mapped_column(String(64))
    code_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # never | always | night (a trip starting 22:00-06:00 local time)
    auto_share: Mapped[str] = mapped_column(String(8), default="never", server_default="never")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TripShare(Base):
    """A link that lets someone without an account follow a trip. Only a keyed hash of it is kept."""

    __tablename__ = "safety_trip_shares"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    trip_id: Mapped[str] = mapped_column(String(64), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[str] = mapped_column(String(80))  # subject:<id>, or system:sos
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    views: Mapped[int] = mapped_column(Integer, default=0)


class Recording(Base):
    """An in-car audio or video segment a device uploads for a trip (chunked, resumable).

    Kept `keep_until` (7 days by default), and for as long as a case about its trip is not closed.
    """

    __tablename__ = "safety_recordings"
    __table_args__ = (UniqueConstraint("device_id", "trip_id", "started_at", name="uq_safety_recordings_segment"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    trip_id: Mapped[str] = mapped_column(String(64), index=True)
    device_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(8))  # audio | video
    content_type: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    duration_s: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    received: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(10), index=True)  # uploading | complete | corrupt
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    keep_until: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class RecordingChunk(Base):
    """One uploaded piece, sealed under the trip's key (the same key as its positions)."""

    __tablename__ = "safety_recording_chunks"

    recording_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    offset: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
