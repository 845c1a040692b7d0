"""The batched monitor raises exactly the reference monitor's alerts, however the stream is cut."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tripguard.sim.porto import build_stream, load_trips
from tripguard.telematics.detection.fast_monitor import BatchMonitor
from tripguard.telematics.detection.monitor import Alert, Monitor, MonitorConfig
from tripguard.telematics.ingest.events import (
    DeviceHeartbeat,
    Event,
    Ping,
    TripEnded,
    TripStarted,
    parse_event,
)

pytestmark = pytest.mark.no_database

T0 = 1_772_352_000.0
ROUTE = tuple((-8.61 + i * 0.001, 41.14) for i in range(12))
DEG_PER_M = 1 / 111_320
# Short thresholds so that small generated streams reach every rule.
CONFIG = MonitorConfig(deviation_seconds=20, stop_seconds=60, gps_lost_seconds=40, speeding_seconds=10,
                       crash_still_seconds=10, device_silence_seconds=50)


def key(alert: Alert) -> tuple[object, ...]:
    return (alert.trip_id, alert.kind, alert.ts, repr(alert.lon), repr(alert.lat),
            json.dumps(alert.evidence, sort_keys=True))


def reference(events: list[Event], config: MonitorConfig = CONFIG) -> list[tuple[object, ...]]:
    monitor = Monitor(config)
    return sorted(key(a) for e in events for a in monitor.process(e))


def batched(events: list[Event], cuts: list[int], config: MonitorConfig = CONFIG) -> list[tuple[object, ...]]:
    monitor = BatchMonitor(config, capacity=2, points=16)  # tiny: slots grow and are reused, routes compacted
    alerts: list[Alert] = []
    start = 0
    for size in [*cuts, len(events)]:
        alerts.extend(monitor.process(events[start:start + size]))
        start += size
        if start >= len(events):
            break
    return sorted(key(a) for a in alerts)


@st.composite
def trip_events(draw: st.DrawFn, trip: str, vehicle: str, shift: float, climb: float) -> list[Event]:
    """One trip's events along its own route: `shift` degrees north of the others, rising `climb` a step."""
    events: list[Event] = []
    own = tuple((lon, lat + shift + i * climb) for i, (lon, lat) in enumerate(ROUTE))
    t = T0 + draw(st.integers(0, 60))
    if draw(st.integers(0, 9)) > 0:
        route = own if draw(st.integers(0, 4)) > 0 else None
        events.append(TripStarted(trip, t, vehicle, "D", own[0] if route else None,
                                  own[-1] if route else None, route))
    progress = 0.0
    for _ in range(draw(st.integers(0, 25))):
        t += draw(st.sampled_from([0, 1, 3, 5, 12, 15, 30, 45, 100]))
        if draw(st.integers(0, 3)) > 0:
            progress = min(len(ROUTE) - 1.0, progress + draw(st.sampled_from([0.0, 0.0, 0.0, 0.2, 1.0, 3.0, 60.0])))
        offset_m = draw(st.sampled_from([0, 0, 10, 150, 400, 900]))
        # GPS noise: scatter of a few tens of metres, and now and then a multipath jump.
        east_m, north_m = draw(st.sampled_from([(0, 0), (0, 0), (12, -7), (-20, 15), (35, 40), (-120, 60)]))
        lon = ROUTE[0][0] + progress * 0.001 + east_m * DEG_PER_M * 1.33
        lat = 41.14 + shift + progress * climb + (offset_m + north_m) * DEG_PER_M
        events.append(Ping(trip, t, lon, lat,
                           speed_mps=draw(st.sampled_from([None, None, 0.0, 0.5, 8.0, 20.0, 45.0])),
                           accuracy_m=draw(st.sampled_from([None, None, None, 8.0, 500.0])),
                           accel_g=draw(st.sampled_from([None, None, None, 0.3, 3.0])),
                           stationary=draw(st.sampled_from([None, None, None, True, False]))))
    if draw(st.integers(0, 2)) == 0:
        events.append(TripEnded(trip, t + draw(st.integers(0, 20)),
                                draw(st.sampled_from([None, ROUTE[-1][0], ROUTE[3][0]])), 41.14 + shift))
    return events


@st.composite
def streams(draw: st.DrawFn) -> tuple[list[Event], list[int]]:
    trips = draw(st.integers(1, 4))
    events: list[Event] = []
    for n in range(trips):
        events.extend(draw(trip_events(f"T{n}", f"V{n % 2}", 0.02 * n, 0.0008 * (n % 2))))
    for _ in range(draw(st.integers(0, 4))):
        events.append(DeviceHeartbeat(f"DEV{_}", f"V{draw(st.integers(0, 1))}", T0 + draw(st.integers(0, 400)),
                                      True, True))
    events.sort(key=lambda e: e.ts)
    # Late and repeated events: move some back, send some twice.
    for _ in range(draw(st.integers(0, 6))):
        if len(events) < 2:
            break
        i = draw(st.integers(1, len(events) - 1))
        j = draw(st.integers(max(0, i - 8), i - 1))
        if draw(st.booleans()):
            events.insert(j, events.pop(i))
        else:
            events.insert(i, events[j])
    cuts = draw(st.lists(st.integers(1, 12), max_size=8))
    return events, cuts


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams())
def test_batched_equals_reference(stream: tuple[list[Event], list[int]]) -> None:
    events, cuts = stream
    assert batched(events, cuts) == reference(events)


def test_porto_with_every_injected_anomaly_matches_and_alerts() -> None:
    lines, _ = build_stream(load_trips()[:80], inject={"route_deviation": 5, "long_stop": 5, "early_end": 5,
                                                       "gps_lost": 5})
    events = [parse_event(e) for e in lines]
    expected = reference(events, MonitorConfig())
    assert {k[1] for k in expected} >= {"route_deviation", "long_stop", "early_end", "gps_lost"}
    assert batched(events, [1000] * 20, MonitorConfig()) == expected
    assert batched(events, [len(events)], MonitorConfig()) == expected


def test_a_very_late_ping_waits_for_the_watermark_to_move_as_in_the_reference() -> None:
    late_trip = [TripStarted("T1", T0, "V1", "D", None, None, None)]
    others = [TripStarted("T2", T0, "V2", "D", None, None, None),
              *(Ping("T2", T0 + 15 * n, ROUTE[0][0] + n * 0.0005, 41.14) for n in range(1, 15))]
    late = Ping("T1", T0 + 10, ROUTE[0][0], 41.14)  # arrives when the watermark is far past T0 + 10 + 40
    events: list[Event] = [*late_trip, *others, late]
    assert batched(events, []) == reference(events)
    assert [k[1:3] for k in reference(events)] == [("gps_lost", T0 + 40)]
    moved_on = [*events, Ping("T2", T0 + 225, ROUTE[0][0] + 0.008, 41.14)]  # the watermark moves: now it is due
    assert batched(moved_on, []) == batched(moved_on, [len(events)]) == reference(moved_on)
    assert [k[1:3] for k in reference(moved_on)] == [("gps_lost", T0 + 40), ("gps_lost", T0 + 50)]
