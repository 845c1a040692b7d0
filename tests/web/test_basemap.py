"""Every map page (live map, trip, case, share) under the deployment's base map: without a tile source the map
says so and how to set one (translated); with one, the page carries its template, credit, zoom, subdomains and
coordinate system, and says nothing of a missing map. The positions in the page stay WGS-84: with GCJ-02 tiles
the map's projection shifts them (static/basemap.js; tests/web/test_basemap_browser.py)."""

from __future__ import annotations

import html
import json
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.conftest import make_settings
from tests.safety.test_case_page import sos_with_contact
from tests.safety.test_sos_api import on_a_trip
from tests.telematics.test_ingest_api import ndjson, post
from tripguard.core.settings import Settings
from tripguard.security.permissions import Role

AMAP = {"map_tiles_url": "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8&x={x}&y={y}&z={z}",
        "map_tiles_attribution": "© 高德地图 GS(2021)6375号", "map_tiles_attribution_url": "https://www.amap.com/",
        "map_tiles_subdomains": "1234", "map_tiles_max_zoom": 18, "map_tiles_crs": "gcj02"}


@pytest.fixture(params=["unset", "amap"])
def settings(request: pytest.FixtureRequest, database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    overrides = AMAP if request.param == "amap" else {}
    return make_settings(database_url, tmp_path_factory.getbasetemp() / "keys", **overrides)


def live_page(client: TestClient, db: Session, act_as) -> str:  # type: ignore[no-untyped-def]
    act_as(Role.SAFETY_AGENT)
    return client.get("/console/live", headers={"accept-language": "zh-CN"}).text


def trip_page(client: TestClient, db: Session, act_as) -> str:  # type: ignore[no-untyped-def]
    on_a_trip(client, act_as, db)
    act_as(Role.SAFETY_AGENT)
    return client.get("/console/trips/T1", headers={"accept-language": "zh-CN"}).text


def case_page(client: TestClient, db: Session, act_as) -> str:  # type: ignore[no-untyped-def]
    incident_id = sos_with_contact(client, db, act_as)
    act_as(Role.SAFETY_AGENT)
    return client.get(f"/console/incidents/{incident_id}", headers={"accept-language": "zh-CN"}).text


def share_page(client: TestClient, db: Session, act_as) -> str:  # type: ignore[no-untyped-def]
    on_a_trip(client, act_as, db)
    act_as(Role.PASSENGER, kind="subject", id="P1")
    created = client.post("/api/v1/trips/T1/shares")
    assert created.status_code == 201, created.text
    return client.get("/s/" + created.json()["url"].split("/s/", 1)[1], headers={"accept-language": "zh-CN"}).text


PAGES = {"live": live_page, "trip": trip_page, "case": case_page, "share": share_page}


def map_element(page: str) -> dict[str, str]:
    tag = re.search(r'<div id="map"[^>]*>', page)
    assert tag is not None, page
    found = re.findall(r"""data-([a-z-]+)=(?:"([^"]*)"|'([^']*)')""", tag.group(0))
    return {name: html.unescape(double or single) for name, double, single in found}


@pytest.mark.parametrize("name", sorted(PAGES))
def test_each_map_page_draws_the_configured_base_map_or_says_there_is_none(
        name: str, settings: Settings, client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    page = PAGES[name](client, db, act_as)
    data = map_element(page)
    assert '<script src="/static/basemap.js" defer></script>' in page
    if not settings.map_tiles_url:
        assert data["tiles"] == "" and data["crs"] == "wgs84"
        notice = re.search(r'<div class="map-notice" role="note" data-testid="map-notice">(.*?)</div>', page, re.DOTALL)
        assert notice is not None, page
        assert "TRIPGUARD_MAP_TILES_URL" in notice.group(1) and "docs/operations.md" in notice.group(1)
        assert ("本页没有街道地图" if name == "share" else "未配置底图") in notice.group(1)  # in the reader's language
        assert "data-testid=\"map-tiles-failed\"" not in page
        return
    assert "map-notice\" role=\"note\"" not in page \
        and "TRIPGUARD_MAP_TILES_URL" not in page.split('data-testid="map-tiles-failed"')[0]
    assert 'data-testid="map-tiles-failed" hidden' in page  # shown by the page only when tiles fail
    assert data["tiles"] == AMAP["map_tiles_url"] and data["attribution"] == AMAP["map_tiles_attribution"]
    assert data["attribution-url"] == "https://www.amap.com/" and data["subdomains"] == "1234"
    assert data["max-zoom"] == "18" and data["crs"] == "gcj02"  # the page shifts its WGS-84 positions to GCJ-02


def test_the_pages_may_load_tiles_from_the_configured_servers(settings: Settings, client: TestClient) -> None:
    csp = client.get("/healthz").headers["content-security-policy"]
    img_src = next(part for part in csp.split("; ") if part.startswith("img-src"))
    expected = [f"https://webrd0{n}.is.autonavi.com" for n in "1234"] if settings.map_tiles_url else []
    assert img_src.split()[1:] == ["'self'", "data:", *expected]


BEIJING = [[116.3900 + i * 0.001, 39.9070] for i in range(5)]  # WGS-84, inside the GCJ-02 area


def test_the_positions_in_the_page_stay_wgs84_whatever_the_tiles(
        settings: Settings, client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    """The shift to GCJ-02 tiles is the map's projection (in the browser), never the data: a trip in Beijing
    reaches the share page as it was ingested, as the API and the evidence hold it."""
    on_a_trip(client, act_as, db)
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    events = [{"type": "trip_started", "trip_id": "TB", "ts": "2026-03-01T08:00:00Z", "passenger_id": "P1",
               "pickup": BEIJING[0], "dropoff": BEIJING[-1], "route": BEIJING},
              {"type": "ping", "trip_id": "TB", "ts": "2026-03-01T08:00:15Z", "lon": BEIJING[2][0],
               "lat": BEIJING[2][1]}]
    assert post(client, ndjson(events)).status_code == 200
    act_as(Role.PASSENGER, kind="subject", id="P1")
    created = client.post("/api/v1/trips/TB/shares")
    assert created.status_code == 201, created.text
    data = map_element(client.get("/s/" + created.json()["url"].split("/s/", 1)[1]).text)
    assert json.loads(data["route"]) == BEIJING and json.loads(data["position"]) == BEIJING[2]
    assert json.loads(data["start"]) == BEIJING[0]
    assert data["crs"] == ("gcj02" if settings.map_tiles_url else "wgs84")
