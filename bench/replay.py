"""`tripguard monitor replay` on two Porto-based cities: the whole process, and where its time goes.

    .venv/bin/python -m bench.replay [--copies 94] [--repeat 3] [--busier 5] [--route-detail 4] [--against DIR]

Two streams, both `tripguard sim porto --copies 94` (each of the 318 real Porto trips 94 times, each copy
its own trip with its own route, about 1.4 million lines):
- city: the trips start 8 / copies seconds apart, about 2,000 under way at once;
- busy: they start `--busier` times closer (about 10,000 under way) and every planned route has
  `--route-detail` times the points (a point between each two, as a router's polyline has): the
  starts' routes are then most of the bytes.
The whole process is timed from outside (start, imports, the forked parser, detection, alerts written);
with `--against DIR` (a checkout of another commit, sharing this environment) the two run in turn, and
the table gives each and their ratio. The parts are then timed one at a time in this process, on one
core, on the same batches.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.json as pa_json

from bench.report import best_of, machine_line, write_section
from tripguard.telematics.detection.fast_monitor import BatchMonitor
from tripguard.telematics.detection.handover import Parsed, receive_batch, send_batch
from tripguard.telematics.detection.replay import cut_batches
from tripguard.telematics.ingest.arrow_rows import SCHEMA
from tripguard.telematics.ingest.reader import read_ndjson

TRIPGUARD = str(Path(sys.executable).with_name("tripguard"))
BATCH = 50_000  # the replay command's default


def whole_process(path: Path, checkout: Path | None = None) -> tuple[float, float, int, float]:
    """One run: wall and CPU seconds (the process and its forked parser, which it waits for), alerts written,
    peak MB (the larger of the two processes). `checkout`: run another commit's code."""
    env = {**os.environ, "PYTHONPATH": str(checkout)} if checkout else None
    with tempfile.TemporaryFile() as out:
        started = time.perf_counter()
        process = subprocess.Popen([sys.executable, TRIPGUARD, "monitor", "replay", str(path)], stdout=out, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"replay of {path.name} failed with exit code {os.waitstatus_to_exitcode(status)}")
        out.seek(0)
        alerts = out.read().count(b"\n")
    return wall, usage.ru_utime + usage.ru_stime, alerts, usage.ru_maxrss / 1024  # the parser's CPU counted too


def compared(path: Path, repeat: int, against: Path | None) -> dict[str, tuple[float, float, int, float]]:
    """The best run (by wall time) of this checkout and, in turn with it, of `against`."""
    runs: dict[str, list[tuple[float, float, int, float]]] = {"this": [], "against": []}
    for _ in range(repeat):
        runs["this"].append(whole_process(path))
        if against:
            runs["against"].append(whole_process(path, against))
    return {name: min(results) for name, results in runs.items() if results}


class _Messages:
    """Both ends of the hand-over in one process (the pipe's own copy left out)."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def send_bytes(self, data: object) -> None:
        self.sent.append(bytes(data))  # type: ignore[call-overload]

    def recv_bytes(self) -> bytes:
        return self.sent.pop(0)


def make_busy(city: Path, busy: Path, copies: int, busier: int, detail: int) -> None:
    """The city's trips `busier` times closer together, each route with `detail` times the points."""
    plain = busy.with_suffix(".plain")
    subprocess.run([TRIPGUARD, "sim", "porto", "--copies", str(copies), "--stagger", str(8.0 / copies / busier),
                    "--out", str(plain)], check=True)
    with plain.open("rb") as source, busy.open("wb") as target:
        for line in source:
            if b'"trip_started"' in line:
                event = json.loads(line)
                event["route"] = _denser(event["route"], detail)
                line = json.dumps(event, separators=(",", ":")).encode() + b"\n"
            target.write(line)
    plain.unlink()


def _denser(route: list[list[float]], detail: int) -> list[list[float]]:
    points = [[round(x0 + (x1 - x0) * k / detail, 6), round(y0 + (y1 - y0) * k / detail, 6)]
              for (x0, y0), (x1, y1) in itertools.pairwise(route) for k in range(detail)]
    return [*points, route[-1]]


def parts(path: Path, repeat: int) -> dict[str, float]:
    """Each part alone, in seconds, on the same batches."""
    with path.open("rb") as handle:
        batches = list(cut_batches(handle, BATCH))

    def parse() -> list[Parsed]:
        gcj: dict[str, None] = {}
        parsed: list[Parsed] = []
        line = 1
        for chunk, count in batches:
            parsed.append(read_ndjson(chunk, gcj, first_line=line, starts_as_columns=True))
            line += count
        return parsed

    def arrow_alone() -> None:
        options = pa_json.ParseOptions(explicit_schema=SCHEMA, unexpected_field_behavior="ignore")
        for chunk, _ in batches:
            pa_json.read_json(pa.BufferReader(chunk), parse_options=options,
                              read_options=pa_json.ReadOptions(use_threads=False, block_size=1 << 22))

    def hand_over() -> None:
        messages = _Messages()
        for item in parsed:
            send_batch(messages, item)  # type: ignore[arg-type]
            receive_batch(messages)  # type: ignore[arg-type]

    def detect() -> None:
        monitor = BatchMonitor()
        for columns, _ in parsed:
            monitor.process_columns(columns)

    parsed = parse()
    as_objects = [(columns.with_start_objects(), errors) for columns, errors in parsed]
    return {"parse": best_of(repeat, parse), "arrow": best_of(repeat, arrow_alone), "detect": best_of(repeat, detect),
            "hand_over": best_of(repeat, hand_over),
            "pickle": best_of(repeat, lambda: [pickle.loads(pickle.dumps(p, protocol=pickle.HIGHEST_PROTOCOL))
                                               for p in as_objects])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=94)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--busier", type=int, default=5)
    parser.add_argument("--route-detail", type=int, default=4)
    parser.add_argument("--against", type=Path, help="a checkout of another commit, run in turn with this one")
    args = parser.parse_args()
    rows: list[str] = []
    part_rows: list[str] = []
    with tempfile.TemporaryDirectory() as folder:
        city, busy, empty = (Path(folder) / name for name in ("city.ndjson", "busy.ndjson", "empty.ndjson"))
        subprocess.run([TRIPGUARD, "sim", "porto", "--copies", str(args.copies), "--out", str(city)], check=True)
        make_busy(city, busy, args.copies, args.busier, args.route_detail)
        empty.write_bytes(b"")
        # Every whole process first, while this process is small: a child's peak memory counts what it
        # shared of this one before it ran the command.
        start = compared(empty, args.repeat, args.against)
        results = {name: compared(path, args.repeat, args.against) for name, path in (("city", city), ("busy", busy))}
        for name, path in (("city", city), ("busy", busy)):
            data = path.read_bytes()
            lines, pings, size = data.count(b"\n"), data.count(b'"type":"ping"'), len(data)
            del data
            rows.append(_whole_row(name, pings, lines, size, results[name]))
            took = parts(path, args.repeat)
            per_line = {part: f"{seconds:.2f} ({seconds / lines * 1e6:.2f} µs)" for part, seconds in took.items()}
            part_rows.append(f"| {name} | {start['this'][0]:.2f} | {per_line['parse']} | {per_line['arrow']} "
                             f"| {per_line['detect']} | {took['hand_over']:.2f} | {took['pickle']:.2f} |")
    against = f" --against {args.against}" if args.against else ""
    body = "\n".join([
        "## Replay at native speed (`bench/replay.py`)", "",
        (f"Command: `.venv/bin/python -m bench.replay --copies {args.copies} --repeat {args.repeat} --busier "
         f"{args.busier} --route-detail {args.route_detail}{against}`. {machine_line()} The streams: "
         f"`tripguard sim porto --copies {args.copies}` (city: about {20 * args.copies:,} trips under way at once), "
         f"and the same trips starting {args.busier} times closer with {args.route_detail} times the points in "
         f"every planned route (busy: about {20 * args.copies * args.busier:,} under way). Best of {args.repeat}"
         f"{f', each run of this commit followed by one of `{args.against}`' if args.against else ''}."), "",
        ("| stream | pings, lines, size | `tripguard monitor replay`, whole process, 2 cores | CPU s | alerts "
         "| peak MB |" + (" previous commit | this / previous (wall) |" if args.against else "")),
        "| --- | --- | ---: | ---: | ---: | ---: |" + (" ---: | ---: |" if args.against else ""),
        *rows, "",
        "Where the time goes (each part alone, seconds, one core, this process; per line in brackets):", "",
        ("| stream | start (replay of an empty file) | reading and checking every line (`read_ndjson`) "
         "| of which Arrow's JSON reader alone | detection | hand-over, both ends (raw buffers) "
         "| the same batches pickled both ways, for comparison |"),
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |", *part_rows,
    ])
    write_section("replay", body)
    print(body)


def _whole_row(name: str, pings: int, lines: int, size: int,
               result: dict[str, tuple[float, float, int, float]]) -> str:
    wall, cpu, alerts, peak = result["this"]
    row = (f"| {name} | {pings:,}, {lines:,}, {size / 1e6:,.0f} MB | **{pings / wall:,.0f} pings/s** ({wall:.2f} s) "
           f"| {cpu:.2f} | {alerts:,} | {peak:,.0f} |")
    if "against" in result:
        before_wall, before_cpu, before_alerts, _ = result["against"]
        if before_alerts != alerts:
            raise SystemExit(f"{name}: {alerts} alerts here, {before_alerts} from the other checkout")
        row += (f" {pings / before_wall:,.0f} pings/s ({before_wall:.2f} s, CPU {before_cpu:.2f}) "
                f"| {wall / before_wall:.2f} |")
    return row


if __name__ == "__main__":
    main()
