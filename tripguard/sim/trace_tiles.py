"""A stand-in tile server for machines that reach no map provider: the demo city's own Porto taxi traces drawn
as map tiles. It is not a street map: only the streets the 318 trips drove are drawn (the data's attribution,
CC BY 4.0, is the one the pages show). The console gallery runs it so that its maps show a configured tile
source; run it beside `make run` on an offline machine the same way:

    .venv/bin/python -m tripguard.sim.trace_tiles --port 8901 &
    TRIPGUARD_MAP_TILES_URL='http://127.0.0.1:8901/{z}/{x}/{y}.png' \
    TRIPGUARD_MAP_TILES_ATTRIBUTION='Porto taxi traces, ECML/PKDD 2015 (CC BY 4.0); not a street map' make run

Tiles are Web Mercator (XYZ), WGS-84, 256 px, rendered on request with Pillow and kept in memory.
"""

from __future__ import annotations

import argparse
import io
import math
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
from PIL import Image, ImageDraw

from tripguard.sim.porto import load_trips

ATTRIBUTION = "Porto taxi traces, ECML/PKDD 2015 (CC BY 4.0); not a street map"
ATTRIBUTION_URL = "https://archive.ics.uci.edu/dataset/339/taxi+service+trajectory+prediction+challenge+ecml+pkdd+2015"
MAX_ZOOM = 18
SIZE = 256
LAND, CASING, STREET = (242, 239, 233), (205, 199, 187), (255, 255, 255)
_TILE = re.compile(r"^/(\d{1,2})/(\d{1,7})/(\d{1,7})\.png$")


def mercator(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Web Mercator pixel coordinates at zoom 0 (0-256 across the world)."""
    x = (lon + 180.0) / 360.0 * SIZE
    rad = np.radians(np.clip(lat, -85.0511, 85.0511))
    y = (1.0 - np.log(np.tan(rad) + 1.0 / np.cos(rad)) / math.pi) / 2.0 * SIZE
    return x, y


@lru_cache(maxsize=1)
def segments() -> np.ndarray:
    """Every consecutive pair of fixes of every trip, as rows (x0, y0, x1, y1) at zoom 0."""
    rows = []
    for trip in load_trips():
        lon, lat = (np.array(column) for column in zip(*trip.points, strict=True))
        x, y = mercator(lon, lat)
        rows.append(np.column_stack([x[:-1], y[:-1], x[1:], y[1:]]))
    return np.concatenate(rows)


@lru_cache(maxsize=4096)
def tile(z: int, x: int, y: int) -> bytes:
    """The PNG of tile z/x/y: land colour, and the traces as streets (a casing under a white line)."""
    image = Image.new("RGB", (SIZE, SIZE), LAND)
    width = max(1, min(8, z - 10))
    scaled = segments() * (2**z) - np.array([x * SIZE, y * SIZE, x * SIZE, y * SIZE])
    pad = width + 2
    xs, ys = scaled[:, [0, 2]], scaled[:, [1, 3]]
    inside = ((xs.max(axis=1) >= -pad) & (xs.min(axis=1) <= SIZE + pad)
              & (ys.max(axis=1) >= -pad) & (ys.min(axis=1) <= SIZE + pad))
    draw = ImageDraw.Draw(image)
    lines = [tuple(row) for row in scaled[inside].tolist()]
    for colour, extra in ((CASING, 2), (STREET, 0)):
        for x0, y0, x1, y1 in lines:
            draw.line((x0, y0, x1, y1), fill=colour, width=width + extra)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


class TileServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a browser that moved on drops its tile requests
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class TileHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        match = _TILE.match(self.path)
        if not match:
            self.send_error(404, "tiles are /{z}/{x}/{y}.png")
            return
        z, x, y = (int(part) for part in match.groups())
        if z > MAX_ZOOM or x >= 2**z or y >= 2**z:
            self.send_error(404, "no such tile")
            return
        body = tile(z, x, y)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "public, max-age=86400")
        self.send_header("Access-Control-Allow-Origin", "*")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def serving(host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """The tile server on a thread; yields its URL template."""
    server = TileServer((host, port), TileHandler)
    thread = threading.Thread(target=server.serve_forever, name="trace-tiles", daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}/{{z}}/{{x}}/{{y}}.png"
    finally:
        server.shutdown()
        server.server_close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8901)
    args = parser.parse_args()
    server = TileServer((args.host, args.port), TileHandler)
    print(f"TRIPGUARD_MAP_TILES_URL='http://{args.host}:{args.port}/{{z}}/{{x}}/{{y}}.png'")
    print(f"TRIPGUARD_MAP_TILES_ATTRIBUTION='{ATTRIBUTION}'")
    with suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
