"""The batched trip monitor: the reference monitor's rules, per-trip state in numpy columns.

Same alerts as `monitor.Monitor` for the same events (a hypothesis property test holds the two
equal); built for throughput. A batch is cut into runs of consecutive pings; trip starts, ends and
heartbeats between runs are handled one by one, as in the reference. Within a run, the pings of
each trip are taken in "rounds": round r holds every trip's r-th ping, so one vectorised step
updates thousands of trips at once and a trip's own pings still go in stream order.

Silence needs the stream's watermark as it stood at each event. The running maximum of event
time over the run (`R`) gives it without a loop: a trip's silence deadline was passed before its
next ping iff the watermark rose in between to at least the deadline.

Route distance looks at a window of segments around the trip's progress along its route; only a
position outside the deviation threshold in that window is measured against the whole route (the
reference's own computation), so the on/off-route decision and the evidence are exact.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from itertools import repeat

import numpy as np

from tripguard.telematics.detection.contract import Alert, MonitorConfig
from tripguard.telematics.detection.rules import ending, plan
from tripguard.telematics.detection.rules import route as route_rule
from tripguard.telematics.detection.rules import speed as speed_rules
from tripguard.telematics.detection.rules import stop as stop_rule
from tripguard.telematics.detection.rules.common import held_columns
from tripguard.telematics.ingest.columns import EventColumns, optional
from tripguard.telematics.ingest.events import (
    DeviceHeartbeat,
    Event,
    TripEnded,
    format_ts,
)
from tripguard.telematics.ingest.geo import haversine_rows

NAN = float("nan")
_DEV, _SPEEDING = held_columns("dev"), held_columns("speeding")
_FLOAT_COLUMNS = ("last_ts", "pos_ts", "lon", "lat", "speed", "prior_ts", "prior_speed", "silence_for",
                  "pickup_lon", "pickup_lat", "dropoff_lon", "dropoff_lat", "lon0", "lat0", "kx",
                  *stop_rule.STOP_FLOATS, *speed_rules.CRASH_FLOATS, *_DEV[0], *_SPEEDING[0])
_BOOL_COLUMNS = ("started", "has_last", "has_pos", "has_route", *stop_rule.STOP_BOOLS, *speed_rules.CRASH_BOOLS,
                 *_DEV[1], *_SPEEDING[1])
_INT_COLUMNS = ("seg", "route_at", "route_len", "recent_n", *stop_rule.STOP_INTS, *speed_rules.CRASH_INTS, *_DEV[2],
                *_SPEEDING[2])


class BatchMonitor:
    def __init__(self, config: MonitorConfig | None = None, capacity: int = 1024, points: int = 4096) -> None:
        self.config = config or MonitorConfig()
        self.max_ts = float("-inf")
        self.slot_of: dict[str, int] = {}
        self.trip_of: list[str | None] = [None] * capacity
        self.vehicle_of: list[str | None] = [None] * capacity
        self._free: list[int] = list(range(capacity - 1, -1, -1))
        # Per-trip state: one table per type, a row per field (f["lon"] is a view of its row), so a slot
        # is cleared with one assignment per table.
        self._tables = [np.full((len(_FLOAT_COLUMNS), capacity), NAN), np.zeros((len(_BOOL_COLUMNS), capacity), bool),
                        np.zeros((len(_INT_COLUMNS), capacity), np.int64)]
        self.f: dict[str, np.ndarray] = {}
        self.b: dict[str, np.ndarray] = {}
        self.i: dict[str, np.ndarray] = {}
        self._name_rows()
        # A few fixes per trip: the stop's centre and away fixes, the last positions.
        wide = {**stop_rule.stop_wide(self.config), "recent_x": ending.RECENT, "recent_y": ending.RECENT}
        self._widths = wide
        self._wide = np.full((capacity, sum(wide.values())), NAN)  # w["x"] is a view of its columns
        self.w: dict[str, np.ndarray] = {}
        self._name_wide()
        self._set_at = np.zeros(capacity, dtype=np.int64)  # per run: k + 1 of the event that last set last_ts
        # Every live route's points, back to back (rows x, y in metres in the trip's frame): a trip's route_len
        # segments are its route_len + 1 points from route_at.
        self._point_floor = points
        self.points = np.zeros((2, points))
        self.points_used = 0
        # The earliest silence deadline of any trip not yet reported (a lower bound): the watermark
        # check scans the trips only once the watermark reaches it.
        self._next_deadline = float("inf")
        self._heartbeats: dict[str, tuple[float, str]] = {}
        self._device_deadlines: list[tuple[float, str, float]] = []
        self._device_alerted: set[tuple[str, float]] = set()
        self._ended: dict[str, None] = {}
        self.ended_memory = 100_000

    # Pickled for a shard's checkpoint (scale-out): the named views are made again from their tables.
    def __getstate__(self) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items() if k not in ("f", "b", "i", "w")}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self.f, self.b, self.i, self.w = {}, {}, {}, {}
        self._name_rows()
        self._name_wide()

    def position(self, trip_id: str) -> tuple[float, float, float] | None:
        """The trip's last trusted position and its time, if it is under way and has one."""
        slot = self.slot_of.get(trip_id)
        if slot is None or not self.b["has_pos"][slot]:
            return None
        return float(self.f["lon"][slot]), float(self.f["lat"][slot]), float(self.f["pos_ts"][slot])

    def remember_ended(self, trip_ids: list[str]) -> None:
        """Trips known to have ended (after a restart): their re-sent events are ignored."""
        for trip_id in trip_ids:
            self._ended[trip_id] = None
        while len(self._ended) > self.ended_memory:
            del self._ended[next(iter(self._ended))]

    # -- slots ------------------------------------------------------------------------------------
    def _name_rows(self) -> None:
        for columns, table, names in zip((self.f, self.b, self.i), self._tables,
                                         (_FLOAT_COLUMNS, _BOOL_COLUMNS, _INT_COLUMNS), strict=True):
            columns.update((name, table[k]) for k, name in enumerate(names))

    def _name_wide(self) -> None:
        at = 0
        for name, width in self._widths.items():
            self.w[name] = self._wide[:, at:at + width]
            at += width

    def _grow(self) -> None:
        old = len(self.trip_of)
        new = old * 2
        for k, (table, fill) in enumerate(zip(self._tables, (NAN, False, 0), strict=True)):
            grown = np.full((table.shape[0], new), fill, dtype=table.dtype)
            grown[:, :old] = table
            self._tables[k] = grown
        self._name_rows()
        grown_wide = np.full((new, self._wide.shape[1]), NAN)
        grown_wide[:old] = self._wide
        self._wide = grown_wide
        self._name_wide()
        grown_set_at = np.zeros(new, dtype=np.int64)
        grown_set_at[:old] = self._set_at
        self._set_at = grown_set_at
        self.trip_of.extend([None] * old)
        self.vehicle_of.extend([None] * old)
        self._free.extend(range(new - 1, old - 1, -1))

    def _clear(self, slots: int | np.ndarray) -> None:
        floats, bools, ints = self._tables
        floats[:, slots] = NAN
        bools[:, slots] = False
        ints[:, slots] = 0
        self._wide[slots] = NAN
        self._set_at[slots] = 0
        for slot in np.atleast_1d(slots).tolist():
            self.vehicle_of[slot] = None

    def _allocate(self, trip_id: str) -> int:
        return int(self._allocate_many([trip_id])[0])

    def _allocate_many(self, trip_ids: list[str]) -> np.ndarray:
        """A fresh slot for each of these trips (none of them holds one)."""
        while len(self._free) < len(trip_ids):
            self._grow()
        free = self._free
        slots = free[len(free) - len(trip_ids):]
        del free[len(free) - len(trip_ids):]
        as_array = np.array(slots, dtype=np.int64)
        self._clear(as_array)
        self.slot_of.update(zip(trip_ids, slots, strict=True))
        for trip_id, slot in zip(trip_ids, slots, strict=True):
            self.trip_of[slot] = trip_id
        return as_array

    def _release_many(self, trip_ids: list[str]) -> None:
        slots = [self.slot_of.pop(trip_id) for trip_id in trip_ids]
        for slot in slots:
            self.trip_of[slot] = None
        self._clear(np.array(slots, dtype=np.int64))
        self._free.extend(slots)

    def store_routes(self, slots: np.ndarray, points: np.ndarray, lengths: np.ndarray) -> None:
        """Routes' points (as `geo.route_points` gives them, with each route's count of segments) into the
        shared array. Call it before the slots are marked `has_route`: a compaction on the way must not copy
        them twice."""
        count = points.shape[1]
        if self.points_used + count > self.points.shape[1]:
            self._compact_points(extra=count)
        at = self.points_used
        self.points[:, at:at + count] = points
        self.points_used += count
        self.i["route_at"][slots] = at + np.r_[0, np.cumsum(lengths + 1)[:-1]]
        self.i["route_len"][slots] = lengths

    def _compact_points(self, extra: int) -> None:
        """The live routes' points into a new array, back to back, with a quarter more room than they and `extra`
        need (ended trips' routes are left behind until the next compaction)."""
        live = np.flatnonzero(self.b["has_route"])  # a slot is cleared when its trip ends
        at, sizes = self.i["route_at"][live], self.i["route_len"][live] + 1
        total = int(sizes.sum())
        offsets = np.r_[0, np.cumsum(sizes)[:-1]].astype(np.int64)
        old = self.points
        self.points = np.zeros((2, max(self._point_floor, (total + extra) * 5 // 4)))
        self.points[:, :total] = np.take(old, np.repeat(at - offsets, sizes) + np.arange(total), axis=1)
        self.i["route_at"][live] = offsets
        self.points_used = total

    # -- events -----------------------------------------------------------------------------------
    def process(self, events: Sequence[Event]) -> list[Alert]:
        """A batch of events in stream order (see `process_columns`)."""
        return self.process_columns(EventColumns.of(events))

    def process_columns(self, columns: EventColumns) -> list[Alert]:
        """A batch in stream order. Heartbeats are taken one by one; everything between two heartbeats
        is one run, trip starts and ends included, each trip's events in their order."""
        alerts: list[Alert] = []
        beats = sorted(k for k, e in columns.others.items() if isinstance(e, DeviceHeartbeat))
        start = 0
        for stop in [*beats, len(columns)]:
            if stop > start:
                self._run(columns if (start, stop) == (0, len(columns)) else columns.slice(start, stop), alerts)
            if stop < len(columns):
                self._heartbeat(columns.others[stop], alerts)  # type: ignore[arg-type]
            start = stop + 1
        return alerts

    def _heartbeat(self, event: DeviceHeartbeat, alerts: list[Alert]) -> None:
        self._heartbeats[event.vehicle_id] = (event.ts, event.device_id)
        heapq.heappush(self._device_deadlines,
                       (event.ts + self.config.device_silence_seconds, event.vehicle_id, event.ts))
        if event.ts > self.max_ts:
            self.max_ts = event.ts
            self._check_silence(alerts)

    def _run(self, columns: EventColumns, alerts: list[Alert]) -> None:
        kept = self._drop_ended(columns)
        if kept is not None:
            columns = columns.take(kept)
        while len(columns):
            split = self._device_due_at(np.maximum.accumulate(columns.ts))
            if split is None or split >= len(columns) - 1:
                self._core(columns, alerts)
                return
            # A device deadline is passed inside the run: stop there, so the trips it reports are the
            # trips of that moment, then go on.
            self._core(columns.slice(0, split + 1), alerts)
            columns = columns.slice(split + 1, len(columns))

    def _drop_ended(self, columns: EventColumns) -> np.ndarray | None:
        """What the reference would look at: nothing of a trip after it ended (not even its time).
        None when every event stays (the common case, checked without a loop)."""
        ended, known = self._ended, self.slot_of
        ends = {k for k, e in columns.others.items() if isinstance(e, TripEnded)}
        trip_ids = columns.trip_ids
        affected = {trip_ids[k] for k in ends}
        if ended:
            affected |= ended.keys() & set(columns.trip_groups()[1])
        if not affected:
            return None
        groups, names = columns.trip_groups()
        ended_now: set[str] = set()
        seen: set[str] = set()
        dropped = []
        concerned = np.array([n for n, name in enumerate(names) if name in affected], dtype=np.int64)
        for k in np.flatnonzero(np.isin(groups, concerned)).tolist():  # only the trips an end concerns
            trip_id = trip_ids[k]
            if trip_id in ended or trip_id in ended_now:
                dropped.append(k)
            elif k in ends:
                if trip_id in known or trip_id in seen:
                    ended_now.add(trip_id)
            else:
                seen.add(trip_id)
        return np.delete(np.arange(len(trip_ids)), dropped) if dropped else None

    def _device_due_at(self, running_max: np.ndarray) -> int | None:
        """The run's event at which the watermark passes a live heartbeat deadline, if any."""
        heap = self._device_deadlines
        while heap:
            _, vehicle_id, beat_ts = heap[0]
            last = self._heartbeats.get(vehicle_id)
            if last is None or last[0] != beat_ts or (vehicle_id, beat_ts) in self._device_alerted:
                heapq.heappop(heap)  # stale: the reference would skip it when its time came
                continue
            break
        if not heap:
            return None
        target = heap[0][0] + self.config.lateness_seconds
        running = np.maximum(running_max, self.max_ts)
        if self.max_ts >= target:  # due already, waiting for the watermark to move at all
            index = int(np.searchsorted(running, self.max_ts, side="right"))
        else:
            index = int(np.searchsorted(running, target, side="left"))
        return index if index < len(running) else None

    def _gps_lost(self, slot: int, trip_id: str, last_ts: float) -> Alert:
        silent = self.config.gps_lost_seconds
        return Alert(trip_id, "gps_lost", last_ts + silent,
                     optional(self.f["lon"][slot]), optional(self.f["lat"][slot]),
                     {"silent_s": round(silent), "since": format_ts(last_ts)})

    def _check_silence(self, alerts: list[Alert], *, set_at: np.ndarray | None = None,
                       raised_since: np.ndarray | None = None) -> None:
        """Report what the watermark has passed. After a run, a last_ts set inside it counts only if the
        watermark rose after the ping that set it (`set_at` gives its position, `raised_since` the test):
        until then the reference has not looked."""
        watermark = self.max_ts - self.config.lateness_seconds
        if watermark >= self._next_deadline:
            f, b = self.f, self.b
            last_ts = f["last_ts"]
            deadline = last_ts + self.config.gps_lost_seconds
            pending = b["has_last"] & (f["silence_for"] != last_ts)
            due = pending & (deadline <= watermark)
            if raised_since is not None and set_at is not None:
                due &= raised_since[set_at[:len(due)]]
            for slot in np.flatnonzero(due).tolist():
                f["silence_for"][slot] = last_ts[slot]
                alerts.append(self._gps_lost(slot, self.trip_of[slot], float(last_ts[slot])))  # type: ignore[arg-type]
            pending &= ~due
            self._next_deadline = float(deadline[pending].min()) if pending.any() else float("inf")
        if raised_since is not None and not raised_since[0]:
            return  # heartbeat deadlines were all pushed before the run: the watermark never rose
        while self._device_deadlines and self._device_deadlines[0][0] <= watermark:
            _, vehicle_id, beat_ts = heapq.heappop(self._device_deadlines)
            last = self._heartbeats.get(vehicle_id)
            if last is None or last[0] != beat_ts or (vehicle_id, beat_ts) in self._device_alerted:
                continue
            silent = self.config.device_silence_seconds
            for trip_id, slot in self.slot_of.items():
                if self.vehicle_of[slot] == vehicle_id:
                    self._device_alerted.add((vehicle_id, beat_ts))
                    alerts.append(Alert(trip_id, "device_offline", beat_ts + silent, None, None,
                                        {"device_id": last[1], "silent_s": round(silent),
                                         "since": format_ts(beat_ts)}))

    # -- the vectorised run ------------------------------------------------------------------------
    def _running(self, ts: np.ndarray) -> np.ndarray:
        """R[k]: the highest event time seen before the run's k-th event (R[0]: before the run)."""
        self._set_at.fill(0)
        running = np.empty(len(ts) + 1)
        running[0] = self.max_ts
        running[1:] = ts
        return np.maximum.accumulate(running, out=running)

    @staticmethod
    def _rounds(groups: np.ndarray) -> list[np.ndarray]:
        """Positions of each group's r-th event, for r = 0, 1, ...: each round in stream order."""
        n = len(groups)
        order = np.argsort(groups, kind="stable")
        sorted_groups = groups[order]
        group_start = np.flatnonzero(np.r_[True, sorted_groups[1:] != sorted_groups[:-1]])
        rank = np.arange(n) - np.repeat(group_start, np.diff(np.r_[group_start, n]))
        by_rank = order[np.argsort(rank, kind="stable")]
        bounds = np.searchsorted(np.sort(rank), np.arange(int(rank.max()) + 2))
        return [np.sort(by_rank[bounds[r]:bounds[r + 1]]) for r in range(len(bounds) - 1)]

    def _finish_run(self, running: np.ndarray, alerts: list[Alert]) -> None:
        self.max_ts = float(running[-1])
        fresh = self._set_at > 0
        if fresh.any():
            deadlines = self.f["last_ts"][fresh] + self.config.gps_lost_seconds
            self._next_deadline = min(self._next_deadline, float(deadlines.min()))
        self._check_silence(alerts, set_at=self._set_at, raised_since=running[-1] > running)

    def _core(self, columns: EventColumns, alerts: list[Alert]) -> None:
        """One run: starts, pings and ends of many trips, each trip's own events in order."""
        m = len(columns)
        trip_ids, others = columns.trip_ids, columns.others
        if not others and columns.starts is None:  # the live case: pings of known trips, one each, is a single round
            slots = np.fromiter(map(self.slot_of.get, trip_ids, repeat(-1)), dtype=np.int64, count=m)
            if slots.min() >= 0 and np.bincount(slots).max() == 1:
                running = self._running(columns.ts)
                self._round(columns, np.arange(m), slots, running, alerts)
                self._finish_run(running, alerts)
                return
        group, names = columns.trip_groups()  # each trip a number
        is_ping = np.ones(m, dtype=bool)
        if others:
            is_ping[np.fromiter(others, dtype=np.int64, count=len(others))] = False
        if columns.starts is not None:
            is_ping[columns.starts.at] = False
        running = self._running(columns.ts)
        one_each = np.bincount(group, minlength=len(names)).max() <= 1
        rounds = [np.arange(m)] if one_each else self._rounds(group)
        slot_of = self.slot_of
        # Each trip's slot, looked up once per run; -1 until known (a start or an end changes it).
        code_slot = np.fromiter((slot_of.get(t, -1) for t in names), dtype=np.int64, count=len(names))
        all_pings = is_ping.all()
        for positions in rounds:
            pings = positions if all_pings else positions[is_ping[positions]]
            if len(pings) < len(positions):
                starts_ends = positions[~is_ping[positions]]
                self._starts_and_ends(starts_ends, columns, running, alerts)
                for k in starts_ends.tolist():
                    code_slot[group[k]] = slot_of.get(trip_ids[k], -1)  # a start's or an end's trip
            if len(pings):
                slots = code_slot[group[pings]]
                missing = slots < 0
                if missing.any():  # a trip first heard of by a ping: it gets a slot now
                    for k in pings[missing].tolist():
                        if code_slot[group[k]] < 0:
                            code_slot[group[k]] = self._allocate(trip_ids[k])
                    slots = code_slot[group[pings]]
                self._round(columns, pings, slots, running, alerts)
        self._finish_run(running, alerts)

    def _starts_and_ends(self, positions: np.ndarray, columns: EventColumns, running: np.ndarray,
                         alerts: list[Alert]) -> None:
        """A round's trip starts and ends (each of another trip): the silence check the reference makes
        before taking each, then the starts together, then the ends together."""
        trip_ids, others = columns.trip_ids, columns.others
        slots = np.fromiter((self.slot_of.get(trip_ids[k], -1) for k in positions.tolist()),
                            dtype=np.int64, count=len(positions))
        known = slots >= 0
        if known.any():
            self._silence_before(slots[known], positions[known], running, alerts)
        plan.start_rows(self, plan.round_plans(positions, columns), columns.ts)
        ending.end_rows(self, [e for k in positions.tolist() if isinstance(e := others.get(k), TripEnded)], alerts)

    def _silence_before(self, slots: np.ndarray, positions: np.ndarray, running: np.ndarray,
                        alerts: list[Alert]) -> None:
        """The check in `_round`, for trips about to start again or end."""
        f, cfg = self.f, self.config
        prev = f["last_ts"][slots]
        before = running[positions]
        due = (self.b["has_last"][slots] & (f["silence_for"][slots] != prev) & (before > running[self._set_at[slots]])
               & (before - cfg.lateness_seconds >= prev + cfg.gps_lost_seconds))
        for slot, last in zip(slots[due].tolist(), prev[due].tolist(), strict=True):
            f["silence_for"][slot] = last
            alerts.append(self._gps_lost(slot, self.trip_of[slot], last))

    def _round(self, batch: EventColumns, j: np.ndarray, s: np.ndarray, running: np.ndarray,
               alerts: list[Alert]) -> None:
        cfg, f, b, set_at = self.config, self.f, self.b, self._set_at
        ts = batch.ts[j]
        has_last, prev = b["has_last"][s], f["last_ts"][s]

        # Silence passed by the watermark before this ping: the watermark rose after the ping that set
        # last_ts, to at least the deadline (the heap entry the reference would have popped).
        before = running[j]
        due = has_last & (f["silence_for"][s] != prev) & (before > running[set_at[s]]) & \
            (before - cfg.lateness_seconds >= prev + cfg.gps_lost_seconds)
        for k in np.flatnonzero(due).tolist():
            slot = int(s[k])
            alerts.append(self._gps_lost(slot, self.trip_of[slot], float(prev[k])))  # type: ignore[arg-type]
            f["silence_for"][slot] = prev[k]

        keep = ~(has_last & b["has_pos"][s] & (ts <= prev))  # a duplicate or out of order: covered
        if not keep.all():
            with np.errstate(invalid="ignore"):
                late = ~keep & (ts < f["pos_ts"][s]) & ~(batch.accuracy[j] > cfg.max_accuracy_m)
            if late.any():
                jl = j[late]
                speed_rules.late_crash_rows(self, s[late], ts[late], batch.lon[jl], batch.lat[jl], batch.speed[jl],
                                            batch.accel[jl])
            j, s, ts, prev, has_last = j[keep], s[keep], ts[keep], prev[keep], has_last[keep]
        if j.size == 0:
            return
        resumed = has_last & (ts - prev >= cfg.gps_lost_seconds) & (f["silence_for"][s] != prev) & b["has_pos"][s]
        for k in np.flatnonzero(resumed).tolist():
            slot = int(s[k])
            alerts.append(self._gps_lost(slot, self.trip_of[slot], float(prev[k])))  # type: ignore[arg-type]
            f["silence_for"][slot] = prev[k]
        f["last_ts"][s], b["has_last"][s] = ts, True
        set_at[s] = j + 1

        bad = batch.accuracy[j] > cfg.max_accuracy_m  # NaN (not sent) compares False
        if bad.any():
            j, s, ts = j[~bad], s[~bad], ts[~bad]
            if j.size == 0:
                return
        lon, lat = batch.lon[j], batch.lat[j]
        has_pos = b["has_pos"][s]
        pos_ts = f["pos_ts"][s]
        dt = ts - pos_ts
        moved = haversine_rows(f["lon"][s], f["lat"][s], lon, lat)
        with np.errstate(invalid="ignore", divide="ignore"):
            rate = moved / dt
        glitch = has_pos & (dt > 0) & (rate > cfg.max_plausible_mps)
        if glitch.any():
            ok = ~glitch
            j, s, ts, lon, lat = j[ok], s[ok], ts[ok], lon[ok], lat[ok]
            has_pos, pos_ts, dt, rate = has_pos[ok], pos_ts[ok], dt[ok], rate[ok]
            if j.size == 0:
                return
        reported = batch.speed[j]
        speed_now = np.where(np.isnan(reported), np.where(has_pos & (dt > 0) & (dt <= 60), rate, NAN), reported)
        previous_speed, previous_ts = f["speed"][s], pos_ts
        f["prior_speed"][s], f["prior_ts"][s] = previous_speed, previous_ts
        f["lon"][s], f["lat"][s], f["pos_ts"][s], f["speed"][s] = lon, lat, ts, speed_now
        b["has_pos"][s] = True
        ending.remember_rows(self, s, lon, lat)

        self._deviation(s, ts, lon, lat, alerts)
        self._stop(s, ts, lon, lat, reported, batch.stationary[j], alerts)
        self._speeding(s, ts, lon, lat, speed_now, alerts)
        self._crash(s, ts, lon, lat, reported, batch.accel[j], previous_speed, previous_ts, alerts)

    # -- rules (rules/: each detector beside its reference rule) ------------------------------------
    def _deviation(self, s: np.ndarray, ts: np.ndarray, lon: np.ndarray, lat: np.ndarray,
                   alerts: list[Alert]) -> None:
        routed = self.b["has_route"][s]
        if not routed.any():
            return
        s, ts, lon, lat = s[routed], ts[routed], lon[routed], lat[routed]
        distance = route_rule.distance_rows(self, s, lon, lat)
        fire, since = route_rule.step_rows(self, s, ts, distance)
        for k in np.flatnonzero(fire).tolist():
            alerts.append(Alert(self.trip_of[int(s[k])], "route_deviation", float(ts[k]), float(lon[k]),  # type: ignore[arg-type]
                                float(lat[k]), {"distance_m": round(float(distance[k])),
                                                "since": format_ts(float(since[k]))}))

    def _stop(self, s: np.ndarray, ts: np.ndarray, lon: np.ndarray, lat: np.ndarray, reported: np.ndarray,
              stationary: np.ndarray, alerts: list[Alert]) -> None:
        f, b = self.f, self.b
        due = np.flatnonzero(stop_rule.step_rows(self, s, ts, lon, lat, reported, stationary))
        if not due.size:
            return
        slots = s[due]
        at_lon, at_lat = f["stop_lon"][slots], f["stop_lat"][slots]
        far = ~self._near_endpoint(slots, at_lon, at_lat)
        due, slots = due[far], slots[far]
        for k, slot in zip(due.tolist(), slots.tolist(), strict=True):
            at_lon, at_lat, since = float(f["stop_lon"][slot]), float(f["stop_lat"][slot]), float(f["stop_since"][slot])
            b["stop_alerted"][slot] = True
            alerts.append(Alert(self.trip_of[slot], "long_stop", float(ts[k]), at_lon, at_lat,
                                {"stopped_s": round(float(ts[k]) - since), "since": format_ts(since)}))

    def _near_endpoint(self, slots: np.ndarray, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Which positions lie within `endpoint_radius_m` of their trip's pickup or drop-off."""
        f, radius = self.f, self.config.endpoint_radius_m
        near = np.zeros(len(slots), dtype=bool)
        for x, y in ((f["pickup_lon"][slots], f["pickup_lat"][slots]),
                     (f["dropoff_lon"][slots], f["dropoff_lat"][slots])):
            with np.errstate(invalid="ignore"):
                near |= haversine_rows(lon, lat, x, y) <= radius  # NaN (no such point) is never near
        return near

    def _speeding(self, s: np.ndarray, ts: np.ndarray, lon: np.ndarray, lat: np.ndarray, speed_now: np.ndarray,
                  alerts: list[Alert]) -> None:
        fire, since = speed_rules.speeding_rows(self, s, ts, speed_now)
        for k in np.flatnonzero(fire).tolist():
            alerts.append(Alert(self.trip_of[int(s[k])], "speeding", float(ts[k]), float(lon[k]),  # type: ignore[arg-type]
                                float(lat[k]), {"speed_kmh": round(float(speed_now[k]) * 3.6),
                                                "since": format_ts(float(since[k]))}))

    def _crash(self, s: np.ndarray, ts: np.ndarray, lon: np.ndarray, lat: np.ndarray, reported: np.ndarray,
               accel: np.ndarray, previous_speed: np.ndarray, previous_ts: np.ndarray, alerts: list[Alert]) -> None:
        f = self.f
        speed_rules.still_rows(self, s, ts, lon, lat, reported)
        fire = speed_rules.crash_rows(self, s, ts, lon, lat, reported, accel, previous_speed, previous_ts)
        for k in np.flatnonzero(fire).tolist():
            slot = int(s[k])
            crash_at = float(f["crash_at"][slot])
            evidence: dict[str, object] = {"still_s": round(float(ts[k]) - crash_at), "since": format_ts(crash_at)}
            before = f["crash_from"][slot]
            if not np.isnan(before):
                evidence["speed_before_kmh"] = round(float(before) * 3.6)
            alerts.append(Alert(self.trip_of[slot], "possible_crash", float(ts[k]), float(f["crash_lon"][slot]),  # type: ignore[arg-type]
                                float(f["crash_lat"][slot]), evidence))
