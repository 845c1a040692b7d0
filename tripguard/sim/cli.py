"""`tripguard sim porto`: the real Porto trips as a trip-monitoring event stream.

The command imports the simulator when it runs: every `tripguard` command starts faster.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

sim_app = typer.Typer(help="Simulated and replayed cities.", no_args_is_help=True)


@sim_app.command("porto")
def porto(
    out: Annotated[Path | None, typer.Option(help="Write events here instead of stdout")] = None,
    inject: Annotated[int, typer.Option(help="Trips to give each anomaly kind (0: all normal)")] = 0,
    truth: Annotated[Path | None, typer.Option(help="Write the injected anomalies (JSON lines) here")] = None,
    data: Annotated[Path | None, typer.Option(help="Another copy of porto_trips.csv")] = None,
    stagger: Annotated[float | None, typer.Option(help="Seconds between trip starts [default: 8 / copies]")] = None,
    copies: Annotated[int, typer.Option(min=1, help="Each trip this many times, as its own trip (a denser city)")] = 1,
    noise: Annotated[str, typer.Option(
        help="GPS noise laid over the fixes: none or urban (see sim/noise.py)")] = "none",
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
