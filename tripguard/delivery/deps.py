"""delivery's shared objects as typed dependencies (built once by `tripguard.app.create_app`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from tripguard.core.processes import ProcessPool
from tripguard.delivery.intake import OrderIntake


async def _order_intake(request: Request) -> OrderIntake:
    intake: OrderIntake = request.app.state.order_intake
    return intake


async def _label_pool(request: Request) -> ProcessPool:
    pool: ProcessPool = request.app.state.label_pool
    return pool


AppOrderIntake = Annotated[OrderIntake, Depends(_order_intake)]
LabelPool = Annotated[ProcessPool, Depends(_label_pool)]  # the processes that render labels
