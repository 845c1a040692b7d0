"""The base map in a real browser. With GCJ-02 tiles (AutoNavi, Tencent) a car in Beijing is drawn where the
GCJ-02 transform puts it on the tile grid, ~550 m from its WGS-84 position, and a car in Porto where it is;
the browser's transform is the server's to the tenth of a millimetre; tile requests carry the site's origin
as Referer (tile servers ask for one) and never a share link's token; tiles that fail, or no tile source at
all, are said on the map, above it."""

from __future__ import annotations

import io
import math
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx2 as httpx
import pytest
from PIL import Image

from tests.builders import subject_token
from tests.web.conftest import STEP_TIMEOUT_MS, LiveServer, running_site, watch_errors
from tests.web.test_live_map_browser import post_events
from tests.web.test_share_browser import at
from tripguard.telematics.ingest.geo import (
    GCJ02_AREA,
    gcj02_to_wgs84,
    haversine_m,
    in_gcj02_area,
    wgs84_to_gcj02,
)

pytestmark = pytest.mark.browser
TILE = 256


@dataclass
class TileServer:
    url: str
    referers: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def tile_server() -> Iterator[TileServer]:
    """A tile server on loopback: one plain 256-px PNG for every /z/x/y.png, and who asked."""
    buffer = io.BytesIO()
    Image.new("RGB", (TILE, TILE), (226, 236, 228)).save(buffer, format="PNG")
    png = buffer.getvalue()
    seen: list[str] = []

    class Tiles(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Referer", ""))
            if not re.fullmatch(r"/\d+/\d+/\d+\.png", self.path):
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(png)))
            self.end_headers()
            self.wfile.write(png)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Tiles)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield TileServer(url=f"http://127.0.0.1:{server.server_address[1]}", referers=seen)
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def gcj_site(tmp_path_factory: pytest.TempPathFactory, tile_server: TileServer) -> Iterator[LiveServer]:
    with running_site(tmp_path_factory.mktemp("gcjmap"), label="gcjmap",
                      map_tiles_url=tile_server.url + "/{z}/{x}/{y}.png", map_tiles_attribution="Test tiles",
                      map_tiles_attribution_url="https://tiles.example.com/terms", map_tiles_max_zoom=18,
                      map_tiles_crs="gcj02") as server:
        yield server


def shared_trip(site: LiveServer, trip_id: str, route: list[list[float]], car: list[float]) -> str:
    """A trip under way along `route` with the car at `car`, shared by its passenger: the share page's path."""
    post_events(site, [
        {"type": "trip_started", "trip_id": trip_id, "ts": at(0), "passenger_id": "psg_live",
         "pickup": route[0], "dropoff": route[-1], "route": route},
        {"type": "ping", "trip_id": trip_id, "ts": at(10), "lon": car[0], "lat": car[1]}])
    created = httpx.post(f"{site.url}/api/v1/trips/{trip_id}/shares", timeout=10,
                         headers={"Authorization": f"Bearer {subject_token('psg_live')}"})
    assert created.status_code == 201, created.text
    return "/s/" + created.json()["url"].split("/s/", 1)[1]


def open_page(browser: Any, site: LiveServer, path: str) -> tuple[Any, Any]:
    context = browser.new_context(locale="zh-CN", base_url=site.url, viewport={"width": 900, "height": 900})
    context.set_default_timeout(STEP_TIMEOUT_MS)
    page = watch_errors(context.new_page())
    page.goto(path)
    return context, page


def where_the_car_is_drawn(page: Any) -> tuple[float, float, int]:
    """The car marker's centre read off the tile grid it is drawn on: (lon, lat) of that pixel, and the zoom."""
    page.locator('path.leaflet-interactive[fill="#0f6b5c"]').wait_for()
    # The tile under the car at the zoom on screen (drawn 256 px wide: the previous zoom's tiles fade out
    # scaled), once it has loaded.
    page.wait_for_function("""() => {
      const car = document.querySelector('path.leaflet-interactive[fill="#0f6b5c"]').getBoundingClientRect();
      const x = car.left + car.width / 2, y = car.top + car.height / 2;
      return [...document.querySelectorAll("img.leaflet-tile-loaded")].some((img) => {
        const b = img.getBoundingClientRect();
        return b.width === 256 && b.left <= x && x < b.right && b.top <= y && y < b.bottom;
      });
    }""")
    drawn = page.evaluate("""() => {
      const box = document.querySelector('path.leaflet-interactive[fill="#0f6b5c"]').getBoundingClientRect();
      const tiles = [...document.querySelectorAll("img.leaflet-tile-loaded")].map((img) => {
        const b = img.getBoundingClientRect();
        return { src: img.src, left: b.left, top: b.top, width: b.width, height: b.height };
      });
      return { x: box.left + box.width / 2, y: box.top + box.height / 2, tiles };
    }""")
    under = [tile for tile in drawn["tiles"] if tile["width"] == TILE
             and tile["left"] <= drawn["x"] < tile["left"] + TILE and tile["top"] <= drawn["y"] < tile["top"] + TILE]
    assert len(under) == 1, drawn
    tile = under[0]
    z, tx, ty = (int(n) for n in re.findall(r"/(\d+)/(\d+)/(\d+)\.png$", tile["src"])[0])
    world = TILE * 2 ** z
    px, py = tx * TILE + drawn["x"] - tile["left"], ty * TILE + drawn["y"] - tile["top"]
    lon = px / world * 360 - 180
    lat = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * py / world))))
    return lon, lat, z


def metres_per_pixel(lat: float, zoom: int) -> float:
    return 40_075_016.686 * math.cos(math.radians(lat)) / (TILE * 2 ** zoom)


def test_with_gcj02_tiles_a_car_in_china_is_drawn_on_its_gcj02_street(
        browser: Any, gcj_site: LiveServer, tile_server: TileServer) -> None:
    route = [[116.3900 + i * 0.0003, 39.9070] for i in range(20)]  # along Chang'an Avenue, WGS-84
    car = route[12]
    path = shared_trip(gcj_site, "GCJ1", route, car)
    context, page = open_page(browser, gcj_site, path)
    try:
        lon, lat, zoom = where_the_car_is_drawn(page)
        expected = wgs84_to_gcj02(*car)
        tolerance = 2.5 * metres_per_pixel(lat, zoom)  # a marker's pixel is rounded
        assert zoom >= 14 and tolerance < 25
        assert haversine_m(lon, lat, *expected) < tolerance, (lon, lat, expected, zoom)
        assert haversine_m(lon, lat, *car) > 400  # not where WGS-84 tiles would have it
        assert page.get_by_test_id("map-notice").count() == 0 and page.get_by_test_id("map-tiles-failed").is_hidden()
        credit = page.locator(".leaflet-control-attribution a", has_text="Test tiles")
        assert credit.get_attribute("href") == "https://tiles.example.com/terms"
        # Tile servers are told which site asks (OpenStreetMap's policy requires it), never which page.
        assert tile_server.referers and set(tile_server.referers) == {gcj_site.url + "/"}
    finally:
        context.close()


def test_outside_china_gcj02_tiles_leave_a_position_where_it_is(browser: Any, gcj_site: LiveServer) -> None:
    route = [[-8.6100 + i * 0.0003, 41.1500] for i in range(20)]  # Porto
    car = route[12]
    context, page = open_page(browser, gcj_site, shared_trip(gcj_site, "GCJ2", route, car))
    try:
        lon, lat, zoom = where_the_car_is_drawn(page)
        assert haversine_m(lon, lat, *car) < 2.5 * metres_per_pixel(lat, zoom)
    finally:
        context.close()


def test_tiles_that_do_not_load_are_said_on_the_map(browser: Any, gcj_site: LiveServer) -> None:
    path = shared_trip(gcj_site, "GCJ3", [[116.39, 39.907], [116.395, 39.907]], [116.392, 39.907])
    context = browser.new_context(locale="zh-CN", base_url=gcj_site.url)
    context.set_default_timeout(STEP_TIMEOUT_MS)
    context.route(re.compile(r".*/\d+/\d+/\d+\.png$"), lambda route: route.abort())  # the tile server is down
    page = watch_errors(context.new_page())
    try:
        page.goto(path)
        failed = page.get_by_test_id("map-tiles-failed")
        failed.wait_for(state="visible")
        assert "街道地图未能加载" in failed.inner_text()
        assert on_top(page, failed)
    finally:
        context.close()


def on_top(page: Any, locator: Any) -> bool:
    """Whether the element is what the reader sees at its centre (not under the map's panes)."""
    return bool(locator.evaluate("""(el) => {
      const box = el.getBoundingClientRect();
      return el.contains(document.elementFromPoint(box.left + box.width / 2, box.top + box.height / 2));
    }"""))


def test_without_a_tile_source_the_map_says_so_and_how_to_set_it(browser: Any, live_server: LiveServer) -> None:
    path = shared_trip(live_server, "NOTILES1", [[116.39, 39.907], [116.395, 39.907]], [116.392, 39.907])
    context, page = open_page(browser, live_server, path)
    try:
        notice = page.get_by_test_id("map-notice")
        notice.wait_for(state="visible")
        assert "本页没有街道地图" in notice.inner_text() and "TRIPGUARD_MAP_TILES_URL" in notice.inner_text()
        # a path is drawn under the notice
        page.locator("#map.leaflet-container path.leaflet-interactive").first.wait_for(state="attached")
        assert on_top(page, notice)
        assert page.locator("img.leaflet-tile").count() == 0
    finally:
        context.close()


def test_the_browsers_transform_is_the_servers(browser: Any, gcj_site: LiveServer) -> None:
    """console/static/basemap.js against telematics/ingest/geo.py: a grid over China and its borders, each
    rectangle's edges."""
    points = [(73 + i * 0.61, 17 + j * 0.37) for i in range(107) for j in range(105)]
    for west, south, east, north in GCJ02_AREA:
        points += [(west, south), (east, north), (west - 1e-7, south), (east + 1e-7, north), (east, south - 1e-7)]
    page = browser.new_page()
    try:
        page.goto(f"{gcj_site.url}/healthz")
        page.add_script_tag(url="/static/leaflet/leaflet.js")
        page.add_script_tag(url="/static/basemap.js")
        got = page.evaluate("""(points) => points.map(([lon, lat]) => {
          const m = window.TripGuardBaseMap;
          return [m.inGcj02Area(lon, lat), m.wgs84ToGcj02(lon, lat), m.gcj02ToWgs84(lon, lat)];
        })""", points)
    finally:
        page.close()
    inside = 0
    for (lon, lat), (area, to_gcj, to_wgs) in zip(points, got, strict=True):
        assert area == in_gcj02_area(lon, lat), (lon, lat)
        inside += area
        for mine, theirs in ((to_gcj, wgs84_to_gcj02(lon, lat)), (to_wgs, gcj02_to_wgs84(lon, lat))):
            assert abs(mine[0] - theirs[0]) < 1e-9 and abs(mine[1] - theirs[1]) < 1e-9, (lon, lat, mine, theirs)
    assert 2000 < inside < len(points) - 2000  # both sides of the border were tried


def test_the_pages_allow_images_from_the_configured_tile_server_alone(gcj_site: LiveServer,
                                                                      tile_server: TileServer) -> None:
    csp = httpx.get(f"{gcj_site.url}/healthz", timeout=10).headers["content-security-policy"]
    assert f"img-src 'self' data: {tile_server.url};" in csp
