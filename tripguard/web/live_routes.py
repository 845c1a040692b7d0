"""The safety agents' live map: active trips, routes, last positions, alerts as they arrive (SSE)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse

from tripguard.security.auth import AlertsReader
from tripguard.web.routes import page

router = APIRouter(prefix="/console/live", include_in_schema=False)
KEEP_ALIVE_SECONDS = 15


@router.get("")
def live_page(request: Request, principal: AlertsReader) -> HTMLResponse:
    settings = request.app.state.settings
    return page(request, "live.html", principal, "/console/live", tiles=settings.map_tiles_url,
                attribution=settings.map_tiles_attribution)


@router.get("/snapshot")
def snapshot(request: Request, _: AlertsReader) -> JSONResponse:
    return JSONResponse(request.app.state.live_monitor.feed.snapshot())


@router.get("/stream")
async def stream(request: Request, _: AlertsReader) -> StreamingResponse:
    """Server-sent events: one JSON object per message (trip_started, position, trip_ended, alert)."""
    feed = request.app.state.live_monitor.feed
    queue = feed.open_viewer()

    async def messages() -> AsyncIterator[str]:
        try:
            yield ": connected\n\n"
            while not await request.is_disconnected():
                try:
                    item = await asyncio.wait_for(queue.get(), timeout=KEEP_ALIVE_SECONDS)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                yield f"data: {json.dumps(item, ensure_ascii=False)}\n\n"
        finally:
            feed.close_viewer(queue)

    return StreamingResponse(messages(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
