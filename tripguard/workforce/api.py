"""HTTP: the supervision team's findings."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict

from tripguard.core.db import DbSession
from tripguard.security.auth import SupervisionReader
from tripguard.workforce import supervision

router = APIRouter(prefix="/api/v1", tags=["workforce"])


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
    created_at: datetime


@router.get("/supervision/findings")
def findings(_: SupervisionReader, session: DbSession,
             status: Annotated[str | None, Query(pattern="^(open|reviewed)$")] = "open") -> list[FindingRead]:
    """What the supervision rules flagged, newest first, each with its audit entries as evidence."""
    return [FindingRead.model_validate(f) for f in supervision.findings(session, status=status)]
