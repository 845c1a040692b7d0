"""security's shared objects as typed dependencies (built once by `tripguard.app.create_app`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from tripguard.core.bookkeeping import OncePer
from tripguard.core.deps import last_seen_due_of
from tripguard.security.rate_limit import SlidingWindowLimiter


async def _sign_in_limiter(request: Request) -> SlidingWindowLimiter:
    limiter: SlidingWindowLimiter = request.app.state.sign_in_limiter
    return limiter


async def _last_seen_due(request: Request) -> OncePer:
    return last_seen_due_of(request.app)


LastSeenDue = Annotated[OncePer, Depends(_last_seen_due)]  # bookkeeping writes at most once an interval
SignInLimiter = Annotated[SlidingWindowLimiter, Depends(_sign_in_limiter)]
