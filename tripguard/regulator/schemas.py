"""The regulator feed's HTTP shapes: the operator's pass-through, the feed's state, back-fill, outages."""

from __future__ import annotations

import base64
import binascii
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tripguard.core.types import LongReason, Timestamp

# The 32 upload types of the interface (../shared/reference/regulator.md §2), as the platform names them.
UPLOAD_TYPES = frozenset({
    "baseInfoCompany", "baseInfoCompanyStat", "baseInfoCompanyPay", "baseInfoCompanyService",
    "baseInfoCompanyPermit", "baseInfoCompanyFare", "baseInfoVehicle", "baseInfoVehicleInsurance",
    "baseInfoVehicleTotalMile", "baseInfoDriver", "baseInfoDriverEducate", "baseInfoDriverApp",
    "baseInfoDriverStat", "baseInfoPassenger", "orderCreate", "orderMatch", "orderCancel", "operateLogin",
    "operateLogout", "operateDepart", "operateArrive", "operatePay", "positionDriver", "positionVehicle",
    "ratedPassenger", "ratedPassengerComplaint", "ratedDriverPunish", "ratedDriver", "shareCompany", "shareRoute",
    "shareOrder", "sharePay"})
MAX_BODY = 64 * 1024


class PassThrough(BaseModel):
    """One message of a type TripGuard does not hold, from the operator's backend, sent on unchanged."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(description="the upload type, as the platform names it: operatePay, orderCreate, "
                                  "baseInfoCompany, …", max_length=40)
    key: str = Field(min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$",
                     description="your record and its version: the same key again is the same upload (queued once)")
    occurred_at: Timestamp = Field(description="when it happened (the reconciliation's day)")
    body: str = Field(min_length=1, max_length=MAX_BODY * 4 // 3 + 4,
                      description="the serialized protobuf message of that type, base64")

    @field_validator("kind")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in UPLOAD_TYPES:
            raise ValueError("not an upload type of the platform's interface")
        return value

    @field_validator("body")
    @classmethod
    def _base64(cls, value: str) -> str:
        try:
            decoded = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError("not base64") from exc
        if not decoded or len(decoded) > MAX_BODY:
            raise ValueError(f"1 to {MAX_BODY} bytes")
        return value

    def data(self) -> bytes:
        return base64.b64decode(self.body)


class PassThroughRead(BaseModel):
    kind: str
    key: str
    sequence: int
    state: str
    queued: bool = Field(description="false: this key was queued already (a retry)")


class TypeStateRead(BaseModel):
    kind: str
    backlog: int
    failing: int
    lag_seconds: float
    oldest_due: datetime | None
    watermark: datetime | None
    last_acknowledged_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None


class DayCountRead(BaseModel):
    day: date
    kind: str
    produced: int
    sent: int
    acknowledged: int
    due: int
    balanced: bool


class BackfillCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str | None = Field(default=None, max_length=40, pattern=r"^[A-Za-z]+$",
                             description="one type; none: every exporter")
    start: Timestamp
    end: Timestamp


class BackfillRead(BaseModel):
    queued: dict[str, int]


class OutageCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    starts_at: Timestamp
    ends_at: Timestamp
    reason: LongReason


class OutageRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    starts_at: datetime
    ends_at: datetime
    reason: str
    announced_at: datetime
