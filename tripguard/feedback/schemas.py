"""Complaints over HTTP."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tripguard.core.identifiers import ID_PATTERN
from tripguard.core.types import CleanStr

Category = Literal["safety", "conduct", "privacy", "service", "low_rating", "other"]


class ComplaintCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    trip_id: str | None = Field(default=None, pattern=ID_PATTERN, description="a trip of yours")
    order_id: str | None = Field(default=None, pattern=ID_PATTERN, description="a delivery order of yours")
    category: Category
    rating: int | None = Field(default=None, ge=1, le=5, description="stars, when the complaint is a rating")
    text: str | None = Field(default=None, min_length=1, max_length=2000, description="in your own words")

    @model_validator(mode="after")
    def _about_something(self) -> ComplaintCreate:
        if self.category == "low_rating" and (self.rating is None or self.rating > 2):
            raise ValueError("a low rating is one or two stars")
        if self.category != "safety" and self.trip_id is None and self.order_id is None:
            raise ValueError("name the trip or the order this is about")
        return self


class ComplaintRead(BaseModel):
    """What the person and the supervisors' list show (the text is read only through the vault)."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    subject_role: str
    trip_id: str | None
    order_id: str | None
    category: str
    rating: int | None
    status: str
    created_at: datetime
    due_at: datetime | None = None
    answered_at: datetime | None = None


class DeskComplaint(ComplaintRead):
    """What the feedback desk sees of a complaint it handled: what it became (not shown to the person)."""

    assigned_to: str | None
    became: str | None = Field(description="incident | breach | violation")
    became_id: str | None


class MyComplaint(ComplaintRead):
    """The person's own complaint, with the desk's answer."""

    answer: str | None


class Assign(BaseModel):
    model_config = ConfigDict(extra="forbid")

    assignee: str | None = Field(default=None, pattern=ID_PATTERN, max_length=64,
                                 description="a support agent's staff id; yourself when left out")


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: CleanStr = Field(min_length=2, max_length=2000, description="to the person, in their language")


class Escalate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: Literal["incident", "breach", "violation"]
    offender_type: Literal["staff", "worker"] | None = Field(default=None, description="a violation: by whom")
    offender_id: str | None = Field(default=None, pattern=ID_PATTERN, max_length=64)
    kind: Literal["privacy", "safety", "service", "conduct"] | None = None
    summary: CleanStr | None = Field(default=None, min_length=1, max_length=4000, description="a violation: what")

    @model_validator(mode="after")
    def _violation_named(self) -> Escalate:
        if self.to == "violation" and None in (self.offender_type, self.offender_id, self.kind, self.summary):
            raise ValueError("a violation names the offender_type, offender_id, kind and summary")
        return self
