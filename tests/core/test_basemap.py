"""The base map's settings: a tile source that cannot work is refused at start-up with the reason, the
Content-Security-Policy allows exactly its origins, and `make run`'s demo draws on OpenStreetMap unless told
otherwise (docs/operations.md, "Base map")."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from tripguard.core.basemap import tile_origins
from tripguard.core.settings import OSM_TILES, Settings, with_demo_base_map

pytestmark = pytest.mark.no_database

OSM = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
AMAP = "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8&x={x}&y={y}&z={z}"
TENCENT = "https://rt{s}.map.gtimg.com/tile?z={z}&x={x}&y={-y}&type=vector&styleid=0"


def tiles(url: str, **more: object) -> Settings:
    return Settings(_env_file=None, map_tiles_url=url, map_tiles_attribution="© somebody", **more)  # type: ignore[call-arg]


@pytest.mark.parametrize("url, more", [
    (OSM, {}),
    (AMAP, {"map_tiles_subdomains": "1234", "map_tiles_crs": "gcj02", "map_tiles_max_zoom": 18}),
    (TENCENT, {"map_tiles_subdomains": "0123", "map_tiles_crs": "gcj02"}),
    ("http://10.0.0.5:8080/styles/basic/{z}/{x}/{y}{r}.png", {}),
])
def test_real_tile_sources_are_accepted(url: str, more: dict[str, object]) -> None:
    base_map = tiles(url, **more).base_map
    assert base_map.configured and base_map.tiles == url


@pytest.mark.parametrize("url, reason", [
    ("https://tile.openstreetmap.org/{zoom}/{x}/{y}.png", "unknown placeholder {zoom}"),  # as OSM's policy writes it
    ("https://tile.example.com/{z}/{x}.png", "{y} missing"),
    ("https://tile.example.com/{x}/{y}.png", "{z} missing"),
    ("tile.openstreetmap.org/{z}/{x}/{y}.png", "starts with https://"),
    ("ftp://tile.example.com/{z}/{x}/{y}.png", "starts with https://"),
    ("https://tile.example.com/{z/{x}/{y}.png", "unbalanced braces"),
    ("https://tile.example.com/{z}/{x}/{y}.png\" onerror=\"alert(1)", "no spaces, quotes"),
    ("https://{s}/{z}/{x}/{y}.png", "no valid host name"),
    ("https:///{z}/{x}/{y}.png", "no valid host name"),
    ("https://tile.example.com:http/{z}/{x}/{y}.png", "no valid host name"),
])
def test_a_tile_template_that_cannot_work_is_refused_with_the_reason(url: str, reason: str) -> None:
    with pytest.raises(ValidationError) as caught:
        tiles(url)
    assert reason in str(caught.value) and "TRIPGUARD_MAP_TILES_URL" in str(caught.value)


def test_other_base_map_settings_are_checked() -> None:
    with pytest.raises(ValidationError, match="needs TRIPGUARD_MAP_TILES_SUBDOMAINS"):
        tiles(AMAP, map_tiles_subdomains="1,2")
    with pytest.raises(ValidationError, match="TRIPGUARD_MAP_TILES_ATTRIBUTION is required"):
        Settings(_env_file=None, map_tiles_url=OSM)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="TRIPGUARD_MAP_TILES_ATTRIBUTION is required"):
        Settings(_env_file=None, map_tiles_url=OSM, map_tiles_attribution="  ")  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="attribution link"):
        tiles(OSM, map_tiles_attribution_url="javascript:alert(1)")
    with pytest.raises(ValidationError):
        tiles(OSM, map_tiles_max_zoom=23)
    with pytest.raises(ValidationError):
        tiles(OSM, map_tiles_crs="bd09")  # Baidu's own datum: not supported
    assert not Settings(_env_file=None).base_map.configured  # type: ignore[call-arg]


def test_the_pages_may_load_images_from_the_tile_servers_only() -> None:
    assert tile_origins(OSM, "abc") == ("https://tile.openstreetmap.org",)
    assert tile_origins(AMAP, "1234") == tuple(f"https://webrd0{n}.is.autonavi.com" for n in "1234")
    assert tile_origins("http://10.0.0.5:8080/{s}/{z}/{x}/{y}.png", "ab") == ("http://10.0.0.5:8080",)
    assert tile_origins("", "abc") == ()


def test_a_bad_template_stops_the_server_at_start_up_with_one_clear_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tripguard.cli import app
    from tripguard.core.settings import get_settings

    monkeypatch.chdir(tmp_path)  # no .env
    monkeypatch.setenv("TRIPGUARD_KEY_DIR", str(tmp_path / "keys"))
    monkeypatch.setenv("TRIPGUARD_MAP_TILES_URL", "https://tile.openstreetmap.org/{zoom}/{x}/{y}.png")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["serve"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2, result.output
    assert "TRIPGUARD_MAP_TILES_URL" in result.output and "unknown placeholder {zoom}" in result.output
    assert "Traceback" not in result.output and "listening" not in result.output
    monkeypatch.setenv("TRIPGUARD_MAP_TILES_URL", OSM)
    monkeypatch.setenv("TRIPGUARD_MAP_TILES_MAX_ZOOM", "30")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["serve"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2 and "TRIPGUARD_MAP_TILES_MAX_ZOOM: Input should be less than or equal to 22" \
        in result.output, result.output


def test_the_demo_city_draws_on_openstreetmap_unless_told_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    demo = with_demo_base_map(Settings(_env_file=None, env="development", demo_city=True))  # type: ignore[call-arg]
    assert demo.base_map.tiles == OSM_TILES and "OpenStreetMap" in demo.base_map.attribution
    assert demo.base_map.attribution_url == "https://www.openstreetmap.org/copyright"
    monkeypatch.setenv("TRIPGUARD_MAP_TILES_URL", "")  # set, to nothing: no base map
    assert not with_demo_base_map(Settings(_env_file=None, env="development", demo_city=True)  # type: ignore[call-arg]
                                  ).base_map.configured
    monkeypatch.delenv("TRIPGUARD_MAP_TILES_URL")
    own = with_demo_base_map(tiles(AMAP, env="development", demo_city=True, map_tiles_subdomains="1234"))
    assert own.base_map.tiles == AMAP
    for quiet in ({"env": "development", "demo_city": False}, {"env": "test", "demo_city": True}):
        assert not with_demo_base_map(Settings(_env_file=None, **quiet)).base_map.configured  # type: ignore[call-arg, arg-type]
