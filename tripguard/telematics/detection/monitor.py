"""The trip monitor: dangerous situations from the event stream, by event time only.

Reference implementation: one object per active trip, every rule written out plainly. The same
events give the same alerts, live or replayed. Silence (GPS lost, device offline) is noticed when
the stream's watermark (the newest event time seen, less the allowed lateness) passes a trip's
deadline, so a silent device is flagged while the others keep talking.

Rules (thresholds in `MonitorConfig`):
- route_deviation, long_stop, speeding, possible_crash, early_end: one module each in `rules/`, the
  reference rule beside its batched detector, with how each survives GPS noise.
- gps_lost: no ping for `gps_lost_seconds` during a trip.
- device_offline: a vehicle on a trip whose device sent no heartbeat for `device_silence_seconds`.
A position implying more than `max_plausible_mps` since the last one is a GPS glitch, and one whose
own `accuracy_m` is worse than `max_accuracy_m` is not a position: both keep the trip alive only.

An alert's `ts` is the event time at which its rule's condition was met; for silence that is the
last sign of life plus the threshold, whether the silence is noticed from the watermark or when the
device speaks again. So an alert's content does not depend on how the stream was cut into batches
or which other trips happened to be talking: only on the events of the trip itself (and, for
silence, on whether the watermark passed the deadline before the device spoke again).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

from tripguard.telematics.detection.contract import SEVERITY, Alert, MonitorConfig, config_with
from tripguard.telematics.detection.rules import ending
from tripguard.telematics.detection.rules import route as route_rule
from tripguard.telematics.detection.rules import speed as speed_rules
from tripguard.telematics.detection.rules import stop as stop_rule
from tripguard.telematics.detection.rules.common import Held
from tripguard.telematics.ingest.events import (
    DeviceHeartbeat,
    Event,
    Ping,
    TripEnded,
    TripStarted,
    format_ts,
)
from tripguard.telematics.ingest.geo import Route, haversine_m

__all__ = ["SEVERITY", "Alert", "Monitor", "MonitorConfig", "TripState", "config_with"]


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
    prior_ts: float | None = None  # the trusted fix before the last one
    prior_speed: float | None = None
    recent: list[tuple[float, float]] = field(default_factory=list)  # the last trusted positions
    deviation: Held = field(default_factory=Held)
    stop: stop_rule.StopState = field(default_factory=stop_rule.StopState)
    speeding: Held = field(default_factory=Held)
    crash: speed_rules.CrashState = field(default_factory=speed_rules.CrashState)
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
        if trip.dropoff is None:
            return
        where = ending.where_it_ended(trip.recent, event.lon, event.lat, trip.dropoff)
        if where is not None and where[0] > self.config.early_end_m:
            alerts.append(Alert(trip.trip_id, "early_end", event.ts, where[1], where[2],
                                {"distance_to_dropoff_m": round(where[0]), "since": format_ts(event.ts)}))

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
            if ping.ts < trip.pos_ts and (ping.accuracy_m is None or ping.accuracy_m <= cfg.max_accuracy_m):
                speed_rules.late_crash_step(trip.crash, ping.lon, ping.lat, ping.ts, ping.speed_mps, ping.accel_g,
                                            trip.prior_speed, trip.prior_ts, cfg)
            return  # a duplicate or an out-of-order ping: already covered
        if trip.last_ts is not None and ping.ts - trip.last_ts >= cfg.gps_lost_seconds \
                and trip.silence_alerted_for != trip.last_ts and trip.pos_ts is not None:
            alerts.append(self._gps_lost(trip, trip.last_ts))
            trip.silence_alerted_for = trip.last_ts
        trip.last_ts = ping.ts
        heapq.heappush(self._silence, (ping.ts + cfg.gps_lost_seconds, trip.trip_id, ping.ts))

        if ping.accuracy_m is not None and ping.accuracy_m > cfg.max_accuracy_m:
            return  # the device itself says this position is not worth having
        speed = ping.speed_mps
        if trip.pos_ts is not None and trip.lon is not None and trip.lat is not None:
            dt = ping.ts - trip.pos_ts
            moved = haversine_m(trip.lon, trip.lat, ping.lon, ping.lat)
            if dt > 0 and moved / dt > cfg.max_plausible_mps:
                return  # a glitch: trust neither its position nor its speed
            if speed is None and 0 < dt <= 60:
                speed = moved / dt
        previous_speed, previous_ts = trip.speed, trip.pos_ts
        trip.prior_speed, trip.prior_ts = previous_speed, previous_ts
        trip.lon, trip.lat, trip.pos_ts, trip.speed = ping.lon, ping.lat, ping.ts, speed
        trip.recent = [*trip.recent[1 - ending.RECENT:], (ping.lon, ping.lat)]

        if trip.route is not None:
            distance = trip.route.distance_m(ping.lon, ping.lat)
            if route_rule.step(trip.deviation, distance, ping.ts, cfg):
                alerts.append(Alert(trip.trip_id, "route_deviation", ping.ts, ping.lon, ping.lat,
                                    {"distance_m": round(distance), "since": format_ts(trip.deviation.since or 0)}))
        state = trip.stop
        if stop_rule.step(state, ping.lon, ping.lat, ping.ts, ping.speed_mps, ping.stationary, cfg) \
                and state.lon is not None and state.lat is not None and state.since is not None \
                and not self._near_endpoint(trip, state.lon, state.lat):
            state.alerted = True
            alerts.append(Alert(trip.trip_id, "long_stop", ping.ts, state.lon, state.lat,
                                {"stopped_s": round(ping.ts - state.since), "since": format_ts(state.since)}))
        if speed_rules.speeding_step(trip.speeding, speed, ping.ts, cfg):
            alerts.append(Alert(trip.trip_id, "speeding", ping.ts, ping.lon, ping.lat,
                                {"speed_kmh": round((speed or 0) * 3.6), "since": format_ts(trip.speeding.since or 0)}))
        crash = trip.crash
        speed_rules.track_still(crash, ping.lon, ping.lat, ping.ts, ping.speed_mps, cfg)
        if speed_rules.crash_step(crash, ping.lon, ping.lat, ping.ts, ping.speed_mps, ping.accel_g,
                                  previous_speed, previous_ts, cfg):
            evidence: dict[str, object] = {"still_s": round(ping.ts - (crash.at or 0)),
                                           "since": format_ts(crash.at or 0)}
            if crash.speed_before is not None:
                evidence["speed_before_kmh"] = round(crash.speed_before * 3.6)
            alerts.append(Alert(trip.trip_id, "possible_crash", ping.ts, crash.lon, crash.lat, evidence))

    def _near_endpoint(self, trip: TripState, lon: float, lat: float) -> bool:
        radius = self.config.endpoint_radius_m
        return any(point is not None and haversine_m(lon, lat, point[0], point[1]) <= radius
                   for point in (trip.pickup, trip.dropoff))

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
