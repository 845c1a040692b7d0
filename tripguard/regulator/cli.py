"""`tripguard regulator status|backfill|reconcile|send`: the regulator feed from the command line."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from tripguard.audit.actor import CLI_ACTOR
from tripguard.core.cli_support import clean_errors, cli_session, err

out = Console(soft_wrap=True)
regulator_app = typer.Typer(help="The regulator's feed (网约车监管信息交互平台).", no_args_is_help=True)


@regulator_app.command("status")
def status() -> None:
    """Per upload type: backlog, failing, lag, watermark, last acknowledgement and last error."""
    from tripguard.regulator.reports import feed_state

    with clean_errors(), cli_session() as session:
        states = feed_state(session)
    table = Table(title="Regulator feed")
    for column in ("type", "backlog", "failing", "lag (s)", "watermark", "last acknowledged", "last error"):
        table.add_column(column, no_wrap=column == "type")  # a type's name is what a reader looks for
    for s in states:
        table.add_row(s.kind, str(s.backlog), str(s.failing), f"{s.lag_seconds:.0f}",
                      s.watermark.isoformat() if s.watermark else "-",
                      s.last_acknowledged_at.isoformat() if s.last_acknowledged_at else "-", s.last_error or "")
    out.print(table)


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None:
        err.print(f"[red]{name} needs its offset (2026-03-02T00:00+08:00)[/red]")
        raise typer.Exit(2)
    return value


@regulator_app.command("backfill")
def backfill(
    kind: Annotated[str, typer.Argument(help='an upload type ("positionVehicle"), or "all"')],
    start: Annotated[datetime, typer.Option(help="from (with its offset)", formats=["%Y-%m-%dT%H:%M%z",
                                                                                   "%Y-%m-%dT%H:%M:%S%z"])],
    end: Annotated[datetime, typer.Option(help="to, not included", formats=["%Y-%m-%dT%H:%M%z",
                                                                           "%Y-%m-%dT%H:%M:%S%z"])],
) -> None:
    """Run the exporters over [start, end) again: what the queue misses is queued, in sequence, and sent by the
    sender; what it holds already is left. Any range (the console and the API take 7 days at most)."""
    from tripguard.core.db import engine_for, make_sessionmaker
    from tripguard.core.settings import get_settings
    from tripguard.regulator import operations
    from tripguard.vault.keys import build_vault

    settings = get_settings()
    with clean_errors(), cli_session(settings) as session:
        factory = make_sessionmaker(engine_for(settings))
        queued = operations.backfill(session, factory=factory, vault=build_vault(settings), actor=CLI_ACTOR,
                                     kinds=None if kind == "all" else [kind], start=_aware(start, "--start"),
                                     end=_aware(end, "--end"), longest=None)
    for name, count in sorted(queued.items()):
        out.print(f"{name}: {count} queued")


@regulator_app.command("reconcile")
def reconcile(
    first: Annotated[str, typer.Option(help="the first day, YYYY-MM-DD (the operator's time zone)")],
    last: Annotated[str | None, typer.Option(help="the last day (default: the first)")] = None,
) -> None:
    """Per day and type: produced, sent, acknowledged, still due. Exits 1 when a row does not balance."""
    from zoneinfo import ZoneInfo

    from tripguard.core.settings import get_settings
    from tripguard.regulator.reports import reconcile as run

    settings = get_settings()
    try:
        days = (date.fromisoformat(first), date.fromisoformat(last or first))
    except ValueError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    with clean_errors(), cli_session(settings) as session:
        rows = run(session, first=days[0], last=days[1], zone=ZoneInfo(settings.timezone))
    table = Table(title=f"Reconciliation ({settings.timezone})")
    for column in ("day", "type", "produced", "sent", "acknowledged", "due", "balanced"):
        table.add_column(column, no_wrap=column in ("day", "type"))
    for r in rows:
        table.add_row(r.day.isoformat(), r.kind, str(r.produced), str(r.sent), str(r.acknowledged), str(r.due),
                      "yes" if r.balanced else "[red]NO[/red]")
    out.print(table)
    if not all(r.balanced for r in rows):
        raise typer.Exit(1)


@regulator_app.command("send")
def send(once: Annotated[bool, typer.Option("--once", help="send what is due, then exit")] = False) -> None:
    """The feed's sender, for a scaled-out deployment (TRIPGUARD_RUN_JOBS=false): one batch of a type at a time,
    in sequence; several may run (a type's batch is claimed under SKIP LOCKED)."""
    import signal
    import threading

    from tripguard.core.db import engine_for, make_sessionmaker
    from tripguard.core.logging import configure_logging
    from tripguard.core.settings import get_settings
    from tripguard.regulator.setup import build_sender
    from tripguard.vault.keys import build_vault

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    with clean_errors():
        settings.check_safe_to_start()
        sender = build_sender(settings, make_sessionmaker(engine_for(settings)), build_vault(settings))
    if sender is None:
        err.print("[red]the feed is off (TRIPGUARD_REGULATOR_START), not sent from here, or this build has no "
                  "envelope (tripguard.regulator.envelope)[/red]")
        raise typer.Exit(2)
    if once:
        result = sender.drain()
        out.print(f"acknowledged {result.acknowledged}, failed {result.failed}")
        return
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    sender.run(stop)
