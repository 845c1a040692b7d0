"""The offline stand-in tile server: what it serves is a tile source TripGuard accepts, its tiles are PNGs with the
traces drawn where the Porto trips drove (and nothing elsewhere), and a bad path is a 404."""

from __future__ import annotations

import io
import math

import httpx2 as httpx
from PIL import Image

from tripguard.core.basemap import tile_template_problem
from tripguard.sim import trace_tiles


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    rad = math.radians(lat)
    return int((lon + 180) / 360 * n), int((1 - math.log(math.tan(rad) + 1 / math.cos(rad)) / math.pi) / 2 * n)


def street_pixels(png: bytes) -> int:
    image = Image.open(io.BytesIO(png)).convert("RGB")
    return sum(1 for pixel in image.getdata() if pixel != trace_tiles.LAND)


def test_the_tiles_show_porto_streets_and_nothing_elsewhere() -> None:
    with trace_tiles.serving() as template:
        assert tile_template_problem(template, "abc") is None
        x, y = tile_of(-8.61, 41.15, 14)  # Porto's centre
        porto = httpx.get(template.format(z=14, x=x, y=y), timeout=30)
        assert porto.status_code == 200 and porto.headers["content-type"] == "image/png"
        assert street_pixels(porto.content) > 2000
        x, y = tile_of(116.40, 39.90, 14)  # Beijing: no trip drove there
        assert street_pixels(httpx.get(template.format(z=14, x=x, y=y), timeout=30).content) == 0
        base = template.split("{z}")[0]
        for bad in ("0/0/0", "19/0/0.png", "2/4/0.png", "../etc/passwd", "a/b/c.png"):
            assert httpx.get(base + bad, timeout=30).status_code == 404, bad
