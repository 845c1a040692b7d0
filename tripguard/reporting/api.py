"""HTTP: the KPIs of a period against their targets, and the records behind a figure."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from tripguard.core import i18n
from tripguard.core import periods as grammar
from tripguard.core.admission import Bulk
from tripguard.core.clock import utcnow
from tripguard.core.db import DbSession
from tripguard.core.errors import NotFound
from tripguard.reporting import digests, kpis, periods
from tripguard.reporting.schemas import (
    DigestRead,
    DigestSubscriptionRead,
    DigestSubscriptionWrite,
    KpiRead,
    KpiRecords,
    KpiReport,
    TargetRead,
)
from tripguard.security.auth import ReportReader

router = APIRouter(prefix="/api/v1", tags=["reporting"])
PeriodLabel = Annotated[str, Query(pattern=periods.PATTERN, description=grammar.DESCRIPTION)]


def kpi_read(result: kpis.Result) -> KpiRead:
    kpi, value = result.kpi, result.value
    return KpiRead(key=kpi.key, title=i18n.gettext(kpi.title), definition=i18n.gettext(kpi.definition),
                   source=kpi.source, owner=kpi.owner, unit=kpi.unit, value=value.value, numerator=value.numerator,
                   denominator=value.denominator, detail=value.detail,
                   target=TargetRead(at_least=result.target.at_least, at_most=result.target.at_most),
                   status=result.status, point_in_time=kpi.point_in_time, drill_down=kpi.drill is not None)


@router.get("/reports/kpis", dependencies=[Bulk])
def kpi_report(_: ReportReader, request: Request, session: DbSession, period: PeriodLabel) -> KpiReport:
    """Every KPI of the period against its target (green, amber, red), with its numerator and
    denominator. Device figures are measured now (`point_in_time`)."""
    settings = request.app.state.settings
    span = periods.parse(period, settings.timezone)
    now = utcnow()
    results = kpis.compute(session, span, now=now, ack_seconds=settings.incident_ack_seconds,
                           timezone=settings.timezone)
    return KpiReport(period=span.label, start=span.start, end=span.end, computed_at=now,
                     kpis=[kpi_read(r) for r in results])


@router.get("/reports/kpis/{key}/records", dependencies=[Bulk])
def kpi_records(key: Annotated[str, Path(pattern=r"^[a-z0-9_.]{1,64}$")], _: ReportReader, request: Request,
                session: DbSession, period: PeriodLabel) -> KpiRecords:
    """The records behind a figure (ids, times and states; never personal data): the SOS presses by
    acknowledgement time, requests and complaints answered late or not yet."""
    kpi = kpis.BY_KEY.get(key)
    if kpi is None or kpi.drill is None:
        raise NotFound("no such figure, or none with records behind it")
    settings = request.app.state.settings
    span = periods.parse(period, settings.timezone)
    return KpiRecords(key=key, period=span.label, records=kpis.records(
        session, span, key, now=utcnow(), ack_seconds=settings.incident_ack_seconds, timezone=settings.timezone))


Kind = Annotated[str, Path(pattern="^(weekly|monthly)$")]


@router.put("/me/digests/{kind}")
def subscribe(kind: Kind, body: DigestSubscriptionWrite, reader: ReportReader, request: Request,
              session: DbSession) -> DigestSubscriptionRead:
    """Receive the weekly or monthly digest by e-mail (the address is sealed under your key)."""
    row = digests.subscribe(session, request.app.state.vault, reader, kind=kind, email=body.email, locale=body.locale)
    return DigestSubscriptionRead(kind=row.kind, locale=row.locale, created_at=row.created_at)


@router.delete("/me/digests/{kind}", status_code=204)
def unsubscribe(kind: Kind, reader: ReportReader, session: DbSession) -> Response:
    digests.unsubscribe(session, reader, kind=kind)
    return Response(status_code=204)


@router.get("/reports/digests")
def list_digests(_: ReportReader, session: DbSession) -> list[DigestRead]:
    """The latest weekly and monthly digests, newest first."""
    return [DigestRead.model_validate(d) for d in digests.recent(session)]
