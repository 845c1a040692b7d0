"""HTTP: the operator's backend passes through what TripGuard does not hold; the compliance officer reads the
feed's state and reconciliation, back-fills a range and records planned outages."""

from __future__ import annotations

from datetime import date
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Response

from tripguard.core.db import DbSession
from tripguard.core.deps import AppSettings, Sessions
from tripguard.core.errors import DomainError, FieldProblem
from tripguard.regulator import operations, outages, reports
from tripguard.regulator.schemas import (
    BackfillCreate,
    BackfillRead,
    DayCountRead,
    OutageCreate,
    OutageRead,
    PassThrough,
    PassThroughRead,
    TypeStateRead,
)
from tripguard.security.auth import RegulatorOperator, RegulatorReader, RegulatorSubmitter
from tripguard.vault.deps import AppVault

router = APIRouter(prefix="/api/v1/regulator", tags=["regulator"])
DAY = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"


class BadDays(DomainError):
    status, type, title = 422, "/problems/regulator-bad-days", "Days refused"


@router.post("/uploads", status_code=201,
             responses={200: {"model": PassThroughRead, "description": "the same upload again (a retry)"}})
def pass_through(body: PassThrough, submitter: RegulatorSubmitter, response: Response,
                 session: DbSession, vault: AppVault) -> PassThroughRead:
    """A message of a type TripGuard does not hold (operatePay, orderCreate, baseInfoCompany, …), queued
    unchanged and sent in its type's sequence; the same `kind` and `key` again is the same upload."""
    row, new = operations.submit(session, vault=vault, kind=body.kind, key=body.key,
                                 occurred_at=body.occurred_at, body=body.data())
    if not new:
        response.status_code = 200
    return PassThroughRead(kind=row.kind, key=row.key, sequence=row.sequence, state=row.state, queued=new)


@router.get("/status")
def status(reader: RegulatorReader, session: DbSession) -> list[TypeStateRead]:
    """Per upload type: backlog, failing, lag, watermark, last acknowledgement and last error."""
    return [TypeStateRead.model_validate(state, from_attributes=True) for state in reports.feed_state(session)]


@router.get("/reconciliation")
def reconciliation(reader: RegulatorReader, session: DbSession, settings: AppSettings,
                   first: Annotated[str, Query(pattern=DAY, description="the first day (YYYY-MM-DD), in the "
                                                                        "operator's time zone")],
                   last: Annotated[str, Query(pattern=DAY, description="the last day, at most 92 days after "
                                                                       "the first")],
                   ) -> list[DayCountRead]:
    """Per day (the operator's time zone) and type: produced, sent, acknowledged, still due."""
    try:
        rows = reports.reconcile(session, first=date.fromisoformat(first), last=date.fromisoformat(last),
                                 zone=ZoneInfo(settings.timezone))
    except ValueError as exc:
        raise BadDays(str(exc), errors=[FieldProblem(field="last", message=str(exc))]) from exc
    return [DayCountRead(day=r.day, kind=r.kind, produced=r.produced, sent=r.sent, acknowledged=r.acknowledged,
                         due=r.due, balanced=r.balanced) for r in rows]


@router.post("/backfill")
def backfill(body: BackfillCreate, operator: RegulatorOperator, session: DbSession, sessions: Sessions,
             vault: AppVault) -> BackfillRead:
    """Run the exporters (one type, or all) over a past range again, at most 7 days: what the queue misses is
    queued and sent in sequence; what it holds already is left."""
    queued = operations.backfill(session, factory=sessions, vault=vault,
                                 actor=operator.actor, kinds=[body.kind] if body.kind else None,
                                 start=body.start, end=body.end)
    return BackfillRead(queued=queued)


@router.get("/outages")
def list_outages(reader: RegulatorReader, session: DbSession) -> list[OutageRead]:
    """Planned outages, the latest first."""
    return [OutageRead.model_validate(o) for o in outages.listed(session)]


@router.post("/outages", status_code=201)
def announce_outage(body: OutageCreate, operator: RegulatorOperator, session: DbSession) -> OutageRead:
    """Record a planned outage: refused unless it starts at least 72 hours from now."""
    return OutageRead.model_validate(outages.announce(session, starts_at=body.starts_at, ends_at=body.ends_at,
                                                      reason=body.reason, actor=operator.actor))
