"""Request and response bodies of screening: what the operator sends, what the gate answers."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tripguard.core.identifiers import ID_PATTERN
from tripguard.core.types import CleanStr
from tripguard.privacy.catalogue import Category
from tripguard.privacy.schemas import PHONE_PATTERN, VERSION_PATTERN

Role = Literal["driver", "courier"]
BASE64 = r"^[A-Za-z0-9+/]+={0,2}$"
PICTURE_DOC = "a JPEG or PNG, base64 (about 1.5 MB at most)"


class ApplicantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role
    name: CleanStr = Field(min_length=1, max_length=64, description="as on the resident ID card")
    id_number: CleanStr = Field(min_length=1, max_length=32,
                                description="resident ID number (GB 11643): its format, check digit, region "
                                            "and date of birth are checked before anything is stored")
    phone: str | None = Field(default=None, pattern=PHONE_PATTERN, description="where notices are sent (SMS)")
    city: str | None = Field(default=None, pattern=r"^[a-z][a-z-]{1,39}$",
                             description="a city whose own conditions apply (policies/cities/<city>.json)")
    locale: Literal["zh_CN", "en"] = "zh_CN"
    notice_version: str = Field(pattern=VERSION_PATTERN,
                                description="the screening notice the applicant consented to: it must declare "
                                            "the screening purpose and every kind of sensitive data consented to")
    selfie: str | None = Field(default=None, min_length=16, max_length=2_000_000, pattern=BASE64,
                               description=PICTURE_DOC)
    consents: list[Category] = Field(
        default_factory=list, max_length=len(Category),
        description="the kinds of sensitive data (PIPL Art. 28) the applicant separately consented to, each one "
                    "ticked on its own (Art. 29): user.criminal_history and user.financial.credit always, "
                    "user.biometric.face with a selfie")


class ApplicantRead(BaseModel):
    """An applicant's screening, without personal data."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    role: str
    city: str | None
    status: str
    outcome: str | None
    policy_version: str | None
    decided_at: datetime | None
    dispute_due_at: datetime | None
    notice_failed_at: datetime | None = Field(default=None, description="the pre-adverse notice did not reach the "
                                              "applicant (no phone, or its SMS failed): no dispute window runs, "
                                              "an officer acts")
    cleared_at: datetime | None
    rescreen_due_at: datetime | None
    created_at: datetime


class MyScreening(ApplicantRead):
    """An applicant's own view: the reasons of a decision against them, to dispute."""

    reasons: list[str]


class CheckRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    kind: str
    status: str
    result: str | None
    updated_at: datetime


class ApplicantDetail(ApplicantRead):
    checks: list[CheckRead]
    consents: list[str] = Field(description="the sensitive kinds of data separately consented to under the notice")


class BlockerRead(BaseModel):
    code: str
    since: datetime | None
    ref: str | None = None  # the course, device or vehicle it is about


class EligibilityRead(BaseModel):
    worker_id: str
    eligible: bool
    blockers: list[BlockerRead]


class DocumentUpload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content_type: Literal["application/pdf", "image/jpeg", "image/png"]
    data: str = Field(min_length=4, max_length=2_800_000, pattern=BASE64,
                      description="base64, 2 MiB at most")


class DisputeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: CleanStr = Field(min_length=1, max_length=4000, description="what is wrong, in your own words")
    documents: list[DocumentUpload] = Field(default_factory=list, max_length=5)


class DisputeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    applicant_id: str
    status: str
    filed_at: datetime


class Decide(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Literal["clear", "pre_adverse", "reject", "notice_delivered"]
    note: CleanStr | None = Field(default=None, min_length=1, max_length=2000)


class IdentityCheckCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    selfie: str = Field(min_length=16, max_length=2_000_000, pattern=BASE64, description=PICTURE_DOC)


class IdentityCheckRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    worker_id: str = Field(validation_alias="applicant_id")
    matched: bool
    score: float
    incident_id: str | None
    at: datetime


class CallbackReceipt(BaseModel):
    received: Literal["taken", "duplicate"]


class InvitationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    worker_id: str = Field(pattern=ID_PATTERN, max_length=64, description="your id for the person")
    role: Role
    city: str | None = Field(default=None, pattern=r"^[a-z][a-z-]{1,39}$")
    locale: Literal["zh_CN", "en"] = "zh_CN"
    notice_version: str = Field(pattern=VERSION_PATTERN, description="the screening notice the page shows")


class InvitationRead(BaseModel):
    worker_id: str
    url: str = Field(description="send this to the person; it works once, for 72 hours")
    expires_at: datetime
