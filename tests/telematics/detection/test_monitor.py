"""Each monitoring rule on small, exact event sequences; determinism; glitches and duplicates."""

from __future__ import annotations

import pytest

from tripguard.telematics.detection.monitor import Alert, Monitor, MonitorConfig
from tripguard.telematics.ingest.events import DeviceHeartbeat, Ping, TripEnded, TripStarted
from tripguard.telematics.ingest.geo import haversine_m

pytestmark = pytest.mark.no_database

T0 = 1_772_352_000.0  # 2026-03-01T08:00:00Z
DEG_PER_M = 1 / 111_320
ROUTE = tuple((-8.61 + i * 0.001, 41.14) for i in range(30))  # ~2.5 km due east


def start(trip: str = "T1", vehicle: str = "V1", at: float = T0) -> TripStarted:
    return TripStarted(trip, at, vehicle, "D1", ROUTE[0], ROUTE[-1], ROUTE)


def run(events: list, config: MonitorConfig | None = None) -> list[Alert]:  # type: ignore[type-arg]
    monitor = Monitor(config or MonitorConfig())
    alerts: list[Alert] = []
    for event in events:
        alerts.extend(monitor.process(event))
    return alerts


def drive(trip: str, seconds: int, *, every: int = 15, north_m: float = 0, t0: float = T0, speed: float | None = None,
          start_index: int = 0) -> list[Ping]:
    pings = []
    for n, t in enumerate(range(0, seconds, every)):
        lon = ROUTE[min(start_index + n, len(ROUTE) - 1)][0]
        pings.append(Ping(trip, t0 + t, lon, 41.14 + north_m * DEG_PER_M, speed_mps=speed))
    return pings


def kinds(alerts: list[Alert]) -> list[str]:
    return [a.kind for a in alerts]


def test_a_normal_trip_raises_nothing() -> None:
    events = [start(), *drive("T1", 29 * 15), TripEnded("T1", T0 + 29 * 15, ROUTE[-1][0], ROUTE[-1][1])]
    assert run(events) == []


def test_route_deviation_after_the_hold_time_once() -> None:
    events = [start(), *drive("T1", 60), *drive("T1", 120, north_m=600, t0=T0 + 60, start_index=4)]
    alerts = run(events)
    assert kinds(alerts) == ["route_deviation"]
    alert = alerts[0]
    assert alert.evidence["since"] == "2026-03-01T08:01:00Z" and alert.ts == T0 + 60 + 30
    assert alert.as_dict()["severity"] == "high" and list(alert.as_dict()) == [
        "trip_id", "kind", "ts", "lon", "lat", "severity", "evidence"]


def test_a_short_excursion_is_not_a_deviation() -> None:
    events = [start(), *drive("T1", 60), *drive("T1", 15, north_m=600, t0=T0 + 60, start_index=4),
              *drive("T1", 60, t0=T0 + 75, start_index=5)]
    assert run(events) == []


def test_long_stop_away_from_endpoints_but_not_at_pickup() -> None:
    midway = [Ping("T1", T0 + t, ROUTE[15][0], ROUTE[15][1]) for t in range(0, 700, 15)]
    alerts = run([start(), *midway])
    assert kinds(alerts) == ["long_stop"] and alerts[0].evidence["stopped_s"] >= 600
    at_pickup = [Ping("T1", T0 + t, ROUTE[0][0], ROUTE[0][1]) for t in range(0, 700, 15)]
    assert run([start(), *at_pickup]) == []


def test_possible_crash_needs_a_sharp_stop_and_stillness() -> None:
    fast = [Ping("T1", T0 + t, ROUTE[t // 15][0], 41.14, speed_mps=20) for t in range(0, 60, 15)]
    crash_at = ROUTE[4]
    still = [Ping("T1", T0 + 62 + t, crash_at[0], crash_at[1], speed_mps=0) for t in range(0, 60, 5)]
    alerts = run([start(), *fast, Ping("T1", T0 + 60, crash_at[0], crash_at[1], speed_mps=20), *still])
    assert kinds(alerts) == ["possible_crash"] and alerts[0].evidence["speed_before_kmh"] == 72
    # The same sharp stop, then it drives on: no alert.
    drives_on = [Ping("T1", T0 + 62 + t, ROUTE[5 + t // 15][0], 41.14, speed_mps=10) for t in range(0, 60, 15)]
    assert run([start(), *fast, Ping("T1", T0 + 60, crash_at[0], crash_at[1], speed_mps=20),
                Ping("T1", T0 + 62, crash_at[0], crash_at[1], speed_mps=0), *drives_on]) == []


def test_accelerometer_spike_starts_a_crash_check() -> None:
    spot = ROUTE[10]
    pings = [Ping("T1", T0 + t, spot[0], spot[1], accel_g=4.0 if t == 0 else None) for t in range(0, 60, 10)]
    assert kinds(run([start(), *pings])) == ["possible_crash"]


def test_early_end_far_from_dropoff() -> None:
    alerts = run([start(), *drive("T1", 150), TripEnded("T1", T0 + 150, ROUTE[10][0], ROUTE[10][1])])
    assert kinds(alerts) == ["early_end"] and alerts[0].evidence["distance_to_dropoff_m"] > 1000


def test_gps_lost_is_noticed_from_other_trips_pings() -> None:
    silent = [start("T1"), Ping("T1", T0, ROUTE[0][0], ROUTE[0][1])]
    others = [start("T2", "V2"), *drive("T2", 300)]
    events = sorted([*silent, *others], key=lambda e: e.ts)
    alerts = run(events)
    assert kinds(alerts) == ["gps_lost"]
    alert = alerts[0]
    assert alert.trip_id == "T1" and alert.evidence["since"] == "2026-03-01T08:00:00Z"
    assert alert.ts == T0 + 90  # the event time the silence became an alert, noticed from the watermark


def test_speeding_sustained() -> None:
    spots = [(ROUTE[0][0] + i * 0.0075, 41.14) for i in range(8)]  # ~630 m every 15 s: 150 km/h
    pings = [Ping("T1", T0 + 15 * i, lon, lat) for i, (lon, lat) in enumerate(spots)]
    no_route = TripStarted("T1", T0, "V1", "D1", None, None, None)  # only route-independent rules
    assert kinds(run([no_route, *pings])) == ["speeding"]


def test_device_offline_during_a_trip() -> None:
    events = [DeviceHeartbeat("DEV1", "V1", T0, True, True), start(), *drive("T1", 300)]
    alerts = run(events)
    assert kinds(alerts) == ["device_offline"] and alerts[0].evidence["device_id"] == "DEV1"


def test_glitches_and_duplicates_are_ignored() -> None:
    pings = drive("T1", 150)
    glitch = Ping("T1", T0 + 151, ROUTE[0][0] + 1.0, 41.14)  # 80 km away a second later
    events = [start(), *pings, pings[3], glitch, *drive("T1", 150, t0=T0 + 165, start_index=10)]
    assert run(events) == []


def test_replay_is_deterministic() -> None:
    events = [start(), *drive("T1", 60), *drive("T1", 700, north_m=600, t0=T0 + 60, start_index=4)]
    first = [a.as_dict() for a in run(events)]
    assert first and first == [a.as_dict() for a in run(events)]


def test_a_resent_batch_raises_nothing_new() -> None:
    events = [start(), *drive("T1", 60), *drive("T1", 120, north_m=600, t0=T0 + 60, start_index=4),
              TripEnded("T1", T0 + 180, ROUTE[12][0], 41.14)]
    monitor = Monitor()
    first = [a for e in events for a in monitor.process(e)]
    again = [a for e in events for a in monitor.process(e)]
    assert kinds(first) == ["route_deviation", "early_end"] and again == []


# -- GPS noise (issue 10): no rule fires or resets on a lone spike ---------------------------------------
def both(events: list) -> list[Alert]:  # type: ignore[type-arg]
    """The reference's alerts, after checking the batched monitor raises the very same."""
    from tripguard.telematics.detection.fast_monitor import BatchMonitor

    reference = run(events)
    batched = BatchMonitor().process(events)
    assert sorted(map(repr, batched)) == sorted(map(repr, reference))
    return reference


def _at(spot: tuple[float, float], east_m: float = 0, north_m: float = 0) -> tuple[float, float]:
    return spot[0] + east_m * DEG_PER_M * 1.33, spot[1] + north_m * DEG_PER_M


def test_a_multipath_jump_does_not_end_a_stop_and_since_is_when_it_stopped() -> None:
    spot = ROUTE[15]
    pings = []
    for n, t in enumerate(range(0, 700, 15)):
        east, north = ((120, 90) if n in (20, 21) else (0, 0)) if n != 0 else (150, -40)  # first fix wild too
        jitter = ((n * 7) % 31 - 15, (n * 13) % 29 - 14)
        pings.append(Ping("T1", T0 + t, *_at(spot, east + jitter[0], north + jitter[1])))
    alerts = both([start(), *pings])
    assert kinds(alerts) == ["long_stop"]
    assert alerts[0].evidence["since"] == "2026-03-01T08:00:15Z"  # the wild first fix is not the stop
    assert haversine_m(alerts[0].lon, alerts[0].lat, *spot) < 20  # type: ignore[arg-type]


def test_the_centre_moves_off_the_approach_to_where_the_vehicle_stands() -> None:
    """The first fixes inside the circle were the approach; the stop's centre follows the fixes of the stop."""
    spot = ROUTE[15]
    approach = [Ping("T1", T0 + 15 * n, *_at(spot, 0, north)) for n, north in enumerate((-45, -30, -15))]
    standing = [Ping("T1", T0 + 45 + t, *_at(spot, (t * 7) % 41 - 20, (t * 13) % 37 - 18)) for t in range(0, 660, 15)]
    alerts = both([start(), *approach, *standing])
    assert kinds(alerts) == ["long_stop"]
    assert haversine_m(alerts[0].lon, alerts[0].lat, *spot) < 15  # type: ignore[arg-type]


def test_a_crawl_never_becomes_a_stop() -> None:
    """The centre follows the stop's fixes only within `stop_radius_m` of where it first settled."""
    spot = ROUTE[15]
    crawl = [Ping("T1", T0 + t, *_at(spot, 0, t * 0.2)) for t in range(0, 1200, 15)]  # 3 m a fix, 240 m in all
    assert both([start(), *crawl]) == []


def test_a_real_departure_ends_the_stop_once_confirmed() -> None:
    spot = ROUTE[15]
    stand = [Ping("T1", T0 + t, *spot) for t in range(0, 300, 15)]
    leave = [Ping("T1", T0 + 300 + t, *_at(spot, 0, 80 + t * 10)) for t in range(0, 60, 15)]
    back = [Ping("T1", T0 + 360 + t, *spot) for t in range(0, 700, 15)]
    alerts = both([start(), *stand, *leave, *back])
    assert kinds(alerts) == ["long_stop"] and alerts[0].evidence["since"] == "2026-03-01T08:06:00Z"


def test_the_devices_own_word_keeps_a_drifting_stop() -> None:
    spot = ROUTE[15]
    drifting = [Ping("T1", T0 + t, *_at(spot, 0, t / 5), speed_mps=0.0) for t in range(0, 700, 15)]  # 140 m
    assert kinds(both([start(), *drifting])) == ["long_stop"]
    flagged = [Ping("T1", T0 + t, *_at(spot, 0, t / 5), stationary=True) for t in range(0, 700, 15)]
    assert kinds(both([start(), *flagged])) == ["long_stop"]
    without = [Ping("T1", T0 + t, *_at(spot, 0, t / 5)) for t in range(0, 700, 15)]
    assert both([start(), *without]) == []
    creeping = [Ping("T1", T0 + t, *spot, speed_mps=5.0) for t in range(0, 700, 15)]  # it says it moves
    assert both([start(), *creeping]) == []


def test_a_fix_with_poor_accuracy_is_no_position() -> None:
    spot = ROUTE[15]
    poor = [n % 6 in (1, 2, 3) for n in range(47)]  # three in a row, 120 m off: a departure, were they believed
    pings = [Ping("T1", T0 + 15 * n, *(_at(spot, 0, 120) if poor[n] else spot), accuracy_m=300.0 if poor[n] else 6.0)
             for n in range(47)]
    assert kinds(both([start(), *pings])) == ["long_stop"]


def test_route_deviation_neither_starts_nor_resets_on_a_jump() -> None:
    jumps = [*drive("T1", 60), *drive("T1", 30, north_m=350, t0=T0 + 60, start_index=4),
             *drive("T1", 120, t0=T0 + 90, start_index=6)]
    assert both([start(), *jumps]) == []  # two fixes 350 m off: not a deviation
    off = drive("T1", 150, north_m=600, t0=T0 + 60, start_index=4)
    off[3] = Ping("T1", off[3].ts, off[3].lon, 41.14)  # one fix back on the route in the middle
    alerts = both([start(), *drive("T1", 60), *off])
    assert kinds(alerts) == ["route_deviation"] and alerts[0].evidence["since"] == "2026-03-01T08:01:00Z"


def test_speeding_needs_consecutive_plausible_speeds() -> None:
    fast = [Ping("T1", T0 + t, ROUTE[t // 15][0], 41.14, speed_mps=45 if t // 15 % 3 else 20)
            for t in range(0, 300, 15)]
    assert both([start(), *fast]) == []  # over the limit two fixes in three, never confirmed as ended or begun
    steady = [Ping("T1", T0 + t, ROUTE[t // 15][0], 41.14, speed_mps=45) for t in range(0, 120, 15)]
    assert kinds(both([start(), *steady])) == ["speeding"]


def test_a_crash_whose_sharp_stop_arrives_late_is_still_caught() -> None:
    fast = [Ping("T1", T0 + t, ROUTE[t // 15][0], 41.14, speed_mps=20) for t in range(0, 75, 15)]
    spot = ROUTE[4]
    sharp = Ping("T1", T0 + 62, *spot, speed_mps=0.0)
    still = [Ping("T1", T0 + 72 + t, *spot, speed_mps=0.0) for t in range(0, 60, 10)]
    alerts = both([start(), *fast[:4], Ping("T1", T0 + 60, *spot, speed_mps=20), still[0], sharp, *still[1:]])
    assert kinds(alerts) == ["possible_crash"] and alerts[0].evidence["since"] == "2026-03-01T08:01:02Z"


@pytest.mark.parametrize("late_by", [1, 2, 3])
def test_a_crash_whose_last_fast_fix_arrives_late_is_still_caught(late_by: int) -> None:
    """The fast fix just before the stop arrives after the first still fixes (up to 20 s late)."""
    fast = [Ping("T1", T0 + t, ROUTE[t // 15][0], 41.14, speed_mps=20) for t in range(0, 60, 15)]
    spot = ROUTE[4]
    last_fast = Ping("T1", T0 + 60, spot[0] - 0.0001, spot[1], speed_mps=22)
    still = [Ping("T1", T0 + 62 + t, *spot, speed_mps=0.0) for t in range(0, 60, 10)]
    alerts = both([start(), *fast, *still[:late_by], last_fast, *still[late_by:]])
    assert kinds(alerts) == ["possible_crash"]
    assert alerts[0].evidence == {"still_s": 30, "since": "2026-03-01T08:01:02Z", "speed_before_kmh": 79}
    slow_before = Ping("T1", T0 + 55, spot[0] - 0.0001, spot[1], speed_mps=22)  # 7 s before the stillness: too long
    assert both([start(), *fast[:3], *still[:late_by], slow_before, *still[late_by:]]) == []


def test_one_wild_fix_at_the_end_is_not_an_early_end() -> None:
    on_route = drive("T1", 29 * 15)
    wild_end = TripEnded("T1", T0 + 29 * 15, *_at(ROUTE[-1], 0, 900))
    assert both([start(), *on_route, wild_end]) == []
    wild_last = [*on_route[:-1], Ping("T1", on_route[-1].ts, *_at(ROUTE[-1], 0, 900))]
    assert both([start(), *wild_last, TripEnded("T1", T0 + 29 * 15, None, None)]) == []
    really_early = TripEnded("T1", T0 + 10 * 15, None, None)
    assert kinds(both([start(), *on_route[:10], really_early])) == ["early_end"]
