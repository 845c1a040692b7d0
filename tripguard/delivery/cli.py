"""`tripguard carrier ring`: ring a virtual number as the (simulated) carrier would, and see whom
TripGuard bridges the call to. For development and the demo; it dials nobody."""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.console import Console

from tripguard.core.cli_support import clean_errors

carrier_app = typer.Typer(help="The simulated telephony carrier (dials nobody).", no_args_is_help=True)
out = Console(soft_wrap=True)


@carrier_app.command("ring")
def ring(number: Annotated[str, typer.Argument(help="the virtual number dialled")],
         caller: Annotated[str, typer.Argument(help="the number calling")],
         url: Annotated[str, typer.Option(help="TripGuard's base URL")] = "http://127.0.0.1:8000") -> None:
    """Ask TripGuard, as the carrier would at a ring, whom to bridge to. The API key (scope
    telephony.route) comes from TRIPGUARD_CARRIER_API_KEY."""
    import httpx2 as httpx

    from tripguard.delivery.carrier import SimulatedCarrier

    with clean_errors():
        key = os.environ.get("TRIPGUARD_CARRIER_API_KEY", "")
        if not key:
            raise typer.BadParameter("set TRIPGUARD_CARRIER_API_KEY to an API key scoped telephony.route")
        with httpx.Client(base_url=url, timeout=10, headers={"authorization": f"Bearer {key}"}) as client:
            call = SimulatedCarrier(client).ring(number=number, caller=caller)
    out.print(call.describe())
