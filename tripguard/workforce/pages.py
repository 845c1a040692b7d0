"""The training page a driver's or courier's app opens (`/training#token=<subject token>`): their
agreement to sign and their courses to take, through the same API the app itself calls. The token
travels in the fragment, which the browser never sends, so it reaches no server log."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from tripguard.console.rendering import render
from tripguard.security.auth import Public

router = APIRouter(prefix="/training", include_in_schema=False)


@router.get("", dependencies=[Public])
def training_page(request: Request) -> HTMLResponse:
    return render(request, "workforce/learn.html")
