"""Privacy API bodies. Unknown fields are refused: collect only what is declared."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from tripguard.core.identifiers import ID_PATTERN as ID
from tripguard.core.types import CleanStr, Timestamp
from tripguard.privacy.catalogue import Category
from tripguard.security.permissions import Purpose

SubjectKind = Literal["passenger", "customer", "driver", "courier", "merchant", "emergency_contact"]
PHONE_PATTERN = r"^\+?[0-9][0-9 -]{4,19}$"
EMAIL_PATTERN = r"^[^@\s]{1,64}@[^@\s]{1,190}\.[A-Za-z]{2,24}$"
VERSION_PATTERN = r"^[A-Za-z0-9._-]{1,32}$"


class SubjectUpsert(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: SubjectKind
    notice_version: str = Field(pattern=VERSION_PATTERN, description="the notice the person was shown")
    name: CleanStr | None = Field(default=None, min_length=1, max_length=64)
    phone: str | None = Field(default=None, pattern=PHONE_PATTERN)
    email: str | None = Field(default=None, pattern=EMAIL_PATTERN, max_length=254)


class SubjectReceipt(BaseModel):
    """What was stored: field names, never values."""

    id: str
    kind: str | None  # None: registered by a domain that could not say (the operator may record it)
    notice_version: str | None  # None: no notice known for where they were first seen
    fields_held: list[str]


class FieldValue(BaseModel):
    value: str | None
    plaintext: bool


class SubjectView(BaseModel):
    id: str
    kind: str | None
    notice_version: str | None
    erased: bool
    purpose: str
    fields: dict[str, FieldValue]


class EraseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Literal["subject_request", "operator", "retention"] = "operator"


class RetainedData(BaseModel):
    what: str
    ids: list[str]
    kept_until: datetime
    basis: str
    open_only_for: list[str]


class DeletionRecordRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    subject_id: str
    categories: list[str]
    reason: str
    request_id: str | None
    actor: str
    erased_at: datetime
    retained: list[RetainedData] = Field(
        default_factory=list, description="data the law keeps after the erasure, blocked for every other use")

    @field_validator("retained", mode="before")
    @classmethod
    def _none_is_empty(cls, value: object) -> object:
        return value or []


class CatalogueEntry(BaseModel):
    table: str
    column: str
    category: str
    description: str
    purposes: list[str]
    mask_example: str


class NoticeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str = Field(pattern=VERSION_PATTERN)
    purposes: list[Purpose] = Field(min_length=1, max_length=len(Purpose))
    categories: list[Category] = Field(min_length=1, max_length=len(Category))
    retention_zh: CleanStr = Field(min_length=1, max_length=2000)
    retention_en: CleanStr = Field(min_length=1, max_length=2000)
    text_zh: CleanStr = Field(min_length=1, max_length=20000)
    text_en: CleanStr = Field(min_length=1, max_length=20000)


class NoticeRead(NoticeCreate):
    model_config = ConfigDict(from_attributes=True, extra="ignore")

    published_at: datetime


class Correction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: CleanStr | None = Field(default=None, min_length=1, max_length=64)
    phone: str | None = Field(default=None, pattern=PHONE_PATTERN)
    email: str | None = Field(default=None, pattern=EMAIL_PATTERN, max_length=254)


class RequestCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["access", "correction", "erasure"]
    correction: Correction | None = None


class RequestRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    subject_id: str
    kind: str
    status: str
    received_at: datetime
    due_at: datetime
    hard_due_at: datetime
    verified_at: datetime | None
    completed_at: datetime | None
    outcome_note: str | None
    handled_by: str | None
    verify_by: Literal["code", "in_person"] | None = None  # in_person: nothing on file to send a code to


class VerifyCode(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=r"^\s*[0-9]{6}\s*$", max_length=32)


class CorrectionDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    apply: StrictBool
    note: CleanStr = Field(min_length=1, max_length=500, description="why; no personal data")


class RetentionRunCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Strict: `0` or "no" must not quietly become a destructive run.
    dry_run: StrictBool = True


class RetentionRunRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    started_at: datetime
    finished_at: datetime | None
    dry_run: bool
    actor: str
    report: dict[str, object]


class HoldCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
    case_ref: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
    reason: CleanStr = Field(min_length=1, max_length=200)


class HoldRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    subject_id: str
    case_ref: str
    reason: str
    created_by: str
    created_at: datetime
    released_at: datetime | None


class BreachCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: CleanStr = Field(min_length=1, max_length=200, description="no personal data")
    serious: StrictBool = Field(description="serious incidents are reported to the authority within 4 hours")
    occurred_from: Timestamp
    occurred_to: Timestamp
    categories: list[Category] = Field(min_length=1, max_length=len(Category))
    cause: CleanStr = Field(min_length=1, max_length=2000)
    harm: CleanStr = Field(min_length=1, max_length=2000)
    measures: CleanStr = Field(min_length=1, max_length=2000)
    advice: CleanStr = Field(min_length=1, max_length=2000)
    contact: CleanStr = Field(min_length=1, max_length=200)


class BreachRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    title: str
    status: str
    serious: bool
    discovered_at: datetime
    occurred_from: datetime
    occurred_to: datetime
    categories: list[str]
    containment: list[dict[str, object]]
    authority_due_at: datetime | None
    authority_reported_at: datetime | None
    authority_reference: str | None
    closed_at: datetime | None
    report: dict[str, object] | None


class Containment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    staff_ids: list[Annotated[str, Field(pattern=ID)]] = Field(default_factory=list, max_length=100)
    api_key_ids: list[Annotated[str, Field(pattern=ID)]] = Field(default_factory=list, max_length=100)
    rotate_keys: StrictBool = Field(default=False, description="add a new key-encryption key version now")


class Investigation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reader_id: str | None = Field(default=None, pattern=ID, description="only this actor's reads")
    since: Timestamp | None = None
    until: Timestamp | None = None


class InvestigationRead(BaseModel):
    entries: int
    readers: dict[str, int]
    subjects: list[str]


class AffectedSubjects(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject_ids: list[Annotated[str, Field(pattern=ID)]] = Field(min_length=1, max_length=10000)


class AuthorityReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reference: CleanStr = Field(min_length=1, max_length=100)
