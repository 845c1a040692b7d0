"""The base map under every TripGuard map (live map, trip page, case page, share page): one tile source per
deployment, from settings (docs/operations.md, "Base map").

A tile URL template is Leaflet's: `{z}`, `{x}` and `{y}` (or `{-y}`, TMS rows counted from the south) name
the tile, `{s}` one of the subdomains, `{r}` "@2x" on high-density screens. Anything else in braces (OSM's
policy page writes `{zoom}`) would leave every tile broken, so it is refused at start-up, like a template
that is not an http(s) URL. The coordinate system is the tiles': Chinese providers (AutoNavi/Amap, Tencent)
draw their maps in GCJ-02, and the pages then shift TripGuard's WGS-84 positions to it for display
(`console/static/basemap.js`; the positions stored and served by the API stay WGS-84).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

TileCrs = Literal["wgs84", "gcj02"]
PLACEHOLDERS = frozenset({"{s}", "{z}", "{x}", "{y}", "{-y}", "{r}"})
_PLACEHOLDER = re.compile(r"\{[^{}]*\}")
_SUBDOMAINS = re.compile(r"^[A-Za-z0-9]{1,16}$")
_HOST = re.compile(r"^[A-Za-z0-9.-]+(:[0-9]{1,5})?$")  # after {s} is filled in
_UNSAFE = re.compile(r"[\s\"'<>\\`]")


def tile_template_problem(template: str, subdomains: str) -> str | None:
    """Why `template` cannot be a tile source (None: it can). Only the form is checked, never the network."""
    if _UNSAFE.search(template):
        return "no spaces, quotes, angle brackets or backslashes in a tile URL"
    scheme, sep, rest = template.partition("://")
    if not sep or scheme not in ("https", "http"):
        return "a tile URL starts with https:// (or http:// for a tile server on your own network)"
    host = rest.split("/", 1)[0]
    if template.count("{") != template.count("}"):
        return "unbalanced braces in the tile URL"
    for name in _PLACEHOLDER.findall(template):
        if name not in PLACEHOLDERS:
            return (f"unknown placeholder {name}: a tile URL names the tile with {{z}}, {{x}} and {{y}} (or {{-y}}), "
                    f"and may use {{s}} (a subdomain) and {{r}} (\"@2x\" on high-density screens)")
    missing = [name for name in ("{z}", "{x}") if name not in template]
    if "{y}" not in template and "{-y}" not in template:
        missing.append("{y}")
    if missing:
        return f"the tile URL must name the tile: {', '.join(missing)} missing"
    if not _HOST.match(host.replace("{s}", "a")) or not host.replace("{s}", ""):
        return "the tile URL has no valid host name (host[:port]; of the placeholders only {s} may stand in it)"
    if "{s}" in template and not _SUBDOMAINS.match(subdomains):
        return "a tile URL with {s} needs TRIPGUARD_MAP_TILES_SUBDOMAINS (letters or digits, one per subdomain)"
    return None


def attribution_url_problem(url: str) -> str | None:
    if url and (_UNSAFE.search(url) or not url.startswith(("https://", "http://"))):
        return "the attribution link must be an https:// (or http://) URL"
    return None


def tile_origins(template: str, subdomains: str) -> tuple[str, ...]:
    """The origins the browser loads tiles from (the pages' Content-Security-Policy allows images from
    them): one per subdomain when {s} stands in the host name."""
    if not template:
        return ()
    scheme, _, rest = template.partition("://")
    host = rest.split("/", 1)[0]
    if "{s}" not in host:
        return (f"{scheme}://{host}",)
    return tuple(dict.fromkeys(f"{scheme}://{host.replace('{s}', letter)}" for letter in subdomains))


@dataclass(frozen=True)
class BaseMap:
    """What a page needs to draw the base map (rendered into the map element's data attributes)."""

    tiles: str  # "": no tile source: the page says so on the map
    attribution: str
    attribution_url: str
    max_zoom: int
    subdomains: str
    crs: TileCrs

    @property
    def configured(self) -> bool:
        return bool(self.tiles)
