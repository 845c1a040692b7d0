"""The public trip-share page: no sign-in, not indexed, rate-limited, every view audited."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Path, Request
from fastapi.responses import HTMLResponse, JSONResponse
from sqlalchemy.orm import Session, sessionmaker

from tripguard.console.rendering import render
from tripguard.core.bookkeeping import OncePer, Tally, write_bookkeeping
from tripguard.core.db import DbSession
from tripguard.core.deps import SecretKey, Sessions
from tripguard.core.errors import TooManyRequests
from tripguard.safety import shares
from tripguard.safety.deps import ShareLimiter, ShareViews
from tripguard.security.auth import Public
from tripguard.security.deps import LastSeenDue
from tripguard.security.rate_limit import SlidingWindowLimiter
from tripguard.telematics.deps import Live
from tripguard.telematics.service import LiveMonitor
from tripguard.vault.deps import AppVault
from tripguard.vault.service import Vault

router = APIRouter(prefix="/s", include_in_schema=False)
Token = Annotated[str, Path(min_length=20, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
NOINDEX = {"X-Robots-Tag": "noindex, nofollow", "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


@dataclass(frozen=True)
class _Link:
    """What opening a share link reads and counts with."""

    limiter: SlidingWindowLimiter
    vault: Vault
    live: LiveMonitor
    secret: str
    views: Tally
    due: OncePer
    sessions: sessionmaker[Session]


async def _link(limiter: ShareLimiter, vault: AppVault, live: Live, secret: SecretKey,
                views: ShareViews, due: LastSeenDue, sessions: Sessions) -> _Link:
    return _Link(limiter, vault, live, secret, views, due, sessions)


Link = Annotated[_Link, Depends(_link)]


def _view(link: _Link, session: DbSession, token: str, background: BackgroundTasks
          ) -> shares.ShareView:
    if link.limiter.hit(token) is not None:
        raise TooManyRequests("too many views of this link; try again in a minute")
    view = shares.view(session, vault=link.vault, live=link.live, secret_key=link.secret, token=token)
    background.add_task(_count_view, link, view.share_id)  # after the request's transaction
    return view


def _count_view(link: _Link, share_id: str) -> None:
    """One more view of the link; written at most once a minute per link and process (core.bookkeeping)."""
    link.views.add(share_id)
    key = f"share:{share_id}"
    if not link.due.claim(key):
        return
    views = link.views.take(share_id)
    if not write_bookkeeping(link.sessions,
                             write=lambda session: shares.count_views(session, share_id=share_id, views=views)):
        link.views.add(share_id, views)
        link.due.retry_soon(key)


@router.get("/{token}", dependencies=[Public])
def share_page(token: Token, request: Request, link: Link, session: DbSession,
               background: BackgroundTasks) -> HTMLResponse:
    view = _view(link, session, token, background)
    response = render(request, "web/share.html", view=view, token=token)
    response.headers.update(NOINDEX)
    return response


@router.get("/{token}/position", dependencies=[Public])
def share_position(token: Token, link: Link, session: DbSession, background: BackgroundTasks
                   ) -> JSONResponse:
    view = _view(link, session, token, background)
    return JSONResponse({"position": view.position, "at": view.position_at, "arrived": view.arrived,
                         "eta_minutes": view.eta_minutes}, headers=NOINDEX)
