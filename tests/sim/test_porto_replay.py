"""The monitor on the 318 real Porto trips, clean and with urban GPS noise (sim/noise.py): injected
anomalies caught in time; every alert on the normal trips explained by what the taxi really did."""

from __future__ import annotations

import json
from collections import defaultdict

import pytest
from typer.testing import CliRunner

from tripguard.cli import app as cli
from tripguard.sim.noise import MODELS
from tripguard.sim.porto import KINDS, build_stream, load_trips
from tripguard.telematics.detection.monitor import Alert, Monitor, MonitorConfig
from tripguard.telematics.ingest.events import parse_event
from tripguard.telematics.ingest.geo import haversine_m

pytestmark = pytest.mark.no_database

TRIPS = load_trips()


def replay(events: list[dict[str, object]]) -> list[Alert]:
    monitor = Monitor()
    alerts: list[Alert] = []
    for event in events:
        alerts.extend(monitor.process(parse_event(event)))
    return alerts


def test_the_data_is_all_there() -> None:
    assert len(TRIPS) == 318 and sum(len(t.points) for t in TRIPS) == 14_436


# The owner's decision on issue 4: these trips really stand still 10 minutes or more mid-trip, kilometres
# from both ends; each alert on them is genuine. T131 also holds 145 km/h.
STOPPED = {"T36", "T59", "T138", "T174", "T197", "T206", "T208", "T224", "T228", "T230", "T277"}
SPEEDING = {"T131"}
# Trips with a genuine stop of 8 minutes or more away from both ends (bench/quality.py computes them):
# the false-alert criterion does not count them.
GENUINE_STOPS = STOPPED | {"T131", "T223", "T307"}
NOISE = [("none", 7), ("urban", 1), ("urban", 2)]


@pytest.mark.parametrize(("noise", "seed"), NOISE)
@pytest.mark.parametrize("kind", KINDS)
def test_injected_anomalies_are_caught_within_60_s(kind: str, noise: str, seed: int) -> None:
    events, injections = build_stream(TRIPS, inject={kind: 60}, noise=MODELS[noise], seed=seed)
    defined = [i for i in injections if i.onset is not None]
    assert len(defined) >= 45
    alerts = defaultdict(list)
    for alert in replay(events):
        alerts[alert.trip_id].append(alert)
    caught = [i for i in defined if any(a.kind == kind and a.ts - i.onset <= 60 for a in alerts[i.trip_id])]  # type: ignore[operator]
    # Clean: every one. Noisy: bench/quality.py has the figures; a crash whose own fixes arrive late
    # and a stop barely over 10 minutes whose first fixes are thrown can slip (docs/benchmarks.md).
    assert len(caught) / len(defined) >= (1.0 if noise == "none" else 0.95)


@pytest.mark.parametrize(("noise", "seed"), NOISE)
def test_alerts_on_normal_trips_are_real_events(noise: str, seed: int) -> None:
    events, _ = build_stream(TRIPS, noise=MODELS[noise], seed=seed)
    alerts = replay(events)
    by_id = {t.trip_id: t for t in TRIPS}
    config = MonitorConfig()
    flagged = {a.trip_id for a in alerts}
    assert not flagged - GENUINE_STOPS  # issue 10: at most 0.5 % of the other 304; none today
    stopped = {a.trip_id for a in alerts if a.kind == "long_stop"}
    assert stopped == STOPPED if noise == "none" else STOPPED - stopped <= {"T224", "T277"}  # the two shortest
    for alert in alerts:
        trip = by_id[alert.trip_id]
        if alert.kind == "long_stop":  # the taxi really stood within 50 m for 10 minutes, far from both ends
            assert alert.lon is not None and alert.lat is not None
            near = [t for (lon, lat), t in zip(trip.points, trip.times, strict=True)
                    if haversine_m(lon, lat, alert.lon, alert.lat) <= config.stop_radius_m]
            assert max(near) - min(near) >= config.stop_seconds
        elif alert.kind == "speeding":
            assert alert.trip_id in SPEEDING and alert.evidence["speed_kmh"] >= 140  # type: ignore[operator]
        else:
            pytest.fail(f"unexpected {alert.kind} on a normal trip: {alert.as_dict()}")


def test_replay_command_prints_only_alerts(tmp_path) -> None:  # type: ignore[no-untyped-def]
    events, _ = build_stream(TRIPS[:40], inject={"route_deviation": 3})
    path = tmp_path / "events.ndjson"
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    result = CliRunner().invoke(cli, ["monitor", "replay", str(path)])
    assert result.exit_code == 0
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert sum(1 for a in lines if a["kind"] == "route_deviation") == 3
    assert all(list(a) == ["trip_id", "kind", "ts", "lon", "lat", "severity", "evidence"] for a in lines)
    patient = CliRunner().invoke(cli, ["monitor", "replay", str(path), "--threshold", "deviation_seconds=3600",
                                       "--batch", "100"])
    assert patient.exit_code == 0 and '"route_deviation"' not in patient.stdout
    wrong = CliRunner().invoke(cli, ["monitor", "replay", str(path), "--threshold", "stop_minutes=5"])
    assert wrong.exit_code == 2 and "stop_seconds" in wrong.stderr
    path.write_text(path.read_text() + "{broken\n")
    broken = CliRunner().invoke(cli, ["monitor", "replay", str(path), "--batch", "7"])
    assert broken.exit_code == 1 and f"line {len(events) + 1}:" in broken.stderr


def test_sim_command_writes_events_and_truth(tmp_path) -> None:  # type: ignore[no-untyped-def]
    out, truth = tmp_path / "porto.ndjson", tmp_path / "truth.jsonl"
    result = CliRunner().invoke(cli, ["sim", "porto", "--out", str(out), "--inject", "2", "--truth", str(truth)])
    assert result.exit_code == 0
    assert sum(1 for _ in out.open()) > 15_000
    assert {json.loads(line)["kind"] for line in truth.read_text().splitlines()} == set(KINDS)
    noisy = tmp_path / "noisy.ndjson"
    for run in (1, 2):
        result = CliRunner().invoke(cli, ["sim", "porto", "--out", str(noisy), "--noise", "urban", "--seed", "5"])
        assert result.exit_code == 0
        text = noisy.read_text()
        if run == 1:
            first = text
    assert text == first and text != out.read_text()  # seeded: the same noise twice, and noise it is
    wrong = CliRunner().invoke(cli, ["sim", "porto", "--noise", "loud"])
    assert wrong.exit_code == 2 and "urban" in wrong.stderr
    twice = tmp_path / "twice.ndjson"
    assert CliRunner().invoke(cli, ["sim", "porto", "--out", str(twice), "--copies", "2"]).exit_code == 0
    starts = [json.loads(line)["trip_id"] for line in twice.open() if '"trip_started"' in line]
    assert len(starts) == len(set(starts)) == 2 * len(TRIPS) and "T1-0" in starts and "T1-1" in starts


def _with_reported_speeds(trip_index: int) -> list[dict[str, object]]:
    """A real Porto trip whose device also reports its speed (from its own positions), as a phone SDK would."""
    events, _ = build_stream(TRIPS[trip_index:trip_index + 1])
    previous = None
    for event in events:
        if event["type"] == "ping":
            if previous is not None:
                seconds = 15.0
                event["speed_mps"] = round(haversine_m(previous["lon"], previous["lat"], event["lon"],  # type: ignore[arg-type]
                                                       event["lat"]) / seconds, 2)  # type: ignore[arg-type]
            previous = event
    return events


def test_a_crash_on_a_real_trace_is_caught() -> None:
    """Trip T3, cut at a moment it drives 50+ km/h: a sharp stop reported within 3 s, then no movement."""
    events = _with_reported_speeds(2)
    pings = [e for e in events if e["type"] == "ping"]
    k = next(i for i, p in enumerate(pings) if i > 5 and float(p.get("speed_mps", 0)) >= 14)  # type: ignore[arg-type]
    from tripguard.telematics.ingest.events import format_ts, parse_ts

    at = parse_ts(pings[k]["ts"])
    crash = [{**pings[k], "ts": format_ts(at + 3), "speed_mps": 0.0}]
    crash += [{**pings[k], "ts": format_ts(at + 3 + 10 * n), "speed_mps": 0.0} for n in range(1, 5)]
    stream = [events[0], *pings[:k + 1], *crash]
    alerts = replay(stream)
    assert [a.kind for a in alerts] == ["possible_crash"]
    assert alerts[0].evidence["speed_before_kmh"] >= 50  # type: ignore[operator]


def test_a_device_going_silent_on_a_real_trip_is_caught() -> None:
    events, _ = build_stream(TRIPS[2:3])
    start = events[0]
    beat = {"type": "device_heartbeat", "device_id": "DEV-T3", "vehicle_id": start["vehicle_id"], "ts": start["ts"]}
    alerts = replay([beat, *events])  # one heartbeat at the start, then nothing from the device
    assert "device_offline" in [a.kind for a in alerts]
