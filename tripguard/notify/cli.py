"""`tripguard worker outbox`: the dispatcher as its own process (scale-out)."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.console import Console

worker_app = typer.Typer(help="Background workers for scale-out.", no_args_is_help=True)
out = Console(soft_wrap=True)


@worker_app.command("outbox")
def outbox(
    interval: Annotated[float, typer.Option(help="Seconds between polls when idle")] = 1.0,
    once: Annotated[bool, typer.Option("--once", help="Dispatch what is due, then exit")] = False,
) -> None:
    """Send due messages from the outbox; several workers may run (rows are claimed with SKIP LOCKED)."""
    from datetime import timedelta

    from tripguard.core.db import make_engine, make_sessionmaker
    from tripguard.core.logging import configure_logging
    from tripguard.core.settings import get_settings
    from tripguard.notify.service import dispatch_due
    from tripguard.notify.setup import build_notifier
    from tripguard.vault.keys import build_vault

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    factory = make_sessionmaker(make_engine(settings.database_url))
    vault, notifier = build_vault(settings), build_notifier(settings)
    while True:
        result = dispatch_due(factory, vault, notifier, claim_for=timedelta(seconds=settings.outbox_claim_seconds))
        if once:
            out.print(f"sent {result.sent}, retrying {result.retried}, dead {result.dead}")
            return
        if result.sent + result.retried + result.dead == 0:
            time.sleep(interval)
