"""Packed trajectories: every ping of a trip in a few bytes, and back again as evidence.

A track is columns of integers (time in ms, lon/lat in 1e-6 degree ≈ 0.1 m, speed in cm/s,
heading in degrees, accuracy in dm; -1 where the device sent nothing), delta-coded and deflated.
Porto pings 15 s apart pack to about 6 bytes each. Decoding sorts by time and drops repeated
timestamps, so a ping sent twice is kept once whatever order the chunks arrive in.
"""

from __future__ import annotations

import csv
import io
import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from tripguard.telematics.ingest.events import Ping, format_ts

MAGIC = b"TGT1"
COLUMNS = ("t_ms", "lon_e6", "lat_e6", "speed_cms", "heading", "accuracy_dm")
MISSING = -1


class CorruptTrack(ValueError):
    pass


@dataclass(frozen=True)
class Track:
    """Decoded columns, sorted by time, one row per distinct timestamp."""

    t_ms: np.ndarray
    lon_e6: np.ndarray
    lat_e6: np.ndarray
    speed_cms: np.ndarray
    heading: np.ndarray
    accuracy_dm: np.ndarray

    def __len__(self) -> int:
        return int(self.t_ms.size)

    @classmethod
    def empty(cls) -> Track:
        return cls(*(np.empty(0, dtype=np.int64) for _ in COLUMNS))

    @classmethod
    def from_pings(cls, pings: Iterable[Ping]) -> Track:
        rows = [(round(p.ts * 1000), round(p.lon * 1e6), round(p.lat * 1e6),
                 MISSING if p.speed_mps is None else round(p.speed_mps * 100),
                 MISSING if p.heading is None else round(p.heading),
                 MISSING if p.accuracy_m is None else round(p.accuracy_m * 10)) for p in pings]
        if not rows:
            return cls.empty()
        table = np.array(rows, dtype=np.int64)
        return cls(*table.T.copy())._normalised()

    @staticmethod
    def int_columns(ts: np.ndarray, lon: np.ndarray, lat: np.ndarray, speed: np.ndarray, heading: np.ndarray,
                    accuracy: np.ndarray) -> np.ndarray:
        """Pings as the (6, n) integers `from_pings` stores (NaN: absent), rounded the same way (half to even)."""
        def scaled(values: np.ndarray, scale: float) -> np.ndarray:
            return np.where(np.isnan(values), MISSING, np.rint(values * scale)).astype(np.int64)

        return np.stack([np.rint(ts * 1000).astype(np.int64), np.rint(lon * 1e6).astype(np.int64),
                         np.rint(lat * 1e6).astype(np.int64), scaled(speed, 100), scaled(heading, 1),
                         scaled(accuracy, 10)])

    @classmethod
    def concat(cls, tracks: Iterable[Track]) -> Track:
        parts = list(tracks)
        if not parts:
            return cls.empty()
        return cls(*(np.concatenate([getattr(t, c) for t in parts]) for c in COLUMNS))._normalised()

    def _normalised(self) -> Track:
        order = np.argsort(self.t_ms, kind="stable")
        t = self.t_ms[order]
        keep = np.ones(t.size, dtype=bool)
        keep[1:] = t[1:] != t[:-1]
        return Track(*(getattr(self, c)[order][keep] for c in COLUMNS))

    # -- bytes --------------------------------------------------------------------------------
    def pack(self) -> bytes:
        columns = np.stack([getattr(self, c) for c in COLUMNS]) if len(self) else np.empty((6, 0), np.int64)
        deltas = np.diff(columns, axis=1, prepend=0)
        return MAGIC + struct.pack("<I", len(self)) + zlib.compress(deltas.astype("<i8").tobytes(), 6)

    @staticmethod
    def pack_groups(groups: np.ndarray, table: np.ndarray) -> list[tuple[int, int, int, int, bytes]]:
        """Many tracks packed at once: `table` (6, n) of `int_columns`, `groups[i]` the track of column i.
        Returns (group, points, first t_ms, last t_ms, packed) per group, each packed as `pack` would
        pack that group's `Track` (sorted by time, a repeated timestamp kept once)."""
        if not groups.size:
            return []
        order = np.lexsort((table[0], groups))
        groups, table = groups[order], table[:, order]
        keep = np.ones(groups.size, dtype=bool)
        keep[1:] = (groups[1:] != groups[:-1]) | (table[0, 1:] != table[0, :-1])
        groups, table = groups[keep], table[:, keep]
        starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
        ends = np.r_[starts[1:], groups.size]
        deltas = np.diff(table, axis=1, prepend=0)
        deltas[:, starts] = table[:, starts]  # each track's first row against zero, as `pack` does
        deltas = deltas.astype("<i8")
        return [(int(groups[a]), int(b - a), int(table[0, a]), int(table[0, b - 1]),
                 MAGIC + struct.pack("<I", int(b - a))
                 + zlib.compress(np.ascontiguousarray(deltas[:, a:b]).tobytes(), 6))
                for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]

    @classmethod
    def unpack(cls, data: bytes) -> Track:
        if data[:4] != MAGIC or len(data) < 8:
            raise CorruptTrack("not a packed track")
        (count,) = struct.unpack("<I", data[4:8])
        try:
            raw = zlib.decompress(data[8:])
        except zlib.error as exc:
            raise CorruptTrack("packed track does not inflate") from exc
        if len(raw) != count * len(COLUMNS) * 8:
            raise CorruptTrack("packed track has the wrong length")
        columns = np.cumsum(np.frombuffer(raw, dtype="<i8").reshape(len(COLUMNS), count), axis=1)
        return cls(*(columns[i].astype(np.int64) for i in range(len(COLUMNS))))

    # -- evidence -----------------------------------------------------------------------------
    def pings(self, trip_id: str) -> list[Ping]:
        """Back to events (a restart runs them through the monitor again)."""
        def optional(value: int, scale: float) -> float | None:
            return None if value == MISSING else value / scale

        return [Ping(trip_id, t / 1000, x / 1e6, y / 1e6, optional(s, 100), optional(h, 1), optional(a, 10))
                for t, x, y, s, h, a in zip(self.t_ms.tolist(), self.lon_e6.tolist(), self.lat_e6.tolist(),
                                            self.speed_cms.tolist(), self.heading.tolist(),
                                            self.accuracy_dm.tolist(), strict=True)]

    def rows(self) -> list[dict[str, object]]:
        def optional(value: int, scale: float) -> float | None:
            return None if value == MISSING else value / scale

        return [{"ts": format_ts(int(t) / 1000), "lon": int(x) / 1e6, "lat": int(y) / 1e6,
                 "speed_mps": optional(int(s), 100), "heading": optional(int(h), 1),
                 "accuracy_m": optional(int(a), 10)}
                for t, x, y, s, h, a in zip(self.t_ms, self.lon_e6, self.lat_e6, self.speed_cms, self.heading,
                                            self.accuracy_dm, strict=True)]

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=["ts", "lon", "lat", "speed_mps", "heading", "accuracy_m"],
                                lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows())
        return out.getvalue()

    def coordinates(self) -> list[list[float]]:
        return [[int(x) / 1e6, int(y) / 1e6] for x, y in zip(self.lon_e6, self.lat_e6, strict=True)]
