"""Reports over HTTP."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


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
    value: float | None
    numerator: float | None
    denominator: float | None
    detail: dict[str, float | int | None]
    target: TargetRead
    status: str = Field(description="green | amber | red | info (no target, or nothing to measure)")
    point_in_time: bool = Field(description="measured when asked, not over the period")
    drill_down: bool


class KpiReport(BaseModel):
    period: str
    start: datetime
    end: datetime
    computed_at: datetime
    kpis: list[KpiRead]


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
