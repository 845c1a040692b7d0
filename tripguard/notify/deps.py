"""notify's shared objects as typed dependencies (built once by `tripguard.app.create_app`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from tripguard.notify.senders import OutboxWake
from tripguard.notify.service import Notifier


async def _notifier(request: Request) -> Notifier:
    notifier: Notifier = request.app.state.notifier
    return notifier


async def _outbox_wake(request: Request) -> OutboxWake:
    wake: OutboxWake = request.app.state.outbox_wake
    return wake


AppNotifier = Annotated[Notifier, Depends(_notifier)]
Wake = Annotated[OutboxWake, Depends(_outbox_wake)]  # set when something urgent was queued: the senders look now
