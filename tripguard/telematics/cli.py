"""`tripguard monitor replay FILE` and `tripguard sim porto`.

Each command imports what it runs on (numpy, Arrow, the monitor, the simulator) when it runs: every
`tripguard` command starts faster, and replay's time is the monitor's.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from tripguard.telematics.detection.contract import MonitorConfig, config_with

monitor_app = typer.Typer(help="Trip monitoring.", no_args_is_help=True)
sim_app = typer.Typer(help="Simulated and replayed cities.", no_args_is_help=True)


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


@sim_app.command("porto")
def porto(
    out: Annotated[Path | None, typer.Option(help="Write events here instead of stdout")] = None,
    inject: Annotated[int, typer.Option(help="Trips to give each anomaly kind (0: all normal)")] = 0,
    truth: Annotated[Path | None, typer.Option(help="Write the injected anomalies (JSON lines) here")] = None,
    data: Annotated[Path | None, typer.Option(help="Another copy of porto_trips.csv")] = None,
    stagger: Annotated[float | None, typer.Option(help="Seconds between trip starts [default: 8 / copies]")] = None,
    copies: Annotated[int, typer.Option(min=1, help="Each trip this many times, as its own trip (a denser city)")] = 1,
    noise: Annotated[str, typer.Option(help="GPS noise laid over the fixes: none or urban (see sim/noise.py)")] = "none",
    seed: Annotated[int, typer.Option(help="Seed for the anomalies' sizes and the noise")] = 7,
) -> None:
    """The 318 real Porto taxi trips as trip-monitoring events (CC BY 4.0; see the package's ATTRIBUTION.md)."""
    from tripguard.sim.noise import MODELS
    from tripguard.sim.porto import KINDS, build_stream, load_trips
    from tripguard.sim.porto import copies as porto_copies

    if noise not in MODELS:
        raise typer.BadParameter(f"{noise!r}: expected one of {', '.join(MODELS)}", param_hint="--noise")
    trips = porto_copies(load_trips(data) if data else load_trips(), copies)
    events, injections = build_stream(trips, stagger_s=8.0 / copies if stagger is None else stagger,
                                      inject={kind: inject for kind in KINDS},
                                      seed=seed, noise=MODELS[noise])
    target = out.open("w") if out else sys.stdout
    try:
        for event in events:
            target.write(json.dumps(event, separators=(",", ":")) + "\n")
    finally:
        if out:
            target.close()
    if truth:
        truth.write_text("".join(json.dumps(i.__dict__) + "\n" for i in injections))
