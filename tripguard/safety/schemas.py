"""SOS, incidents and emergency contacts over HTTP."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field

from tripguard.core.identifiers import ID_PATTERN
from tripguard.core.types import CleanStr, Timestamp
from tripguard.privacy.schemas import RequestRead


class SosCreate(BaseModel):
    # Strict: a JSON `true` is not a longitude, nor "yes" a boolean (lax mode would take both).
    model_config = ConfigDict(extra="forbid", strict=True)

    trip_id: str | None = Field(default=None, pattern=ID_PATTERN, description="default: your trip under way")
    order_id: str | None = Field(default=None, pattern=ID_PATTERN,
                                 description="the delivery order this is about (customer or courier)")
    silent: bool = Field(default=False, description="no sound or screen change on the phone; agents call back")
    lon: float | None = Field(default=None, ge=-180, le=180, description="the phone's own fix, WGS-84")
    lat: float | None = Field(default=None, ge=-90, le=90)


class SosReceipt(BaseModel):
    """What the app shows: the case exists and is being handled (nothing about anyone else)."""

    incident_id: str
    status: str
    created_at: datetime
    new: bool


UNVERIFIED = ("the case names a trip or order that TripGuard could not link to the caller: their claim, "
              "unverified (say so to whoever acts on it)")


class IncidentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    source: str
    severity: str
    status: str
    silent: bool
    caller_id: str | None
    caller_role: str | None
    trip_id: str | None = Field(description="the caller's trip, linked: theirs, checked")
    order_id: str | None = Field(description="the caller's delivery order, linked: theirs, checked")
    claimed_trip_id: str | None = Field(
        description="a trip the caller named that could not be linked to them (not ingested yet, or not theirs): "
                    "their claim, unverified; nothing of that trip (vehicle, driver, track) is on the case")
    claimed_order_id: str | None = Field(
        description="an order the caller named that is not linked to them: their claim, unverified")
    vehicle_id: str | None
    driver_id: str | None
    assigned_to: str | None
    outcome: str | None
    created_at: datetime
    ack_due_at: datetime
    acknowledged_at: datetime | None
    escalated_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None

    @computed_field(description=UNVERIFIED)  # type: ignore[prop-decorator]
    @property
    def claim_unverified(self) -> bool:
        return self.claimed_trip_id is not None or self.claimed_order_id is not None


class IncidentEventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    at: datetime
    kind: str
    actor: str
    details: dict[str, object]


class IncidentDetail(BaseModel):
    incident: IncidentRead
    position: str | None = Field(description="lon,lat: plaintext for the emergency purpose, read audited")
    position_at: datetime | None
    timeline: list[IncidentEventRead]


class IncidentAction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Literal["acknowledge", "start", "resolve", "close", "note", "assign"]
    outcome: Literal["genuine", "false_alarm", "mistaken", "malicious"] | None = None
    note: CleanStr | None = Field(default=None, max_length=500)
    assignee: str | None = Field(default=None, pattern=ID_PATTERN, description="assign: the agent's staff id")


class ContactCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: CleanStr = Field(min_length=1, max_length=64)
    phone: str = Field(pattern=r"^\+?[0-9][0-9 -]{5,18}[0-9]$")
    auto_share: Literal["never", "always", "night"] = Field(
        default="never", description="send them a live link when a trip starts: never, always, or 22:00-06:00")


class ContactUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    auto_share: Literal["never", "always", "night"]


class ContactVerify(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=r"^[0-9]{6}$")


class ContactRead(BaseModel):
    id: str
    name: str | None
    phone: str | None
    verified: bool
    auto_share: str


class ContactRequestCreate(BaseModel):
    """Someone named as an emergency contact asks, with the phone they were named with."""

    model_config = ConfigDict(extra="forbid")

    phone: str = Field(pattern=r"^\+?[0-9][0-9 -]{5,18}[0-9]$", description="the phone you were named with")
    kind: Literal["access", "erasure"] = Field(description="your data (access) or its erasure")


class ContactRequestVerify(ContactRequestCreate):
    code: str = Field(pattern=r"^\s*[0-9]{6}\s*$", max_length=32, description="the code the phone received")


class ContactRequestAccepted(BaseModel):
    """The same answer whether or not the number is anyone's emergency contact."""

    detail: str


class ContactRequestDone(BaseModel):
    request: RequestRead
    export: dict[str, Any] | None = Field(description="for an access request: what TripGuard holds about you")


class ShareCreated(BaseModel):
    id: str
    url: str = Field(description="shown once: TripGuard keeps only a keyed hash of it")
    expires_at: datetime | None = Field(description="24 h after arrival; none while the trip is under way")


class RecordingCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    trip_id: str = Field(pattern=ID_PATTERN)
    device_id: str = Field(pattern=ID_PATTERN)
    kind: Literal["audio", "video"]
    content_type: str = Field(pattern=r"^(audio|video)/[a-z0-9.+-]{1,40}$")
    started_at: Timestamp
    duration_s: int = Field(ge=1, le=24 * 3600)
    size: int = Field(ge=1, le=256 * 1024 * 1024, description="at most 256 MiB a segment (played back whole)")
    sha256: str = Field(pattern=r"^[0-9a-fA-F]{64}$")


class RecordingRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    trip_id: str
    kind: str
    status: str
    size: int
    received: int
    keep_until: datetime


class SafetyUseRead(BaseModel):
    """R 二.2 任務三 / 評估標準三: share of trips that used a safety feature (target ≥ 80 %)."""

    model_config = ConfigDict(from_attributes=True)

    since: datetime
    trips: int
    shared: int
    with_contacts: int
    sos: int
    checked_in: int
    used: int
    use_rate: float | None
