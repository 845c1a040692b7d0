"""Geometry for trip monitoring: distances in metres, routes as local planar polylines, GCJ-02."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

EARTH_RADIUS_M = 6_371_008.8


def haversine_rows(lon1: np.ndarray, lat1: np.ndarray, lon2: np.ndarray, lat2: np.ndarray) -> np.ndarray:
    """`haversine_m` element-wise (NaN where a position is NaN)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(lon2 - lon1)
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    distance: np.ndarray = 2 * EARTH_RADIUS_M * np.arcsin(np.minimum(1.0, np.sqrt(a)))
    return distance


def haversine_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


@dataclass(frozen=True)
class LocalFrame:
    """An equirectangular projection around a point: metres, accurate to well under 1 % across a city."""

    lon0: float
    lat0: float

    @property
    def kx(self) -> float:
        return math.radians(1) * EARTH_RADIUS_M * math.cos(math.radians(self.lat0))

    @property
    def ky(self) -> float:
        return math.radians(1) * EARTH_RADIUS_M

    def xy(self, lon: float, lat: float) -> tuple[float, float]:
        return (lon - self.lon0) * self.kx, (lat - self.lat0) * self.ky


class Route:
    """A planned route as planar segments (numpy), to measure how far a position is from it."""

    __slots__ = ("ax", "ay", "dx", "dy", "frame", "length2")

    def __init__(self, frame: LocalFrame, xs: np.ndarray, ys: np.ndarray) -> None:
        self.frame = frame
        if len(xs) == 1:  # a single point: a zero-length segment
            xs, ys = np.repeat(xs, 2), np.repeat(ys, 2)
        self.ax, self.ay = xs[:-1], ys[:-1]
        self.dx, self.dy = xs[1:] - xs[:-1], ys[1:] - ys[:-1]
        self.length2 = self.dx * self.dx + self.dy * self.dy

    @classmethod
    def from_lonlat(cls, points: list[tuple[float, float]]) -> Route:
        frame = LocalFrame(points[0][0], points[0][1])
        lonlat = np.asarray(points, dtype=np.float64)
        return cls(frame, (lonlat[:, 0] - frame.lon0) * frame.kx, (lonlat[:, 1] - frame.lat0) * frame.ky)

    def distance_m(self, lon: float, lat: float) -> float:
        return self.nearest(lon, lat)[0]

    def nearest(self, lon: float, lat: float) -> tuple[float, int]:
        """Distance to the route and the index of the nearest segment."""
        return nearest_segment(*self.frame.xy(lon, lat), self.ax, self.ay, self.dx, self.dy, self.length2)


def nearest_segment(px: float, py: float, ax: np.ndarray, ay: np.ndarray, dx: np.ndarray, dy: np.ndarray,
                    length2: np.ndarray) -> tuple[float, int]:
    """The distance from a planar point to the nearest of these segments, and that segment's index."""
    rx, ry = px - ax, py - ay
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.where(length2 > 0, (rx * dx + ry * dy) / length2, 0.0)
    np.clip(t, 0.0, 1.0, out=t)
    ex, ey = rx - t * dx, ry - t * dy
    squared = ex * ex + ey * ey
    index = int(np.argmin(squared))
    return float(np.sqrt(squared[index])), index


def route_points(routes: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The planar points `Route.from_lonlat` builds its segments from, for many routes ((n, 2) arrays of lon,
    lat) at once and with the same numbers: all their points back to back (rows x, y; a route of one point is
    that point twice, a segment of length zero); each route's count of segments (its points less one); and
    each route's frame (lon0, lat0, kx) as a row. A segment is two neighbouring points, so a route costs two
    numbers a point instead of five a segment."""
    counts = np.fromiter(map(len, routes), dtype=np.int64, count=len(routes))
    lonlat = np.concatenate(routes) if routes else np.zeros((0, 2))
    first = np.r_[0, np.cumsum(counts)[:-1]].astype(np.int64)
    origins = lonlat[first]
    kx = np.array([LocalFrame(lon, lat).kx for lon, lat in origins.tolist()])
    xs = (lonlat[:, 0] - np.repeat(origins[:, 0], counts)) * np.repeat(kx, counts)
    ys = (lonlat[:, 1] - np.repeat(origins[:, 1], counts)) * LocalFrame(0.0, 0.0).ky
    kept = np.maximum(counts, 2)  # a single point is kept twice
    index = np.arange(int(kept.sum())) - np.repeat(np.r_[0, np.cumsum(kept)[:-1]] - first, kept)
    index = np.minimum(index, np.repeat(first + counts - 1, kept))
    return np.stack([xs[index], ys[index]]), kept - 1, np.column_stack([origins, kx])


# GCJ-02 ("Mars coordinates", the obfuscated datum of Chinese map data) and WGS-84: the public formula
# (Krasovsky ellipsoid constants), as in eviltransform and coordtransform. The same transform, area and
# constants are in console/static/basemap.js, which shifts the maps' positions onto GCJ-02 tiles; tests hold
# the two to each other (tests/web/test_basemap_browser.py) and to published reference points.
_A = 6378245.0
_EE = 0.00669342162296594323
# Where Chinese providers shift their maps: mainland China, with Hong Kong and Macau (AutoNavi applies GCJ-02
# there too), not Taiwan or the neighbouring countries. A union of rectangles less a few (the widely used
# table first published by Aimeast, 2012): exact inside, approximate within tens of kilometres of a border.
# (west, south, east, north) in degrees.
GCJ02_AREA = (
    (79.446200, 42.889900, 96.330000, 49.220400),
    (109.687200, 39.374200, 135.000200, 54.141500),
    (73.124600, 29.529700, 124.143255, 42.889900),
    (82.968400, 26.718600, 97.035200, 29.529700),
    (97.025300, 20.414096, 124.367395, 29.529700),
    (107.975793, 17.871542, 111.744104, 20.414096),
)
GCJ02_AREA_EXCLUDED = (
    (119.921265, 21.785006, 122.497559, 25.398623),  # Taiwan
    (101.865200, 20.098800, 106.665000, 22.284000),  # Laos, northern Vietnam
    (106.452500, 20.487800, 108.051000, 21.542200),  # northern Vietnam's coast
    (109.032300, 50.325700, 119.127000, 55.817500),  # Russia, Mongolia
    (127.456800, 49.557400, 137.022700, 55.817500),  # Russia
    (131.266200, 42.569200, 137.022700, 44.892200),  # Russia (Primorye)
)


def _inside(boxes: tuple[tuple[float, float, float, float], ...], lon: float, lat: float) -> bool:
    return any(west <= lon <= east and south <= lat <= north for west, south, east, north in boxes)


def in_gcj02_area(lon: float, lat: float) -> bool:
    """Whether Chinese map providers shift this place to GCJ-02 (elsewhere the two datums are one)."""
    return _inside(GCJ02_AREA, lon, lat) and not _inside(GCJ02_AREA_EXCLUDED, lon, lat)


def _outside_china(lon: float, lat: float) -> bool:
    return not in_gcj02_area(lon, lat)


def _transform_lat(x: float, y: float) -> float:
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (160.0 * math.sin(y / 12.0 * math.pi) + 320 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    return ret


def _transform_lon(x: float, y: float) -> float:
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    return ret


def wgs84_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    if _outside_china(lon, lat):
        return lon, lat
    d_lat = _transform_lat(lon - 105.0, lat - 35.0)
    d_lon = _transform_lon(lon - 105.0, lat - 35.0)
    rad_lat = math.radians(lat)
    magic = 1 - _EE * math.sin(rad_lat) ** 2
    sqrt_magic = math.sqrt(magic)
    d_lat = (d_lat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrt_magic) * math.pi)
    d_lon = (d_lon * 180.0) / (_A / sqrt_magic * math.cos(rad_lat) * math.pi)
    return lon + d_lon, lat + d_lat


def gcj02_to_wgs84(lon: float, lat: float) -> tuple[float, float]:
    """Invert by fixed-point iteration: better than a centimetre after a few rounds."""
    if _outside_china(lon, lat):
        return lon, lat
    w_lon, w_lat = lon, lat
    for _ in range(6):
        g_lon, g_lat = wgs84_to_gcj02(w_lon, w_lat)
        w_lon, w_lat = w_lon - (g_lon - lon), w_lat - (g_lat - lat)
    return w_lon, w_lat
