"""The public trip-share page: no sign-in, not indexed, rate-limited, every view audited."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, FastAPI, Path, Request
from fastapi.responses import HTMLResponse, JSONResponse

from tripguard.core.bookkeeping import Tally, write_bookkeeping
from tripguard.core.db import DbSession
from tripguard.core.errors import TooManyRequests
from tripguard.safety import shares
from tripguard.security.auth import Public
from tripguard.web.rendering import render

router = APIRouter(prefix="/s", include_in_schema=False)
Token = Annotated[str, Path(min_length=20, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
NOINDEX = {"X-Robots-Tag": "noindex, nofollow", "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def _view(request: Request, session: DbSession, token: str, background: BackgroundTasks) -> shares.ShareView:
    if request.app.state.share_limiter.hit(token) is not None:
        raise TooManyRequests("too many views of this link; try again in a minute")
    app = request.app
    view = shares.view(session, app.state.vault, app.state.live_monitor,
                       app.state.settings.secret_key.get_secret_value(), token=token)
    background.add_task(_count_view, app, view.share_id)  # after the request's transaction
    return view


def _count_view(app: FastAPI, share_id: str) -> None:
    """One more view of the link; written at most once a minute per link and process (core.bookkeeping)."""
    tally: Tally = app.state.share_views
    tally.add(share_id)
    key = f"share:{share_id}"
    if not app.state.last_seen_due.claim(key):
        return
    views = tally.take(share_id)
    if not write_bookkeeping(app.state.sessionmaker,
                             lambda session: shares.count_views(session, share_id=share_id, views=views)):
        tally.add(share_id, views)
        app.state.last_seen_due.retry_soon(key)


@router.get("/{token}", dependencies=[Public])
def share_page(token: Token, request: Request, session: DbSession, background: BackgroundTasks) -> HTMLResponse:
    view = _view(request, session, token, background)
    response = render(request, "share.html", view=view, token=token)
    response.headers.update(NOINDEX)
    return response


@router.get("/{token}/position", dependencies=[Public])
def share_position(token: Token, request: Request, session: DbSession, background: BackgroundTasks) -> JSONResponse:
    view = _view(request, session, token, background)
    return JSONResponse({"position": view.position, "at": view.position_at, "arrived": view.arrived,
                         "eta_minutes": view.eta_minutes}, headers=NOINDEX)
