"""Reports over HTTP."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


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
