"""The console's home page: each role's live figures (refreshed every 30 s) and charts of the last 24
hours, from every domain (`web.dashboard`). It is the web shell's, not the console kit's, since the kit
sits below the domains it would read."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from tripguard.console.rendering import render
from tripguard.console.shell import page
from tripguard.core.clock import utcnow
from tripguard.core.db import DbSession
from tripguard.core.deps import AppSettings
from tripguard.security.auth import ConsoleUser
from tripguard.web import dashboard

router = APIRouter(prefix="/console", include_in_schema=False)


@router.get("")
def home(request: Request, principal: ConsoleUser, session: DbSession, settings: AppSettings
         ) -> HTMLResponse:
    """Each role's live figures (refreshed every 30 s) and charts of the last 24 hours."""
    board = dashboard.build(session, principal=principal, now=utcnow(), timezone=settings.timezone,
                            ack_seconds=settings.incident_ack_seconds,
                            cache_seconds=settings.dashboard_quarter_cache_seconds)
    return page(request, "web/home.html", principal, "/console", roles=sorted(principal.roles), board=board)


@router.get("/figures")
def home_figures(request: Request, principal: ConsoleUser, session: DbSession,
                 settings: AppSettings) -> HTMLResponse:
    return render(request, "web/home_figures.html", board=dashboard.build(
        session, principal=principal, now=utcnow(), charts=False, timezone=settings.timezone,
        ack_seconds=settings.incident_ack_seconds, cache_seconds=settings.dashboard_quarter_cache_seconds))
