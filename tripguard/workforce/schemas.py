"""The workforce over HTTP: courses and attempts, agreements and signatures, violations and sanctions."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StringConstraints

from tripguard.core.identifiers import ID_PATTERN
from tripguard.core.periods import PeriodLabel
from tripguard.core.types import CleanStr

Title = Annotated[CleanStr, StringConstraints(min_length=1, max_length=200)]
Body = Annotated[CleanStr, StringConstraints(min_length=1, max_length=20000)]
Option = Annotated[CleanStr, StringConstraints(min_length=1, max_length=300)]


class Module(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title_zh: Title
    title_en: Title
    body_zh: Body
    body_en: Body


class Question(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text_zh: Annotated[CleanStr, StringConstraints(min_length=1, max_length=1000)]
    text_en: Annotated[CleanStr, StringConstraints(min_length=1, max_length=1000)]
    options_zh: list[Option] = Field(min_length=2, max_length=8)
    options_en: list[Option] = Field(min_length=2, max_length=8)
    answer: StrictInt = Field(ge=0, le=7, description="the index of the right option")


class CourseWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["safety", "emergency", "service", "confidentiality"]
    audience: Literal["driver", "courier", "worker"] = Field(description="worker: drivers and couriers")
    title_zh: Title
    title_en: Title
    modules: list[Module] = Field(min_length=1, max_length=50)
    quiz: list[Question] = Field(min_length=1, max_length=100)
    pass_mark: StrictInt = Field(ge=1, le=100, description="percent of questions right")
    required: StrictBool = Field(description="must be passed before the worker is dispatched")
    refresher_months: StrictInt | None = Field(default=None, ge=1, le=120, description="a pass runs out after this")


class CourseRead(BaseModel):
    id: str
    kind: str
    audience: str
    title_zh: str
    title_en: str
    pass_mark: int
    required: bool
    refresher_months: int | None
    version: int
    modules: int = Field(description="how many modules")
    questions: int = Field(description="how many quiz questions")


class PlanEntry(BaseModel):
    course_id: str
    kind: str
    title: str
    required: bool
    reason: str = Field(description="onboarding | refresher | retraining | optional | done")
    passed_at: datetime | None
    expires_at: datetime | None


class ModuleRead(BaseModel):
    title: str
    body: str


class QuestionRead(BaseModel):
    text: str
    options: list[str]


class CourseContent(BaseModel):
    """A course in the reader's language, the quiz without its answers."""

    id: str
    kind: str
    title: str
    version: int
    pass_mark: int
    modules: list[ModuleRead]
    quiz: list[QuestionRead]


class AttemptCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Bounded as the questions are (at most 100, of at most 8 options): -1 and 2**70 were taken unchecked.
    answers: list[Annotated[StrictInt, Field(ge=0, le=7)]] = Field(
        max_length=100, description="the index of the chosen option (0 the first), per question")


class AttemptRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    course_id: str
    course_version: int
    score: int
    passed: bool
    at: datetime
    expires_at: datetime | None
    certificate_no: str | None
    rating: int | None


class Rating(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rating: StrictInt = Field(ge=1, le=5, description="how satisfied, 1-5")


class TrainingKpiRead(BaseModel):
    """R 五.2 評估標準五: training coverage (target 100 %) and satisfaction."""

    at: datetime
    active_workers: int
    covered_workers: int
    coverage: float | None
    ratings: int
    satisfaction: float | None = Field(description="the mean rating, 1-5")
    satisfied_share: float | None = Field(description="share of ratings of 4 or 5")


class AgreementWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title_zh: Title
    title_en: Title
    body_zh: Body
    body_en: Body


class AgreementRead(BaseModel):
    audience: str
    version: str
    title: str
    body: str
    sha256: str = Field(description="sign by sending this back")
    published_at: datetime | None
    signed_at: datetime | None


class AgreementVersion(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    audience: str
    version: str
    title_zh: str
    title_en: str
    sha256: str
    published_at: datetime
    published_by: str


class SignatureCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="the hash of the text you read")


class SignatureRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    audience: str
    version: str
    sha256: str
    signed_at: datetime


class Evidence(BaseModel):
    model_config = ConfigDict(extra="forbid")

    audit: list[Annotated[str, StringConstraints(pattern=r"^[0-9]{1,18}$")]] = Field(default=[], max_length=500)
    incidents: list[Annotated[str, StringConstraints(pattern=ID_PATTERN, max_length=64)]] = Field(default=[],
                                                                                                   max_length=50)
    complaints: list[Annotated[str, StringConstraints(pattern=ID_PATTERN, max_length=64)]] = Field(default=[],
                                                                                                    max_length=50)
    findings: list[Annotated[str, StringConstraints(pattern=ID_PATTERN, max_length=40)]] = Field(default=[],
                                                                                                  max_length=50)


class ViolationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    offender_type: Literal["staff", "worker"]
    offender_id: str = Field(pattern=ID_PATTERN, max_length=64)
    kind: Literal["privacy", "safety", "service", "conduct"]
    summary: Annotated[CleanStr, StringConstraints(min_length=1, max_length=4000)]
    evidence: Evidence


class ViolationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    offender_type: str
    offender_id: str
    kind: str
    evidence: dict[str, list[str]]
    status: str
    created_by: str
    created_at: datetime


class SanctionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["warning", "fine", "suspension", "dismissal", "referral", "retraining"]
    amount_fen: StrictInt | None = Field(default=None, ge=1, le=100_000_000, description="a fine, in fen")
    days: StrictInt | None = Field(default=None, ge=1, le=3650, description="a suspension's length; none: until lifted")
    course_id: str | None = Field(default=None, pattern=ID_PATTERN, max_length=64, description="retraining")


class SanctionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    violation_id: str
    offender_id: str
    kind: str
    amount_fen: int | None
    starts_at: datetime
    ends_at: datetime | None
    status: str
    decided_at: datetime
    appeal_status: str | None
    appeal_filed_at: datetime | None


class ViolationDetail(ViolationRead):
    summary: str | None
    sanctions: list[SanctionRead]


class AppealCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: Annotated[CleanStr, StringConstraints(min_length=1, max_length=4000)]


class AppealDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: Literal["upheld", "overturned"]


class FindingReview(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: Literal["justified"] = Field(description="the access had a reason; raise a violation otherwise")


class FindingRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    rule: str
    actor_type: str
    actor_id: str
    window_start: datetime
    window_end: datetime
    count: int
    evidence: list[int]
    status: str
    outcome: str | None
    violation_id: str | None
    reviewed_by: str | None
    created_at: datetime


class ChecklistItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(pattern=r"^[a-z0-9_]{1,40}$")
    text_zh: Annotated[CleanStr, StringConstraints(min_length=1, max_length=500)]
    text_en: Annotated[CleanStr, StringConstraints(min_length=1, max_length=500)]


class ChecklistWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title_zh: Title
    title_en: Title
    items: list[ChecklistItem] = Field(min_length=1, max_length=100)


class ChecklistRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    title_zh: str
    title_en: str
    items: list[dict[str, str]]
    version: int
    updated_at: datetime


class InspectionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    checklist_id: str = Field(pattern=ID_PATTERN, max_length=64)
    period: PeriodLabel
    results: dict[Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,40}$")], Literal["pass", "fail", "n/a"]] = \
        Field(max_length=100)
    notes: Annotated[CleanStr, StringConstraints(min_length=1, max_length=4000)] | None = None


class InspectionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    checklist_id: str
    checklist_version: int
    inspector: str
    period: str
    results: list[dict[str, str]]
    failed: int
    at: datetime
