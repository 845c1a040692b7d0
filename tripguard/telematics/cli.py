"""`tripguard monitor replay FILE` and `tripguard worker monitor` (in the shell's `worker` group, tripguard/cli.py).

Each command imports what it runs on (numpy, Arrow, the monitor, NATS) when it runs: every `tripguard`
command starts faster, and replay's time is the monitor's.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tripguard.telematics.detection.contract import MonitorConfig, config_with

if TYPE_CHECKING:
    from tripguard.core.settings import Settings
    from tripguard.telematics.detection.worker import MonitorSite

monitor_app = typer.Typer(help="Trip monitoring.", no_args_is_help=True)

# The process a monitor worker runs in is composed by the shell (the app factory): `tripguard.cli` registers
# how, so telematics never imports the shell.
_site_builders: list[Callable[[Settings], MonitorSite]] = []


def register_site(build: Callable[[Settings], MonitorSite]) -> None:
    if build not in _site_builders:
        _site_builders.append(build)


def _site(settings: Settings) -> MonitorSite:
    if len(_site_builders) != 1:
        raise RuntimeError(f"a monitor worker needs one registered site builder, not {len(_site_builders)}")
    return _site_builders[0](settings)


def _config(pairs: list[str]) -> MonitorConfig:
    known = set(MonitorConfig.__dataclass_fields__)
    overrides: dict[str, float] = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = -1.0
        if name not in known or number <= 0:
            raise typer.BadParameter(f"{pair!r}: expected NAME=positive number, NAME one of {sorted(known)}",
                                     param_hint="--threshold")
        overrides[name] = number
    return config_with(overrides)


@monitor_app.command("replay")
def replay(file: Annotated[str, typer.Argument(help="NDJSON events, or - for standard input")],
           batch: Annotated[int, typer.Option(min=1, help="lines per batch (alerts do not depend on it)")] = 50_000,
           threshold: Annotated[list[str] | None, typer.Option(
               help="NAME=VALUE, e.g. stop_seconds=900 (names in MonitorConfig); repeatable")] = None,
           ) -> None:
    """Run events through the monitor; print alerts as NDJSON on stdout (bad lines go to stderr).

    Lines end with "\\n" ("\\r\\n" too). A child process reads and parses the next batch while this
    one runs the monitor (see telematics/detection/replay.py).
    """
    from tripguard.telematics.detection.fast_monitor import BatchMonitor
    from tripguard.telematics.detection.replay import parsed_ahead

    monitor = BatchMonitor(_config(threshold or []))
    bad = 0
    if file != "-" and not Path(file).is_file():
        raise typer.BadParameter(f"{file}: no such file", param_hint="FILE")
    for columns, errors in parsed_ahead(file, batch):
        for error in errors:
            print(f"line {error.line}: {error.reason}", file=sys.stderr)
        bad += len(errors)
        alerts = sorted(monitor.process_columns(columns), key=lambda a: (a.ts, a.trip_id, a.kind))
        sys.stdout.writelines(json.dumps(a.as_dict(), ensure_ascii=False) + "\n" for a in alerts)
    if bad:
        raise typer.Exit(1)


def worker_monitor(
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
    site = _site(settings)
    if metrics_port:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr="127.0.0.1")
    link = connect_feed(site.feed, settings, name="tripguard-monitor", viewers=False)
    worker = MonitorWorker(settings, link=link, engine=site.engine, vault=site.vault, options=site.options,
                           feed=site.feed,
                           config=config_with(settings.monitor_thresholds), shards=own, standby=spare,
                           batch=batch, poll=poll, takeover_grace=grace)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await worker.run(stop)

    asyncio.run(main())
