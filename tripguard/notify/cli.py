"""`tripguard worker outbox` and `tripguard worker monitor`: the scale-out workers."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

worker_app = typer.Typer(help="Background workers for scale-out.", no_args_is_help=True)
out = Console(soft_wrap=True)


@worker_app.command("outbox")
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
        result = dispatch_due(factory, vault, notifier, claim_for=claim_for)
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


@worker_app.command("monitor")
def monitor(
    shards: Annotated[str, typer.Option(help='the shards this worker runs: "0-3,6", or "all"')] = "all",
    standby: Annotated[str, typer.Option(help="shards it takes over while no other worker runs them")] = "",
    batch: Annotated[int, typer.Option(min=1, max=1000, help="messages per transaction")] = 32,
    poll: Annotated[float, typer.Option(min=0.05, help="seconds: a fetch's longest wait, and between tries "
                                                         "to take a shard")] = 1.0,
    grace: Annotated[float, typer.Option(min=0, help="seconds before taking standby shards")] = 3.0,
    metrics_port: Annotated[int, typer.Option(min=0, max=65535, help="serve Prometheus /metrics on this port "
                                                                      "(0: none)")] = 0,
) -> None:
    """Run the trip monitor over the events of NATS JetStream (TRIPGUARD_BUS_URL=nats://…), shard by shard,
    one worker per shard at a time (a lease per shard); its state checkpointed, so a worker that
    takes a shard over resumes where it was, without losing or repeating an alert."""
    import asyncio
    import signal

    from tripguard.app import create_app, ingest_options
    from tripguard.core.cli_support import clean_errors
    from tripguard.core.settings import get_settings
    from tripguard.telematics.detection.feed import connect_feed
    from tripguard.telematics.detection.monitor import config_with
    from tripguard.telematics.detection.worker import MonitorWorker, parse_shards

    with clean_errors():
        settings = get_settings()
        settings.check_safe_to_start()
        if settings.bus_url == "memory://":
            raise typer.BadParameter("set TRIPGUARD_BUS_URL=nats://…: with memory:// the API runs the monitor itself")
        try:
            own, spare = parse_shards(shards, settings.bus_shards), parse_shards(standby, settings.bus_shards)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc
    site = create_app(settings)
    if metrics_port:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr="127.0.0.1")
    feed = site.state.live_monitor.feed
    link = connect_feed(feed, settings, name="tripguard-monitor", viewers=False)
    worker = MonitorWorker(settings, link=link, engine=site.state.engine,
                           vault=site.state.vault, options=ingest_options(site), feed=feed,
                           config=config_with(settings.monitor_thresholds), shards=own, standby=spare,
                           batch=batch, poll=poll, takeover_grace=grace)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await worker.run(stop)

    asyncio.run(main())
