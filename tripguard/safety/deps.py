"""safety's shared objects as typed dependencies (built once by `tripguard.app.create_app`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from tripguard.core.bookkeeping import Tally
from tripguard.safety.intake import SosIntake
from tripguard.safety.telephony import Telephony
from tripguard.security.rate_limit import SlidingWindowLimiter


async def _sos_intake(request: Request) -> SosIntake:
    intake: SosIntake = request.app.state.sos_intake
    return intake


async def _telephony(request: Request) -> Telephony:
    telephony: Telephony = request.app.state.telephony
    return telephony


async def _contact_request_limiter(request: Request) -> SlidingWindowLimiter:
    limiter: SlidingWindowLimiter = request.app.state.contact_request_limiter
    return limiter


async def _share_limiter(request: Request) -> SlidingWindowLimiter:
    limiter: SlidingWindowLimiter = request.app.state.share_limiter
    return limiter


async def _share_views(request: Request) -> Tally:
    tally: Tally = request.app.state.share_views
    return tally


AppSosIntake = Annotated[SosIntake, Depends(_sos_intake)]
AppTelephony = Annotated[Telephony, Depends(_telephony)]
ContactRequestLimiter = Annotated[SlidingWindowLimiter, Depends(_contact_request_limiter)]
ShareLimiter = Annotated[SlidingWindowLimiter, Depends(_share_limiter)]  # views per link
ShareViews = Annotated[Tally, Depends(_share_views)]  # the links' view counts not yet written
