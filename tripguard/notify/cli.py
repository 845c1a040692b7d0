"""`tripguard worker outbox`: the outbox's scale-out worker (the `worker` group is the shell's, tripguard/cli.py)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

out = Console(soft_wrap=True)


def outbox(
    interval: Annotated[float, typer.Option(help="Seconds between polls when idle (an SOS wakes it at once)")] = 1.0,
    once: Annotated[bool, typer.Option("--once", help="Dispatch what is due, then exit")] = False,
) -> None:
    """Send due messages from the outbox, the emergency lane on a sender of its own, woken by PostgreSQL
    NOTIFY when an SOS is stored; several workers may run (rows are claimed with SKIP LOCKED)."""
    import signal
    import threading
    from datetime import timedelta

    from tripguard.core.db import engine_for, make_sessionmaker
    from tripguard.core.logging import configure_logging
    from tripguard.core.settings import get_settings
    from tripguard.notify.senders import OutboxSenders
    from tripguard.notify.service import dispatch_due
    from tripguard.notify.setup import build_notifier
    from tripguard.vault.keys import build_vault

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    factory = make_sessionmaker(engine_for(settings))
    vault, notifier = build_vault(settings), build_notifier(settings)
    claim_for = timedelta(seconds=settings.outbox_claim_seconds)
    if once:
        result = dispatch_due(factory, vault=vault, notifier=notifier, claim_for=claim_for)
        out.print(f"sent {result.sent}, retrying {result.retried}, dead {result.dead}")
        return
    senders = OutboxSenders(factory, vault, notifier, database_url=settings.database_url, poll=interval,
                            claim_for=claim_for, emergency_factory=make_sessionmaker(engine_for(settings, "emergency")))
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    senders.start()
    while not stop.wait(1.0):
        pass
    senders.stop()
