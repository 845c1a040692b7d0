"""speeding and possible_crash: the rules on speed.

- speeding: above `speed_limit_mps` for `speeding_seconds`, started and ended only when confirmed
  (`common.Held`), so one implausible speed between two noisy fixes neither starts nor ends it.
- possible_crash: the reported speed falls from `crash_from_mps` to `crash_to_mps` within
  `crash_within_s` (or the device reports `crash_g`), then the vehicle stays still for
  `crash_still_seconds`. It "drove on" only when confirmed: fixes outside `stop_radius_m` of the crash
  whose reported speed (if any) is above `crash_to_mps`. Speeds computed from 15-s positions cannot
  show a crash; devices must send `speed_mps` or `accel_g` for this rule.
  Fixes arrive late (up to 20 s under urban noise), so the sharp stop is also looked for when a late
  fix is one side of it: a late still fix dated just after the fix before it (`late_crash_step`), or
  a late fast fix dated just before the first fix of the stillness that followed it (the trip keeps
  where and when its current run of still fixes began).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from tripguard.telematics.detection.contract import MonitorConfig
from tripguard.telematics.detection.rules.common import (
    NAN,
    Held,
    confirmed,
    confirmed_rows,
    held_rows,
)
from tripguard.telematics.ingest.geo import haversine_m, haversine_rows

if TYPE_CHECKING:
    from tripguard.telematics.detection.fast_monitor import BatchMonitor


def speeding_step(held: Held, speed: float | None, ts: float, config: MonitorConfig) -> bool:
    over = speed is not None and speed > config.speed_limit_mps
    held.update(over, ts, config)
    return held.fires(over, ts, config.speeding_seconds)


def speeding_rows(monitor: BatchMonitor, s: np.ndarray, ts: np.ndarray, speed: np.ndarray,
                  ) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(invalid="ignore"):
        over = speed > monitor.config.speed_limit_mps  # NaN (no speed) compares False
    return held_rows(monitor, "speeding", s, ts, over, monitor.config.speeding_seconds)


@dataclass
class CrashState:
    at: float | None = None
    lon: float = NAN
    lat: float = NAN
    speed_before: float | None = None
    alerted: bool = False
    moves: int = 0  # fixes in a row away from the crash
    move_since: float = NAN
    still_since: float = NAN  # the first of the current run of trusted fixes reporting no speed to speak of
    still_lon: float = NAN
    still_lat: float = NAN


def track_still(state: CrashState, lon: float, lat: float, ts: float, reported: float | None,
                config: MonitorConfig) -> None:
    """Take one trusted fix, in order: where and when the current run of still fixes began."""
    if reported is not None and reported <= config.crash_to_mps:
        if math.isnan(state.still_since):  # no run yet
            state.still_since, state.still_lon, state.still_lat = ts, lon, lat
    else:
        state.still_since = NAN


def crash_step(state: CrashState, lon: float, lat: float, ts: float, reported: float | None, accel: float | None,
               previous_speed: float | None, previous_ts: float | None, config: MonitorConfig) -> bool:
    """Take one trusted fix; True when a possible crash alerts now."""
    if state.at is None:
        sharp_stop = (reported is not None and previous_speed is not None and previous_ts is not None
                      and previous_speed >= config.crash_from_mps and reported <= config.crash_to_mps
                      and ts - previous_ts <= config.crash_within_s)
        if sharp_stop or (accel is not None and accel >= config.crash_g):
            state.at, state.lon, state.lat, state.speed_before = ts, lon, lat, previous_speed
            state.moves = 0
        return False
    moved = haversine_m(state.lon, state.lat, lon, lat) > config.stop_radius_m and \
        not (reported is not None and reported <= config.crash_to_mps)
    if moved:
        if state.moves == 0:
            state.move_since = ts
        state.moves += 1
        if confirmed(state.moves, state.move_since, ts, config):
            state.at, state.moves = None, 0  # it drove on
        return False
    state.moves = 0
    if not state.alerted and ts - state.at >= config.crash_still_seconds:
        state.alerted = True
        return True
    return False


def late_crash_step(state: CrashState, lon: float, lat: float, ts: float, reported: float | None,
                    accel: float | None, prior_speed: float | None, prior_ts: float | None,
                    config: MonitorConfig) -> None:
    """A fix that arrived late: it is no position any more, but it may be one side of the sharp stop.
    Dated between the last two trusted fixes, it may be the stop itself; reporting a speed of
    `crash_from_mps` or more just before the current run of still fixes began, the speed before it."""
    if state.at is not None:
        return
    if prior_ts is not None and prior_ts < ts:
        crash_step(state, lon, lat, ts, reported, accel, prior_speed, prior_ts, config)
    if state.at is None and reported is not None and reported >= config.crash_from_mps \
            and ts < state.still_since <= ts + config.crash_within_s:
        state.at, state.lon, state.lat = state.still_since, state.still_lon, state.still_lat
        state.speed_before = reported
        state.moves = 0


CRASH_FLOATS = ("crash_at", "crash_lon", "crash_lat", "crash_from", "crash_move_since", "still_since", "still_lon",
                "still_lat")
CRASH_BOOLS = ("crash_alerted",)
CRASH_INTS = ("crash_moves",)


def late_crash_rows(monitor: BatchMonitor, s: np.ndarray, ts: np.ndarray, lon: np.ndarray, lat: np.ndarray,
                    reported: np.ndarray, accel: np.ndarray) -> None:
    """`late_crash_step` for many trips (fixes already known to be late and dated before the last trusted one)."""
    f, i, config = monitor.f, monitor.i, monitor.config
    prior_ts = f["prior_ts"][s]
    with np.errstate(invalid="ignore"):
        after = prior_ts < ts
    idle = np.isnan(f["crash_at"][s]) & after
    if idle.any():
        crash_rows(monitor, s[idle], ts[idle], lon[idle], lat[idle], reported[idle], accel[idle],
                   f["prior_speed"][s[idle]], f["prior_ts"][s[idle]])
    since = f["still_since"][s]
    with np.errstate(invalid="ignore"):
        before_still = np.isnan(f["crash_at"][s]) & (reported >= config.crash_from_mps) & (ts < since) \
            & (since <= ts + config.crash_within_s)
    hit = s[before_still]
    f["crash_at"][hit], f["crash_lon"][hit], f["crash_lat"][hit] = since[before_still], f["still_lon"][hit], \
        f["still_lat"][hit]
    f["crash_from"][hit], i["crash_moves"][hit] = reported[before_still], 0


def still_rows(monitor: BatchMonitor, s: np.ndarray, ts: np.ndarray, lon: np.ndarray, lat: np.ndarray,
               reported: np.ndarray) -> None:
    """`track_still` for many trips."""
    f = monitor.f
    with np.errstate(invalid="ignore"):
        still = reported <= monitor.config.crash_to_mps  # NaN (no speed) compares False
    begins = still & np.isnan(f["still_since"][s])
    hit = s[begins]
    f["still_since"][hit], f["still_lon"][hit], f["still_lat"][hit] = ts[begins], lon[begins], lat[begins]
    f["still_since"][s[~still]] = NAN


def crash_rows(monitor: BatchMonitor, s: np.ndarray, ts: np.ndarray, lon: np.ndarray, lat: np.ndarray,
               reported: np.ndarray, accel: np.ndarray, previous_speed: np.ndarray, previous_ts: np.ndarray,
               ) -> np.ndarray:
    """`crash_step` for many trips; where a possible crash alerts now."""
    config, f, b, i = monitor.config, monitor.f, monitor.b, monitor.i
    crash_at = f["crash_at"][s]
    idle = np.isnan(crash_at)
    with np.errstate(invalid="ignore"):
        sharp = (previous_speed >= config.crash_from_mps) & (reported <= config.crash_to_mps) & \
            (ts - previous_ts <= config.crash_within_s)
        trigger = idle & (sharp | (accel >= config.crash_g))
    hit = s[trigger]
    f["crash_at"][hit], f["crash_lon"][hit], f["crash_lat"][hit] = ts[trigger], lon[trigger], lat[trigger]
    f["crash_from"][hit], i["crash_moves"][hit] = previous_speed[trigger], 0
    watching = ~idle
    fire: np.ndarray = np.zeros(len(s), dtype=bool)
    if not watching.any():
        return fire
    with np.errstate(invalid="ignore"):
        moved = watching & (haversine_rows(f["crash_lon"][s], f["crash_lat"][s], lon, lat) > config.stop_radius_m) \
            & ~(reported <= config.crash_to_mps)
    moves = i["crash_moves"][s]
    move_since = np.where(moved & (moves == 0), ts, f["crash_move_since"][s])
    moves = np.where(moved, moves + 1, 0)
    drove_on = moved & confirmed_rows(moves, move_since, ts, config)
    f["crash_move_since"][s] = move_since
    i["crash_moves"][s] = np.where(drove_on, 0, moves)
    f["crash_at"][s[drove_on]] = NAN
    fire = watching & ~moved & ~b["crash_alerted"][s] & (ts - crash_at >= config.crash_still_seconds)
    b["crash_alerted"][s[fire]] = True
    return fire
