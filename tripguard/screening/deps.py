"""screening's shared objects as typed dependencies (built once by `tripguard.app.create_app`)."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import Depends, Request

from tripguard.core.deps import AppSettings
from tripguard.screening import service
from tripguard.screening.providers import FaceMatcher, ScreeningAgency


async def _agency(request: Request) -> ScreeningAgency:
    agency: ScreeningAgency = request.app.state.screening_agency
    return agency


async def _face_matcher(request: Request) -> FaceMatcher:
    matcher: FaceMatcher = request.app.state.face_matcher
    return matcher


async def _wake(request: Request) -> asyncio.Event:
    wake: asyncio.Event = request.app.state.screening_wake
    return wake


async def _rules(settings: AppSettings) -> service.Rules:
    return service.rules_from(settings)


Agency = Annotated[ScreeningAgency, Depends(_agency)]
AppFaceMatcher = Annotated[FaceMatcher, Depends(_face_matcher)]
ScreeningWake = Annotated[asyncio.Event, Depends(_wake)]  # set when an applicant was queued for screening
ScreeningRules = Annotated[service.Rules, Depends(_rules)]
