"""Reports over HTTP."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from tripguard.core.types import LongReason


class TargetRead(BaseModel):
    at_least: float | None
    at_most: float | None


class KpiRead(BaseModel):
    key: str
    title: str
    definition: str
    source: str = Field(description="the clause of the plan or the rules it answers")
    owner: str = Field(description="the role answerable for it")
    unit: str = Field(description="ratio | count | seconds | hours | score")
    value: float | None = Field(description="null: no data (nothing of the period recorded, or nothing to measure)")
    no_data: bool = Field(description="the figure has no value for the period (shown as \"no data\")")
    numerator: float | None
    denominator: float | None
    detail: dict[str, float | int | None]
    target: TargetRead
    status: str = Field(description="green | amber | red | info (no target, or nothing to measure)")
    point_in_time: bool = Field(description="the period under way: measured when asked; a finished one: from its "
                                            "daily snapshots, or as the registry dates it at the period's end")
    drill_down: bool
    frozen_version: int | None = Field(description="the closed quarter's version of its figures this comes from")


class KpiReport(BaseModel):
    period: str
    start: datetime
    end: datetime
    computed_at: datetime
    closed_version: int | None = Field(description="a closed quarter: the version of its frozen figures shown")
    kpis: list[KpiRead]


class RestatementWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1, le=1_000_000, description="the version being restated (the latest)")
    reason: LongReason = Field(description="why the figures are restated: stripped, 5 to 500 characters, at "
                                           "least 5 of them letters or digits")


class PeriodVersionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    version: int
    reason: str | None
    made_by: str
    made_at: datetime


class ClosedPeriodRead(BaseModel):
    period: str
    closed: bool
    versions: list[PeriodVersionRead] = Field(description="the closing (1) and each restatement, oldest first")
    kpis: list[KpiRead] = Field(description="the latest version's figures (empty while open)")


class KpiRecords(BaseModel):
    key: str
    period: str
    records: list[dict[str, object]]


class DigestSubscriptionWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(pattern=r"^[^@\s]{1,64}@[^@\s]{1,190}\.[A-Za-z]{2,24}$", max_length=254)
    locale: str = Field(default="zh_CN", pattern="^(zh_CN|en)$")


class DigestSubscriptionRead(BaseModel):
    kind: str
    locale: str
    created_at: datetime


class DigestRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    kind: str
    period: str
    figures: list[dict[str, object]]
    recipients: int
    created_at: datetime
