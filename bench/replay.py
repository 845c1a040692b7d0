"""`tripguard monitor replay` on a city of 30,000 Porto-based trips: the whole process, and where its time goes.

    .venv/bin/python -m bench.replay [--copies 94] [--repeat 3]

The stream is `tripguard sim porto --copies 94`: each of the 318 real Porto trips 94 times, each copy
its own trip with its own route, about 2,000 under way at once (about 1.4 million lines). The whole
process is timed from outside (start, imports, the forked parser, detection, alerts written). Its
parts are then timed one at a time in this process, on one core, on the same batches.
"""

from __future__ import annotations

import argparse
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
from tripguard.telematics.detection.replay import cut_batches
from tripguard.telematics.ingest.arrow_rows import SCHEMA
from tripguard.telematics.ingest.columns import parse_ndjson_columns
from tripguard.telematics.ingest.reader import read_ndjson

TRIPGUARD = str(Path(sys.executable).with_name("tripguard"))
BATCH = 50_000  # the replay command's default


def whole_process(path: Path, repeat: int) -> tuple[float, int, float]:
    """Seconds of the best run, the number of alerts it wrote, and its peak memory in MB (the monitoring
    process; its forked parser is not counted)."""
    best, alerts, peak = float("inf"), 0, 0.0
    for _ in range(repeat):
        with tempfile.TemporaryFile() as out:
            started = time.perf_counter()
            process = subprocess.Popen([TRIPGUARD, "monitor", "replay", str(path)], stdout=out)
            _, status, usage = os.wait4(process.pid, 0)
            best = min(best, time.perf_counter() - started)
            process.returncode = os.waitstatus_to_exitcode(status)
            if process.returncode != 0:
                raise SystemExit(f"replay failed with exit code {process.returncode}")
            out.seek(0)
            alerts = out.read().count(b"\n")
            peak = max(peak, usage.ru_maxrss / 1024)
    return best, alerts, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=94)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path, empty = Path(folder) / "city.ndjson", Path(folder) / "empty.ndjson"
        subprocess.run([TRIPGUARD, "sim", "porto", "--copies", str(args.copies), "--out", str(path)], check=True)
        empty.write_bytes(b"")
        data = path.read_bytes()
        with path.open("rb") as handle:
            batches = list(cut_batches(handle, BATCH))
        lines = data.count(b"\n")
        pings = data.count(b'"type":"ping"')
        trips = data.count(b'"type":"trip_started"')

        whole, alerts, peak_mb = whole_process(path, args.repeat)
        start_up, _, _ = whole_process(empty, args.repeat)

        def parse() -> list[object]:
            gcj: dict[str, None] = {}
            parsed: list[object] = []
            line = 1
            for chunk, count in batches:
                parsed.append(read_ndjson(chunk, gcj, first_line=line)[0])
                line += count
            return parsed

        def arrow_alone() -> None:
            options = pa_json.ParseOptions(explicit_schema=SCHEMA, unexpected_field_behavior="ignore")
            for chunk, _ in batches:
                pa_json.read_json(pa.BufferReader(chunk), parse_options=options,
                                  read_options=pa_json.ReadOptions(use_threads=False, block_size=1 << 22))

        parsed = parse()
        parse_s = best_of(args.repeat, parse)
        arrow_s = best_of(args.repeat, arrow_alone)
        detect_s = best_of(args.repeat, lambda: _detect(parsed))
        crossing_s = best_of(args.repeat, lambda: [pickle.loads(pickle.dumps(c, protocol=pickle.HIGHEST_PROTOCOL))
                                                   for c in parsed])
        line_parser_s = best_of(1, lambda: [parse_ndjson_columns(chunk.split(b"\n")) for chunk, _ in batches])

    rate = pings / whole
    body = "\n".join([
        "## Replay at native speed (`bench/replay.py`)", "",
        (f"Command: `.venv/bin/python -m bench.replay --copies {args.copies} --repeat {args.repeat}`. "
        f"{machine_line()} The stream: `tripguard sim porto --copies {args.copies}`, {trips:,} trips (each real "
        f"Porto trip {args.copies} times, about {20 * args.copies:,} under way at once), {pings:,} pings, "
        f"{lines:,} lines, {len(data) / 1e6:,.0f} MB. Best of {args.repeat}."), "",
        "| measure | result | target (issue 10) |", "| --- | ---: | ---: |",
        (f"| `tripguard monitor replay`, whole process, 2 cores | **{rate:,.0f} pings/s** ({whole:.2f} s, "
        f"{alerts:,} alerts) | ≥ 500,000 pings/s; aim 1,000,000 |"),
        f"| peak memory of the monitoring process (the forked parser's is alike) | {peak_mb:,.0f} MB | |", "",
        "Where the time goes (each part alone, one core, this process):", "",
        "| part | seconds | per line |", "| --- | ---: | ---: |",
        f"| start: interpreter, imports (numpy, Arrow, the CLI), fork (replay of an empty file) | {start_up:.2f} | |",
        (f"| reading and checking every line (`read_ndjson`, {BATCH:,}-line batches) | {parse_s:.2f} | "
        f"{parse_s / lines * 1e6:.2f} µs |"),
        (f"| of which Arrow's JSON reader alone (the same bytes, the same schema) | {arrow_s:.2f} | "
        f"{arrow_s / lines * 1e6:.2f} µs |"),
        f"| detection (the batched monitor on the parsed batches) | {detect_s:.2f} | {detect_s / lines * 1e6:.2f} µs |",
        f"| handing the batches between the processes (pickle both ways) | {crossing_s:.2f} | |",
        (f"| for comparison: the line parser (`parse_ndjson_columns`) on the same lines | {line_parser_s:.2f} | "
        f"{line_parser_s / lines * 1e6:.2f} µs |"),
    ])
    write_section("replay", body)
    print(body)


def _detect(parsed: list[object]) -> None:
    monitor = BatchMonitor()
    for columns in parsed:
        monitor.process_columns(columns)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
