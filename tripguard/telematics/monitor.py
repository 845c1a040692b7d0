"""The trip monitor: dangerous situations from the event stream, by event time only.

Reference implementation: one object per active trip, every rule written out plainly. The same
events give the same alerts, live or replayed. Silence (GPS lost, device offline) is noticed when
the stream's watermark (the newest event time seen, less the allowed lateness) passes a trip's
deadline, so a silent device is flagged while the others keep talking.

Rules (thresholds in `MonitorConfig`):
- route_deviation: farther than `deviation_m` from the planned route for `deviation_seconds`.
- long_stop: within `stop_radius_m` of one spot for `stop_seconds`, away from pickup and drop-off.
- possible_crash: reported speed falls from `crash_from_mps` to `crash_to_mps` within
  `crash_within_s` (or the device reports `crash_g`), then the vehicle stays still for
  `crash_still_seconds`. Speeds computed from 15-s positions cannot show a crash; devices must send
  `speed_mps` or `accel_g` for this rule.
- early_end: the trip ends farther than `early_end_m` from the planned drop-off.
- gps_lost: no ping for `gps_lost_seconds` during a trip.
- speeding: above `speed_limit_mps` for `speeding_seconds`.
- device_offline: a vehicle on a trip whose device sent no heartbeat for `device_silence_seconds`.
A position implying more than `max_plausible_mps` since the last one is a GPS glitch and ignored.

An alert's `ts` is the event time at which its rule's condition was met; for silence that is the
last sign of life plus the threshold, whether the silence is noticed from the watermark or when the
device speaks again. So an alert's content does not depend on how the stream was cut into batches
or which other trips happened to be talking: only on the events of the trip itself (and, for
silence, on whether the watermark passed the deadline before the device spoke again).
"""

from __future__ import annotations

import dataclasses
import heapq
from dataclasses import dataclass, field

from tripguard.telematics.events import (
    DeviceHeartbeat,
    Event,
    Ping,
    TripEnded,
    TripStarted,
    format_ts,
)
from tripguard.telematics.geo import Route, haversine_m

SEVERITY = {"route_deviation": "high", "possible_crash": "high", "long_stop": "medium", "early_end": "medium",
            "gps_lost": "medium", "device_offline": "medium", "speeding": "low"}


@dataclass(frozen=True)
class MonitorConfig:
    deviation_m: float = 300.0
    deviation_seconds: float = 30.0
    stop_radius_m: float = 50.0
    stop_seconds: float = 600.0
    endpoint_radius_m: float = 250.0
    early_end_m: float = 500.0
    gps_lost_seconds: float = 90.0
    max_plausible_mps: float = 70.0
    speed_limit_mps: float = 38.9  # 140 km/h: 120 plus a margin, without road speed-limit data
    speeding_seconds: float = 45.0
    crash_from_mps: float = 13.9  # 50 km/h
    crash_to_mps: float = 1.0
    crash_within_s: float = 5.0
    crash_g: float = 2.5
    crash_still_seconds: float = 30.0
    device_silence_seconds: float = 120.0
    lateness_seconds: float = 5.0


def config_with(overrides: dict[str, float]) -> MonitorConfig:
    """The defaults with an operator's changes (`TRIPGUARD_MONITOR_THRESHOLDS`, `--threshold`)."""
    return dataclasses.replace(MonitorConfig(), **overrides)


@dataclass(frozen=True)
class Alert:
    trip_id: str
    kind: str
    ts: float
    lon: float | None
    lat: float | None
    evidence: dict[str, object]

    @property
    def severity(self) -> str:
        return SEVERITY[self.kind]

    def as_dict(self) -> dict[str, object]:
        """The contract's shape and key order (DESIGN.md §4)."""
        return {"trip_id": self.trip_id, "kind": self.kind, "ts": format_ts(self.ts), "lon": self.lon,
                "lat": self.lat, "severity": self.severity, "evidence": self.evidence}


@dataclass
class TripState:
    trip_id: str
    started: bool = False
    vehicle_id: str | None = None
    route: Route | None = None
    pickup: tuple[float, float] | None = None
    dropoff: tuple[float, float] | None = None
    last_ts: float | None = None  # last ping heard (alive)
    lon: float | None = None  # last trusted position
    lat: float | None = None
    pos_ts: float | None = None
    speed: float | None = None
    off_route_since: float | None = None
    deviation_alerted: bool = False
    stop_lon: float | None = None
    stop_lat: float | None = None
    stop_since: float | None = None
    stop_alerted: bool = False
    speeding_since: float | None = None
    speeding_alerted: bool = False
    crash_at: float | None = None
    crash_lon: float | None = None
    crash_lat: float | None = None
    crash_from: float | None = None
    crash_alerted: bool = False
    silence_alerted_for: float | None = None  # the last_ts whose silence was reported


@dataclass
class Monitor:
    config: MonitorConfig = field(default_factory=MonitorConfig)
    trips: dict[str, TripState] = field(default_factory=dict)
    max_ts: float = float("-inf")
    _silence: list[tuple[float, str, float]] = field(default_factory=list)  # (deadline, trip, last_ts)
    _heartbeats: dict[str, tuple[float, str]] = field(default_factory=dict)  # vehicle -> (ts, device)
    _device_deadlines: list[tuple[float, str, float]] = field(default_factory=list)
    _device_alerted: set[tuple[str, float]] = field(default_factory=set)
    # Trips seen to end, so that a re-sent batch does not start them again (bounded, oldest forgotten).
    _ended: dict[str, None] = field(default_factory=dict)
    ended_memory: int = 100_000

    @property
    def watermark(self) -> float:
        return self.max_ts - self.config.lateness_seconds

    def process(self, event: Event) -> list[Alert]:
        alerts: list[Alert] = []
        if not isinstance(event, DeviceHeartbeat) and event.trip_id in self._ended:
            return alerts  # a re-sent event of a finished trip
        if isinstance(event, Ping):
            self._ping(event, alerts)
        elif isinstance(event, TripStarted):
            self._start(event)
        elif isinstance(event, TripEnded):
            self._end(event, alerts)
        elif isinstance(event, DeviceHeartbeat):
            self._heartbeat(event)
        if event.ts > self.max_ts:
            self.max_ts = event.ts
            self._check_silence(alerts)
        return alerts

    # -- events -------------------------------------------------------------------------------
    def _start(self, event: TripStarted) -> None:
        known = self.trips.get(event.trip_id)
        if known is not None and known.started:
            return  # re-sent: the trip is under way already
        route = Route.from_lonlat(list(event.route)) if event.route else None
        pickup = event.pickup or (event.route[0] if event.route else None)
        dropoff = event.dropoff or (event.route[-1] if event.route else None)
        self.trips[event.trip_id] = TripState(event.trip_id, started=True, vehicle_id=event.vehicle_id, route=route,
                                              pickup=pickup, dropoff=dropoff, last_ts=event.ts)
        heapq.heappush(self._silence, (event.ts + self.config.gps_lost_seconds, event.trip_id, event.ts))

    def _end(self, event: TripEnded, alerts: list[Alert]) -> None:
        trip = self.trips.pop(event.trip_id, None)
        if trip is None:
            return
        self._ended[event.trip_id] = None
        if len(self._ended) > self.ended_memory:
            del self._ended[next(iter(self._ended))]
        lon = event.lon if event.lon is not None else trip.lon
        lat = event.lat if event.lat is not None else trip.lat
        if trip.dropoff is not None and lon is not None and lat is not None:
            distance = haversine_m(lon, lat, trip.dropoff[0], trip.dropoff[1])
            if distance > self.config.early_end_m:
                alerts.append(Alert(trip.trip_id, "early_end", event.ts, lon, lat,
                                    {"distance_to_dropoff_m": round(distance), "since": format_ts(event.ts)}))

    def _heartbeat(self, event: DeviceHeartbeat) -> None:
        self._heartbeats[event.vehicle_id] = (event.ts, event.device_id)
        heapq.heappush(self._device_deadlines,
                       (event.ts + self.config.device_silence_seconds, event.vehicle_id, event.ts))

    def _ping(self, ping: Ping, alerts: list[Alert]) -> None:
        cfg = self.config
        trip = self.trips.get(ping.trip_id)
        if trip is None:  # pings for a trip we were not told of: route-independent rules only
            trip = self.trips[ping.trip_id] = TripState(ping.trip_id)
        if trip.last_ts is not None and ping.ts <= trip.last_ts and trip.pos_ts is not None:
            return  # a duplicate or an out-of-order ping: already covered
        if trip.last_ts is not None and ping.ts - trip.last_ts >= cfg.gps_lost_seconds \
                and trip.silence_alerted_for != trip.last_ts and trip.pos_ts is not None:
            alerts.append(self._gps_lost(trip, trip.last_ts))
            trip.silence_alerted_for = trip.last_ts
        trip.last_ts = ping.ts
        heapq.heappush(self._silence, (ping.ts + cfg.gps_lost_seconds, trip.trip_id, ping.ts))

        speed = ping.speed_mps
        if trip.pos_ts is not None and trip.lon is not None and trip.lat is not None:
            dt = ping.ts - trip.pos_ts
            moved = haversine_m(trip.lon, trip.lat, ping.lon, ping.lat)
            if dt > 0 and moved / dt > cfg.max_plausible_mps:
                return  # a glitch: trust neither its position nor its speed
            if speed is None and 0 < dt <= 60:
                speed = moved / dt
        previous_speed, previous_ts = trip.speed, trip.pos_ts
        trip.lon, trip.lat, trip.pos_ts, trip.speed = ping.lon, ping.lat, ping.ts, speed

        self._deviation(trip, ping, alerts)
        self._stop(trip, ping, alerts)
        self._speeding(trip, ping, speed, alerts)
        self._crash(trip, ping, speed, previous_speed, previous_ts, alerts)

    # -- rules --------------------------------------------------------------------------------
    def _deviation(self, trip: TripState, ping: Ping, alerts: list[Alert]) -> None:
        if trip.route is None:
            return
        distance = trip.route.distance_m(ping.lon, ping.lat)
        if distance <= self.config.deviation_m:
            trip.off_route_since, trip.deviation_alerted = None, False  # back on the route
            return
        if trip.off_route_since is None:
            trip.off_route_since = ping.ts
        if not trip.deviation_alerted and ping.ts - trip.off_route_since >= self.config.deviation_seconds:
            trip.deviation_alerted = True
            alerts.append(Alert(trip.trip_id, "route_deviation", ping.ts, ping.lon, ping.lat,
                                {"distance_m": round(distance), "since": format_ts(trip.off_route_since)}))

    def _near_endpoint(self, trip: TripState, lon: float, lat: float) -> bool:
        radius = self.config.endpoint_radius_m
        return any(point is not None and haversine_m(lon, lat, point[0], point[1]) <= radius
                   for point in (trip.pickup, trip.dropoff))

    def _stop(self, trip: TripState, ping: Ping, alerts: list[Alert]) -> None:
        if trip.stop_since is None or trip.stop_lon is None or trip.stop_lat is None or \
                haversine_m(trip.stop_lon, trip.stop_lat, ping.lon, ping.lat) > self.config.stop_radius_m:
            trip.stop_lon, trip.stop_lat, trip.stop_since, trip.stop_alerted = ping.lon, ping.lat, ping.ts, False
            return
        if not trip.stop_alerted and ping.ts - trip.stop_since >= self.config.stop_seconds \
                and not self._near_endpoint(trip, trip.stop_lon, trip.stop_lat):
            trip.stop_alerted = True
            alerts.append(Alert(trip.trip_id, "long_stop", ping.ts, trip.stop_lon, trip.stop_lat,
                                {"stopped_s": round(ping.ts - trip.stop_since), "since": format_ts(trip.stop_since)}))

    def _speeding(self, trip: TripState, ping: Ping, speed: float | None, alerts: list[Alert]) -> None:
        if speed is None or speed <= self.config.speed_limit_mps:
            trip.speeding_since, trip.speeding_alerted = None, False
            return
        if trip.speeding_since is None:
            trip.speeding_since = ping.ts
        if not trip.speeding_alerted and ping.ts - trip.speeding_since >= self.config.speeding_seconds:
            trip.speeding_alerted = True
            alerts.append(Alert(trip.trip_id, "speeding", ping.ts, ping.lon, ping.lat,
                                {"speed_kmh": round(speed * 3.6), "since": format_ts(trip.speeding_since)}))

    def _crash(self, trip: TripState, ping: Ping, speed: float | None, previous_speed: float | None,
               previous_ts: float | None, alerts: list[Alert]) -> None:
        cfg = self.config
        if trip.crash_at is None:
            sharp_stop = (ping.speed_mps is not None and previous_speed is not None and previous_ts is not None
                          and previous_speed >= cfg.crash_from_mps and ping.speed_mps <= cfg.crash_to_mps
                          and ping.ts - previous_ts <= cfg.crash_within_s)
            if sharp_stop or (ping.accel_g is not None and ping.accel_g >= cfg.crash_g):
                trip.crash_at, trip.crash_lon, trip.crash_lat = ping.ts, ping.lon, ping.lat
                trip.crash_from = previous_speed
            return
        assert trip.crash_lon is not None and trip.crash_lat is not None
        if haversine_m(trip.crash_lon, trip.crash_lat, ping.lon, ping.lat) > cfg.stop_radius_m:
            trip.crash_at = None  # it drove on
            return
        if not trip.crash_alerted and ping.ts - trip.crash_at >= cfg.crash_still_seconds:
            trip.crash_alerted = True
            evidence: dict[str, object] = {"still_s": round(ping.ts - trip.crash_at), "since": format_ts(trip.crash_at)}
            if trip.crash_from is not None:
                evidence["speed_before_kmh"] = round(trip.crash_from * 3.6)
            alerts.append(Alert(trip.trip_id, "possible_crash", ping.ts, trip.crash_lon, trip.crash_lat, evidence))

    # -- silence ------------------------------------------------------------------------------
    def _gps_lost(self, trip: TripState, last_ts: float) -> Alert:
        silent = self.config.gps_lost_seconds
        return Alert(trip.trip_id, "gps_lost", last_ts + silent, trip.lon, trip.lat,
                     {"silent_s": round(silent), "since": format_ts(last_ts)})

    def _check_silence(self, alerts: list[Alert]) -> None:
        watermark = self.watermark
        while self._silence and self._silence[0][0] <= watermark:
            _, trip_id, last_ts = heapq.heappop(self._silence)
            trip = self.trips.get(trip_id)
            if trip is None or trip.last_ts != last_ts or trip.silence_alerted_for == last_ts:
                continue  # ended, spoke since, or already reported
            trip.silence_alerted_for = last_ts
            alerts.append(self._gps_lost(trip, last_ts))
        while self._device_deadlines and self._device_deadlines[0][0] <= watermark:
            _, vehicle_id, beat_ts = heapq.heappop(self._device_deadlines)
            last = self._heartbeats.get(vehicle_id)
            if last is None or last[0] != beat_ts or (vehicle_id, beat_ts) in self._device_alerted:
                continue
            for trip in self.trips.values():
                if trip.vehicle_id == vehicle_id:
                    self._device_alerted.add((vehicle_id, beat_ts))
                    silent = self.config.device_silence_seconds
                    alerts.append(Alert(trip.trip_id, "device_offline", beat_ts + silent, None, None,
                                        {"device_id": last[1], "silent_s": round(silent),
                                         "since": format_ts(beat_ts)}))
