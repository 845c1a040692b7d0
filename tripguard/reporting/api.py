"""HTTP: the KPIs of a period against their targets, and the records behind a figure."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from tripguard.core import i18n
from tripguard.core import periods as grammar
from tripguard.core.admission import Bulk
from tripguard.core.clock import utcnow
from tripguard.core.db import DbSession
from tripguard.core.deps import AppSettings
from tripguard.core.errors import NotFound
from tripguard.reporting import closing, digests, kpis, periods
from tripguard.reporting.schemas import (
    ClosedPeriodRead,
    DigestRead,
    DigestSubscriptionRead,
    DigestSubscriptionWrite,
    KpiRead,
    KpiRecords,
    KpiReport,
    PeriodVersionRead,
    RestatementWrite,
    TargetRead,
)
from tripguard.security.auth import ReportCloser, ReportReader
from tripguard.vault.deps import AppVault

router = APIRouter(prefix="/api/v1", tags=["reporting"])
PeriodLabel = Annotated[str, Query(pattern=periods.PATTERN, description=grammar.DESCRIPTION)]


def kpi_read(result: kpis.Result) -> KpiRead:
    kpi, value = result.kpi, result.value
    return KpiRead(key=kpi.key, title=i18n.gettext(kpi.title), definition=i18n.gettext(kpi.definition),
                   source=kpi.source, owner=kpi.owner, unit=kpi.unit, value=value.value, numerator=value.numerator,
                   denominator=value.denominator, detail=value.detail, no_data=value.value is None,
                   target=TargetRead(at_least=result.target.at_least, at_most=result.target.at_most),
                   status=result.status, point_in_time=kpi.point_in_time, drill_down=kpi.drill is not None,
                   frozen_version=result.frozen)


@router.get("/reports/kpis", dependencies=[Bulk])
def kpi_report(_: ReportReader, session: DbSession, period: PeriodLabel, settings: AppSettings
               ) -> KpiReport:
    """Every KPI of the period against its target (green, amber, red), with its numerator and
    denominator. A finished period is measured from its own records; `no_data` where it has none. A
    closed quarter shows its frozen figures (`closed_version`)."""
    span = periods.parse(period, settings.timezone)
    now = utcnow()
    results = kpis.compute(session, period=span, now=now, ack_seconds=settings.incident_ack_seconds,
                           timezone=settings.timezone)
    return KpiReport(period=span.label, start=span.start, end=span.end, computed_at=now,
                     closed_version=next((r.frozen for r in results if r.frozen is not None), None),
                     kpis=[kpi_read(r) for r in results])


QuarterLabel = Annotated[str, Path(pattern=closing.QUARTER, description="a quarter: 2026Q3")]


def _closed_read(session: DbSession, label: str, timezone: str, ack_seconds: int) -> ClosedPeriodRead:
    kept = closing.versions(session, label=label)
    results = kpis.compute(session, period=periods.parse(label, timezone), now=utcnow(),
                           ack_seconds=ack_seconds,
                           timezone=timezone) if kept else []
    return ClosedPeriodRead(period=label, closed=bool(kept),
                            versions=[PeriodVersionRead.model_validate(v) for v in kept],
                            kpis=[kpi_read(r) for r in results])


@router.get("/reports/periods/{quarter}")
def closed_period(quarter: QuarterLabel, _: ReportReader, session: DbSession, settings: AppSettings
                  ) -> ClosedPeriodRead:
    """Whether a quarter is closed, the versions of its frozen figures (the closing and each restatement,
    with its reason) and the latest version's figures."""
    periods.parse(quarter, settings.timezone)
    return _closed_read(session, quarter, settings.timezone, settings.incident_ack_seconds)


@router.post("/reports/periods/{quarter}/close", dependencies=[Bulk])
def close_period(quarter: QuarterLabel, closer: ReportCloser, response: Response,
                 session: DbSession, settings: AppSettings) -> ClosedPeriodRead:
    """Close a finished quarter: its figures are computed from its records and frozen (201); later reports
    show them. Closing a closed quarter changes nothing (200). 409 while the quarter runs."""
    _, made = closing.close(session, label=quarter, actor=closer.actor, now=utcnow(),
                            timezone=settings.timezone,
                            ack_seconds=settings.incident_ack_seconds)
    response.status_code = 201 if made else 200
    return _closed_read(session, quarter, settings.timezone, settings.incident_ack_seconds)


@router.post("/reports/periods/{quarter}/restatements", status_code=201, dependencies=[Bulk])
def restate_period(quarter: QuarterLabel, body: RestatementWrite, closer: ReportCloser,
                   session: DbSession, settings: AppSettings) -> ClosedPeriodRead:
    """Restate a closed quarter: recompute its figures, as the next version, for a reason (audited). Names
    the version it replaces: 409 if that is no longer the latest; 404 if the quarter is not closed."""
    closing.restate(session, label=quarter, version=body.version, reason=body.reason,
                    actor=closer.actor, now=utcnow(),
                    timezone=settings.timezone, ack_seconds=settings.incident_ack_seconds)
    return _closed_read(session, quarter, settings.timezone, settings.incident_ack_seconds)


@router.get("/reports/kpis/{key}/records", dependencies=[Bulk])
def kpi_records(key: Annotated[str, Path(pattern=r"^[a-z0-9_.]{1,64}$")], _: ReportReader,
                session: DbSession, period: PeriodLabel, settings: AppSettings) -> KpiRecords:
    """The records behind a figure (ids, times and states; never personal data): the SOS presses by
    acknowledgement time, requests and complaints answered late or not yet."""
    kpi = kpis.BY_KEY.get(key)
    if kpi is None or kpi.drill is None:
        raise NotFound("no such figure, or none with records behind it")
    span = periods.parse(period, settings.timezone)
    return KpiRecords(key=key, period=span.label, records=kpis.records(
        session, period=span, key=key, now=utcnow(), ack_seconds=settings.incident_ack_seconds,
        timezone=settings.timezone))


Kind = Annotated[str, Path(pattern="^(weekly|monthly)$")]


@router.put("/me/digests/{kind}")
def subscribe(kind: Kind, body: DigestSubscriptionWrite, reader: ReportReader, session: DbSession,
              vault: AppVault) -> DigestSubscriptionRead:
    """Receive the weekly or monthly digest by e-mail (the address is sealed under your key)."""
    row = digests.subscribe(session, vault=vault, principal=reader, kind=kind, email=body.email,
                            locale=body.locale)
    return DigestSubscriptionRead(kind=row.kind, locale=row.locale, created_at=row.created_at)


@router.delete("/me/digests/{kind}", status_code=204)
def unsubscribe(kind: Kind, reader: ReportReader, session: DbSession) -> Response:
    digests.unsubscribe(session, principal=reader, kind=kind)
    return Response(status_code=204)


@router.get("/reports/digests")
def list_digests(_: ReportReader, session: DbSession) -> list[DigestRead]:
    """The latest weekly and monthly digests, newest first."""
    return [DigestRead.model_validate(d) for d in digests.recent(session)]
