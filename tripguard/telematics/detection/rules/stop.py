"""long_stop: the vehicle stands within `stop_radius_m` of one spot for `stop_seconds`, away from
pickup and drop-off.

Built to survive real receivers (../shared/reference/gps_stops.md):
- The stop's centre is the low median of its latest `CENTRE_FIXES` fixes inside the circle, not its
  first fix: a wild first fix does not shift the circle, and fixes of the approach that fell inside it
  are soon outvoted by those of the stop. The centre never moves more than `stop_radius_m` from where
  it stood once it had `CENTRE_FIXES` fixes (its anchor), so it does not creep with a crawling vehicle.
- A fix outside the circle is only "away". The stop ends when the away fixes are confirmed
  (`common.confirmed`) and their own median lies outside the circle: one or two multipath jumps, or
  fixes scattered on all sides of the centre, never end it.
- On a confirmed departure the next candidate is formed from the last away fixes that lie together,
  so its `since` is when the vehicle really stopped, not when the departure was confirmed.
- The device's own word counts: a reported speed at or below `still_mps` (or `stationary: true`)
  keeps a fix up to `still_drift_m` away inside the stop; one at or above `moving_mps` (or
  `stationary: false`) makes a fix inside the circle an away fix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from tripguard.telematics.detection.contract import MonitorConfig
from tripguard.telematics.detection.rules.common import (
    NAN,
    confirmed,
    confirmed_rows,
    low_median,
    low_median_rows,
)
from tripguard.telematics.ingest.geo import haversine_m, haversine_rows

if TYPE_CHECKING:
    from tripguard.telematics.detection.fast_monitor import BatchMonitor

CENTRE_FIXES = 5


def away_slots(config: MonitorConfig) -> int:
    """How many away fixes a confirmation can need."""
    return max(2, int(np.ceil(config.confirm_fixes)))


@dataclass
class StopState:
    fixes: list[tuple[float, float]] = field(default_factory=list)  # the latest CENTRE_FIXES inside
    lon: float | None = None  # the centre
    lat: float | None = None
    since: float | None = None
    alerted: bool = False
    away: list[tuple[float, float, float]] = field(default_factory=list)  # (lon, lat, ts) since the last fix inside
    anchor: tuple[float, float] | None = None  # the centre when it first had CENTRE_FIXES fixes

    def start(self, group: list[tuple[float, float, float]]) -> None:
        self.fixes = [(lon, lat) for lon, lat, _ in group[-CENTRE_FIXES:]]
        self.lon, self.lat = self.fixes_centre()
        self.since, self.alerted, self.away = group[0][2], False, []
        self.anchor = self.fixes_centre() if len(self.fixes) == CENTRE_FIXES else None

    def fixes_centre(self) -> tuple[float, float]:
        return low_median([p[0] for p in self.fixes]), low_median([p[1] for p in self.fixes])

    def take_inside(self, lon: float, lat: float, radius: float) -> None:
        """A fix inside the circle refines the centre, within `radius` of the anchor."""
        self.fixes = [*self.fixes, (lon, lat)][-CENTRE_FIXES:]
        centre = self.fixes_centre()
        if self.anchor is None or haversine_m(*self.anchor, *centre) <= radius:
            self.lon, self.lat = centre
        if self.anchor is None and len(self.fixes) == CENTRE_FIXES:
            self.anchor = centre


def device_says(speed: float | None, stationary: bool | None, config: MonitorConfig) -> tuple[bool, bool]:
    """(standing, moving) by the device's own signals; both False when it sent none."""
    still = stationary is True or (speed is not None and speed <= config.still_mps)
    moving = stationary is False or (speed is not None and speed >= config.moving_mps)
    return still, moving


def step(state: StopState, lon: float, lat: float, ts: float, speed: float | None, stationary: bool | None,
         config: MonitorConfig) -> bool:
    """Take one trusted fix; True when the stop has lasted long enough to alert (if not at an endpoint)."""
    if state.since is None or state.lon is None or state.lat is None:
        state.start([(lon, lat, ts)])
        return False
    distance = haversine_m(state.lon, state.lat, lon, lat)
    still, moving = device_says(speed, stationary, config)
    radius = config.stop_radius_m
    if (distance <= radius and not moving) or (still and distance <= config.still_drift_m):
        state.away = []
        if distance <= radius:
            state.take_inside(lon, lat, radius)
        return not state.alerted and ts - state.since >= config.stop_seconds
    state.away.append((lon, lat, ts))
    away = state.away
    if not confirmed(len(away), away[0][2], ts, config):
        return False
    middle = (low_median([p[0] for p in away]), low_median([p[1] for p in away]))
    if haversine_m(state.lon, state.lat, *middle) <= radius:
        away.pop(0)  # scattered around the stop, not leaving it
        return False
    group = [away[-1]]
    for point in reversed(away[:-1]):
        if haversine_m(point[0], point[1], away[-1][0], away[-1][1]) > radius:
            break
        group.insert(0, point)
    state.start(group)
    return False


STOP_FLOATS = ("stop_lon", "stop_lat", "stop_since", "stop_anchor_lon", "stop_anchor_lat")
STOP_BOOLS = ("stop_alerted",)
STOP_INTS = ("stop_fixes", "stop_away")  # stop_fixes: every fix the centre took (the ring holds the last 5)
STOP_WIDE = {"stop_fx": CENTRE_FIXES, "stop_fy": CENTRE_FIXES}  # plus the away fixes, sized by the config


def stop_wide(config: MonitorConfig) -> dict[str, int]:
    slots = away_slots(config)
    return {**STOP_WIDE, "stop_ax": slots, "stop_ay": slots, "stop_at": slots}


def _start_rows(monitor: BatchMonitor, s: np.ndarray, gx: np.ndarray, gy: np.ndarray, gt: np.ndarray,
                count: np.ndarray) -> None:
    """`StopState.start` for many trips: group fixes in columns, left-aligned, `count` each."""
    f, i, w, b = monitor.f, monitor.i, monitor.w, monitor.b
    fx = np.full((len(s), CENTRE_FIXES), NAN)
    fy = np.full((len(s), CENTRE_FIXES), NAN)
    for j in range(gx.shape[1]):  # the group's latest CENTRE_FIXES fixes, each where the ring puts it
        held = (j < count) & (j >= count - CENTRE_FIXES)
        fx[held, j % CENTRE_FIXES], fy[held, j % CENTRE_FIXES] = gx[held, j], gy[held, j]
    w["stop_fx"][s], w["stop_fy"][s], i["stop_fixes"][s] = fx, fy, count
    kept = np.minimum(count, CENTRE_FIXES)
    f["stop_lon"][s], f["stop_lat"][s] = low_median_rows(fx, kept), low_median_rows(fy, kept)
    full = kept == CENTRE_FIXES
    f["stop_anchor_lon"][s] = np.where(full, f["stop_lon"][s], NAN)
    f["stop_anchor_lat"][s] = np.where(full, f["stop_lat"][s], NAN)
    f["stop_since"][s], b["stop_alerted"][s], i["stop_away"][s] = gt[:, 0], False, 0
    w["stop_ax"][s] = NAN
    w["stop_ay"][s] = NAN
    w["stop_at"][s] = NAN


def step_rows(monitor: BatchMonitor, s: np.ndarray, ts: np.ndarray, lon: np.ndarray, lat: np.ndarray,
              speed: np.ndarray, stationary: np.ndarray) -> np.ndarray:
    """`step` for many trips (each slot once); returns where a stop is due to alert."""
    config, f, i, b = monitor.config, monitor.f, monitor.i, monitor.b
    due = np.zeros(len(s), dtype=bool)
    since = f["stop_since"][s]
    new = np.isnan(since)
    if new.any():
        _start_rows(monitor, s[new], lon[new, None], lat[new, None], ts[new, None], np.ones(int(new.sum()), np.int64))
    distance = haversine_rows(f["stop_lon"][s], f["stop_lat"][s], lon, lat)
    with np.errstate(invalid="ignore"):
        still = (stationary == 1.0) | (speed <= config.still_mps)
        moving = (stationary == 0.0) | (speed >= config.moving_mps)
        in_circle = distance <= config.stop_radius_m
        inside = ~new & ((in_circle & ~moving) | (still & (distance <= config.still_drift_m)))
    if inside.any():
        rows = s[inside]
        i["stop_away"][rows] = 0
        grow = inside & in_circle
        if grow.any():
            _take_inside_rows(monitor, s[grow], lon[grow], lat[grow])
        due = inside & ~b["stop_alerted"][s] & (ts - since >= config.stop_seconds)
    away = ~new & ~inside
    if away.any():
        _away_rows(monitor, s[away], ts[away], lon[away], lat[away])
    return due


def _take_inside_rows(monitor: BatchMonitor, g: np.ndarray, lon: np.ndarray, lat: np.ndarray) -> None:
    """`StopState.take_inside` for many trips: the ring of the latest fixes, the centre within reach of the anchor."""
    f, i, w = monitor.f, monitor.i, monitor.w
    n = i["stop_fixes"][g]
    w["stop_fx"][g, n % CENTRE_FIXES], w["stop_fy"][g, n % CENTRE_FIXES] = lon, lat
    i["stop_fixes"][g] = n + 1
    held = np.minimum(n + 1, CENTRE_FIXES)
    centre_lon, centre_lat = low_median_rows(w["stop_fx"][g], held), low_median_rows(w["stop_fy"][g], held)
    anchor_lon, anchor_lat = f["stop_anchor_lon"][g], f["stop_anchor_lat"][g]
    free = np.isnan(anchor_lon)
    with np.errstate(invalid="ignore"):
        moves = free | (haversine_rows(anchor_lon, anchor_lat, centre_lon, centre_lat) <= monitor.config.stop_radius_m)
    f["stop_lon"][g[moves]], f["stop_lat"][g[moves]] = centre_lon[moves], centre_lat[moves]
    anchored = free & (held == CENTRE_FIXES)
    f["stop_anchor_lon"][g[anchored]] = f["stop_lon"][g[anchored]]
    f["stop_anchor_lat"][g[anchored]] = f["stop_lat"][g[anchored]]


def _away_rows(monitor: BatchMonitor, s: np.ndarray, ts: np.ndarray, lon: np.ndarray, lat: np.ndarray) -> None:
    config, f, i, w = monitor.config, monitor.f, monitor.i, monitor.w
    n = i["stop_away"][s]
    w["stop_ax"][s, n], w["stop_ay"][s, n], w["stop_at"][s, n] = lon, lat, ts
    n = n + 1
    i["stop_away"][s] = n
    ax, ay, at = w["stop_ax"][s], w["stop_ay"][s], w["stop_at"][s]
    ready = confirmed_rows(n, at[:, 0], ts, config)
    if not ready.any():
        return
    s, n, ax, ay, at, lon, lat = s[ready], n[ready], ax[ready], ay[ready], at[ready], lon[ready], lat[ready]
    middle = haversine_rows(f["stop_lon"][s], f["stop_lat"][s], low_median_rows(ax, n), low_median_rows(ay, n))
    scattered = middle <= config.stop_radius_m
    if scattered.any():  # drop the oldest away fix
        rows = s[scattered]
        for column in ("stop_ax", "stop_ay", "stop_at"):
            shifted = np.full((len(rows), w[column].shape[1]), NAN)
            shifted[:, :-1] = w[column][rows, 1:]
            w[column][rows] = shifted
        i["stop_away"][rows] = n[scattered] - 1
    leaving = ~scattered
    if not leaving.any():
        return
    s, n, ax, ay = s[leaving], n[leaving], ax[leaving], ay[leaving]
    at, lon, lat = at[leaving], lon[leaving], lat[leaving]
    # The group: the last away fix and the ones just before it within the radius, unbroken.
    rows = np.arange(len(s))
    first = n - 1
    chained = np.ones(len(s), dtype=bool)
    for back in range(2, ax.shape[1] + 1):
        k = n - back
        valid = chained & (k >= 0)
        kk = np.maximum(k, 0)
        near = haversine_rows(ax[rows, kk], ay[rows, kk], lon, lat) <= config.stop_radius_m
        chained = valid & near
        first = np.where(chained, k, first)
    count = n - first
    take = np.minimum(first[:, None] + np.arange(ax.shape[1]), ax.shape[1] - 1)
    mask = np.arange(ax.shape[1]) < count[:, None]
    gx = np.where(mask, ax[rows[:, None], take], NAN)
    gy = np.where(mask, ay[rows[:, None], take], NAN)
    gt = np.where(mask, at[rows[:, None], take], NAN)
    _start_rows(monitor, s, gx, gy, gt, count)
