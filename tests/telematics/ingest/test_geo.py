"""WGS-84 ↔ GCJ-02 against published reference points, and only where Chinese providers shift their maps
(mainland China, Hong Kong, Macau). The browser's copy (console/static/basemap.js) is held to this one in
tests/web/test_basemap_browser.py."""

from __future__ import annotations

import pytest

from tripguard.telematics.ingest.geo import (
    gcj02_to_wgs84,
    haversine_m,
    in_gcj02_area,
    wgs84_to_gcj02,
)

pytestmark = pytest.mark.no_database

# (WGS-84 lon, lat) -> (GCJ-02 lon, lat): the test points of eviltransform (googollee/eviltransform, Shanghai,
# Shenzhen, Beijing) and coordtransform's README example (wandergis/coordtransform).
REFERENCE = [
    ((121.5272106, 31.1774276), (121.531541859215, 31.17530398364597)),
    ((113.912316, 22.543847), (113.9171764808363, 22.540796131694766)),
    ((116.377817, 39.911954), (116.38404722455657, 39.91334545536069)),
    ((116.404, 39.915), (116.41024449916938, 39.91640428150164)),
]
# A point whose GCJ-02 position was also asked of AutoNavi's own conversion service (the R package
# ChinaCoordinateTransform's tests): the public formula is within a metre of the provider.
AMAP_API = ((116.39089, 39.90734), (116.39713623, 39.90874539))

INSIDE = {"Beijing": (116.397, 39.909), "Shanghai": (121.47, 31.23), "Urumqi": (87.62, 43.83),
          "Lhasa": (91.11, 29.65), "Haikou": (110.35, 20.02), "Harbin": (126.63, 45.75),
          "Kunming": (102.71, 25.04), "Hong Kong": (114.17, 22.28), "Macau": (113.54, 22.19)}
OUTSIDE = {"Taipei": (121.56, 25.04), "Seoul": (126.98, 37.57), "Pyongyang": (125.75, 39.03),
           "Hanoi": (105.85, 21.03), "Vladivostok": (131.89, 43.12), "Ulaanbaatar": (106.92, 47.92),
           "Tokyo": (139.69, 35.69), "Porto": (-8.61, 41.15), "Paris": (2.35, 48.85)}


@pytest.mark.parametrize("wgs, gcj", REFERENCE)
def test_wgs84_to_gcj02_matches_the_reference_points(wgs: tuple[float, float], gcj: tuple[float, float]) -> None:
    lon, lat = wgs84_to_gcj02(*wgs)
    assert lon == pytest.approx(gcj[0], abs=1e-9) and lat == pytest.approx(gcj[1], abs=1e-9)
    assert 400 < haversine_m(*wgs, *gcj) < 700  # the datum's offset: hundreds of metres


def test_the_formula_is_within_a_metre_of_the_providers_own_conversion() -> None:
    wgs, amap = AMAP_API
    assert haversine_m(*wgs84_to_gcj02(*wgs), *amap) < 1.0


@pytest.mark.parametrize("wgs, gcj", REFERENCE)
def test_gcj02_to_wgs84_inverts_it_within_a_centimetre(wgs: tuple[float, float], gcj: tuple[float, float]) -> None:
    assert haversine_m(*gcj02_to_wgs84(*gcj), *wgs) < 0.01


@pytest.mark.parametrize("place", sorted(INSIDE))
def test_places_where_chinese_maps_are_shifted(place: str) -> None:
    lon, lat = INSIDE[place]
    assert in_gcj02_area(lon, lat)
    assert haversine_m(lon, lat, *wgs84_to_gcj02(lon, lat)) > 50


@pytest.mark.parametrize("place", sorted(OUTSIDE))
def test_places_outside_are_never_moved(place: str) -> None:
    """Taiwan and the neighbours inside the old rectangle test (72-137.8 E, 0.8-55.8 N) included."""
    lon, lat = OUTSIDE[place]
    assert not in_gcj02_area(lon, lat)
    assert wgs84_to_gcj02(lon, lat) == (lon, lat) == gcj02_to_wgs84(lon, lat)
