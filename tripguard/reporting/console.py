"""The console's reports page: the KPIs of a period against their targets, and the quarterly report to
download in either language and any format."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from tripguard.console.rendering import request_locale
from tripguard.console.shell import page
from tripguard.core import periods as grammar
from tripguard.core.admission import Bulk
from tripguard.core.clock import utcnow
from tripguard.core.db import DbSession
from tripguard.core.deps import AppSettings
from tripguard.reporting import digests, kpis, periods, quarterly, render
from tripguard.security.auth import ReportReader
from tripguard.vault.keys import key_source

router = APIRouter(prefix="/console/reports", include_in_schema=False)
PeriodQuery = Annotated[str | None, Query(pattern=periods.PATTERN)]
MEDIA = {"html": "text/html; charset=utf-8", "pdf": "application/pdf", "csv": "text/csv; charset=utf-8"}


@router.get("")
def reports_page(request: Request, principal: ReportReader, session: DbSession,
                 settings: AppSettings, period: PeriodQuery = None) -> HTMLResponse:
    now = utcnow()
    label = period or periods.current_quarter(now, settings.timezone)
    span = periods.parse(label, settings.timezone)
    results = kpis.compute(session, period=span, now=now, ack_seconds=settings.incident_ack_seconds,
                           timezone=settings.timezone)
    quarters = [p.label for p in periods.trailing(periods.parse(periods.current_quarter(now, settings.timezone),
                                                                settings.timezone), 4, settings.timezone)]
    return page(request, "reporting/reports.html", principal, "/console/reports", period=span, results=results,
                shown=render.shown, target_text=render.target_text, status_words=render.STATUS_WORDS,
                closed_version=next((r.frozen for r in results if r.frozen is not None), None),
                quarters=quarters, digests=digests.recent(session))


@router.get("/quarterly", dependencies=[Bulk])
async def quarterly_download(request: Request, principal: ReportReader, session: DbSession,
                             quarter: Annotated[str, Query(pattern=grammar.QUARTER)],
                             settings: AppSettings,
                             format: Annotated[str, Query(pattern="^(html|pdf|csv)$")] = "pdf"
                             ) -> Response:
    """The quarterly report, as `tripguard report quarterly` writes it, in the page's language."""
    locale = request_locale(request)

    def build() -> bytes:
        report = quarterly.build(session, settings=settings, keys=key_source(settings),
                                 quarter=quarter, now=utcnow())
        return render.render(report, format, locale, settings.timezone)

    data = await run_in_threadpool(build)
    return Response(data, media_type=MEDIA[format], headers={
        "Content-Disposition": f'attachment; filename="tripguard-{quarter}-{locale}.{format}"'})
