"""The replay's hand-over: batches cross the pipe as raw buffers and arrive as they left, in order; the
monitor takes trip starts as columns exactly as it takes them as objects; the parser stops with its parent."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from tests.telematics.detection.test_fast_monitor import CONFIG, key, reference, streams
from tripguard.sim.porto import build_stream, load_trips
from tripguard.telematics.detection.fast_monitor import BatchMonitor
from tripguard.telematics.detection.handover import receive_batch, send_batch
from tripguard.telematics.detection.replay import parsed_ahead, parsed_batches
from tripguard.telematics.ingest.columns import PING_COLUMNS, EventColumns
from tripguard.telematics.ingest.events import Event, LineError
from tripguard.telematics.ingest.reader import read_ndjson

pytestmark = pytest.mark.no_database

TRIPGUARD = str(Path(sys.executable).with_name("tripguard"))


@pytest.fixture(scope="module")
def stream() -> bytes:
    """Sim trips with anomalies, and lines of every other shape: a heartbeat, a start in GCJ-02, a start
    naming its places, an end without a position, a broken line."""
    events, _ = build_stream(load_trips()[:30], inject={"route_deviation": 2, "early_end": 2, "gps_lost": 1})
    lines = [json.dumps(e, separators=(",", ":")) for e in events]
    ts = events[40]["ts"]
    extra = [
        {"type": "device_heartbeat", "device_id": "DEV1", "vehicle_id": "V1", "ts": ts, "camera_ok": True,
         "storage_ok": True},
        {"type": "trip_started", "trip_id": "G1", "ts": ts, "pickup": [116.4, 39.9], "route": [[116.4, 39.9]],
         "crs": "gcj02"},
        {"type": "trip_started", "trip_id": "N1", "ts": ts, "pickup": [-8.6, 41.1], "pickup_name": "Casa",
         "crs": "wgs84"},
        {"type": "trip_ended", "trip_id": "N1", "ts": ts},
    ]
    lines[41:41] = [json.dumps(e) for e in extra] + ["{broken"]
    return ("\n".join(lines) + "\n").encode()


class _Messages:
    """A connection's two ends in one list (small batches: no pipe needed)."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def send_bytes(self, data: object) -> None:
        self.sent.append(bytes(data))  # type: ignore[call-overload]

    def recv_bytes(self) -> bytes:
        return self.sent.pop(0)


def _same(received: tuple[EventColumns, list[LineError]], sent: tuple[EventColumns, list[LineError]]) -> None:
    (got, got_errors), (expected, expected_errors) = received, sent
    assert got_errors == expected_errors
    assert got.trip_ids == expected.trip_ids
    for name in PING_COLUMNS:
        assert np.array_equal(getattr(got, name), getattr(expected, name), equal_nan=True), name
    assert got.with_start_objects().others == expected.with_start_objects().others
    assert got.trip_groups()[1] == expected.trip_groups()[1]
    assert np.array_equal(got.trip_groups()[0], expected.trip_groups()[0])


def test_batches_cross_the_pipe_as_they_left_in_order(stream: bytes, tmp_path: Path) -> None:
    path = tmp_path / "events.ndjson"
    path.write_bytes(stream)
    with path.open("rb") as handle:
        expected = list(parsed_batches(handle, 97))
    received = list(parsed_ahead(str(path), 97))  # through the forked parser and the pipe
    assert len(received) == len(expected) > 10
    for got, sent in zip(received, expected, strict=True):
        _same(got, sent)
    assert any(c.starts is not None for c, _ in received)  # starts went as columns
    broken = stream.split(b"\n").index(b"{broken") + 1
    assert [e.line for _, errors in received for e in errors] == [broken]  # where it was


def test_a_batch_of_every_shape_and_an_empty_one_arrive_whole(stream: bytes) -> None:
    connection = _Messages()
    sent = [read_ndjson(stream, starts_as_columns=True), read_ndjson(b""), read_ndjson(b"{broken\n")]
    for parsed in sent:
        send_batch(connection, parsed)  # type: ignore[arg-type]
    for parsed in sent:
        received = receive_batch(connection)  # type: ignore[arg-type]
        assert received is not None
        _same(received, parsed)


def test_a_name_with_a_newline_goes_pickled_and_arrives_whole() -> None:
    columns = EventColumns.of_pings(["T1", "odd\nname"], np.array([1.0, 2.0]), np.array([1.0, 2.0]),
                                    np.array([3.0, 4.0]))
    connection = _Messages()
    send_batch(connection, (columns, []))  # type: ignore[arg-type]
    received = receive_batch(connection)  # type: ignore[arg-type]
    assert received is not None
    _same(received, (columns, []))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams())
def test_the_monitor_takes_starts_as_columns_as_it_takes_them_as_objects(
        stream: tuple[list[Event], list[int]]) -> None:
    events, cuts = stream
    monitor = BatchMonitor(CONFIG, capacity=2, points=16)
    alerts = []
    start = 0
    for size in [*cuts, len(events)]:
        alerts.extend(monitor.process_columns(EventColumns.of(events[start:start + size]).with_start_columns()))
        start += size
        if start >= len(events):
            break
    assert sorted(key(a) for a in alerts) == reference(events)


def test_the_replay_gives_the_same_alerts_with_the_reader_as_with_objects(stream: bytes) -> None:
    alerts = {}
    for as_columns in (True, False):
        monitor = BatchMonitor()
        lines = stream.split(b"\n")
        alerts[as_columns] = [a for k in range(0, len(lines), 300)
                              for a in monitor.process_columns(
                                  read_ndjson(b"\n".join(lines[k:k + 300]), starts_as_columns=as_columns)[0])]
    assert alerts[True] == alerts[False] and len(alerts[True]) >= 4


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _gone(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    return "\nState:\tZ" in status


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")
def test_the_parser_stops_when_the_replay_process_is_killed(stream: bytes) -> None:
    replay = subprocess.Popen([TRIPGUARD, "monitor", "replay", "-"], stdin=subprocess.PIPE,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert replay.stdin is not None
        replay.stdin.write(stream[:5000])  # less than a batch: the parser waits for more on standard input
        replay.stdin.flush()
        deadline = time.monotonic() + 60
        while not (parser := _children(replay.pid)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert parser, "the parser process never started"
        os.kill(replay.pid, signal.SIGKILL)
        replay.wait()
        deadline = time.monotonic() + 10
        while not _gone(parser[0]) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _gone(parser[0]), "the parser outlived the replay process"
    finally:
        if replay.poll() is None:
            replay.kill()
        if replay.stdin is not None:
            replay.stdin.close()
