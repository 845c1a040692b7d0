"""telematics' shared objects as typed dependencies (built once by `tripguard.app.create_app`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from tripguard.telematics.detection.feed import LiveFeed
from tripguard.telematics.ingest.bus import EventBus
from tripguard.telematics.service import IngestOptions, LiveMonitor


def live_monitor_of(app: Any) -> LiveMonitor:
    live: LiveMonitor = app.state.live_monitor
    return live


async def _live(request: Request) -> LiveMonitor:
    return live_monitor_of(request.app)


async def _feed(request: Request) -> LiveFeed:
    return live_monitor_of(request.app).feed


async def _bus(request: Request) -> EventBus:
    bus: EventBus = request.app.state.bus
    return bus


async def _ingest_options(request: Request) -> IngestOptions:
    options: IngestOptions = request.app.state.ingest_options()  # read per batch: settings may change
    return options


Live = Annotated[LiveMonitor, Depends(_live)]
Feed = Annotated[LiveFeed, Depends(_feed)]
Bus = Annotated[EventBus, Depends(_bus)]
Ingest = Annotated[IngestOptions, Depends(_ingest_options)]
