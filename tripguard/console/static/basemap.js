// The base map of every TripGuard map (live map, trip page, case page, share page): the deployment's tile
// source, read from the map element's data attributes (core/basemap.py, templates/basemap.html).
//
// Positions are WGS-84 everywhere in TripGuard. Tiles from Chinese providers (AutoNavi/Amap, Tencent) are drawn
// in GCJ-02, offset from WGS-84 by hundreds of metres; with data-crs="gcj02" the map's projection shifts every
// position to GCJ-02 before placing it (markers, lines, clusters, bounds alike), so what is drawn sits on the
// right street while the layers, the API and the evidence keep WGS-84. The transform is the public one, the
// same as telematics/ingest/geo.py (tests hold the two to each other).
(function () {
  "use strict";
  const A = 6378245.0;
  const EE = 0.00669342162296594323;
  // Mainland China, Hong Kong and Macau, not Taiwan: [west, south, east, north] (telematics/ingest/geo.py GCJ02_AREA).
  const AREA = [
    [79.446200, 42.889900, 96.330000, 49.220400],
    [109.687200, 39.374200, 135.000200, 54.141500],
    [73.124600, 29.529700, 124.143255, 42.889900],
    [82.968400, 26.718600, 97.035200, 29.529700],
    [97.025300, 20.414096, 124.367395, 29.529700],
    [107.975793, 17.871542, 111.744104, 20.414096],
  ];
  const EXCLUDED = [
    [119.921265, 21.785006, 122.497559, 25.398623],
    [101.865200, 20.098800, 106.665000, 22.284000],
    [106.452500, 20.487800, 108.051000, 21.542200],
    [109.032300, 50.325700, 119.127000, 55.817500],
    [127.456800, 49.557400, 137.022700, 55.817500],
    [131.266200, 42.569200, 137.022700, 44.892200],
  ];
  const inside = (boxes, lon, lat) => boxes.some(([w, s, e, n]) => w <= lon && lon <= e && s <= lat && lat <= n);
  function inGcj02Area(lon, lat) {
    return inside(AREA, lon, lat) && !inside(EXCLUDED, lon, lat);
  }

  function transformLat(x, y) {
    let ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * Math.sqrt(Math.abs(x));
    ret += (20.0 * Math.sin(6.0 * x * Math.PI) + 20.0 * Math.sin(2.0 * x * Math.PI)) * 2.0 / 3.0;
    ret += (20.0 * Math.sin(y * Math.PI) + 40.0 * Math.sin(y / 3.0 * Math.PI)) * 2.0 / 3.0;
    ret += (160.0 * Math.sin(y / 12.0 * Math.PI) + 320 * Math.sin(y * Math.PI / 30.0)) * 2.0 / 3.0;
    return ret;
  }
  function transformLon(x, y) {
    let ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x));
    ret += (20.0 * Math.sin(6.0 * x * Math.PI) + 20.0 * Math.sin(2.0 * x * Math.PI)) * 2.0 / 3.0;
    ret += (20.0 * Math.sin(x * Math.PI) + 40.0 * Math.sin(x / 3.0 * Math.PI)) * 2.0 / 3.0;
    ret += (150.0 * Math.sin(x / 12.0 * Math.PI) + 300.0 * Math.sin(x / 30.0 * Math.PI)) * 2.0 / 3.0;
    return ret;
  }
  // [longitude, latitude] in, [longitude, latitude] out; unchanged outside the area.
  function wgs84ToGcj02(lon, lat) {
    if (!inGcj02Area(lon, lat)) return [lon, lat];
    let dLat = transformLat(lon - 105.0, lat - 35.0);
    let dLon = transformLon(lon - 105.0, lat - 35.0);
    const radLat = lat / 180.0 * Math.PI;
    const magic = 1 - EE * Math.sin(radLat) ** 2;
    const sqrtMagic = Math.sqrt(magic);
    dLat = (dLat * 180.0) / ((A * (1 - EE)) / (magic * sqrtMagic) * Math.PI);
    dLon = (dLon * 180.0) / (A / sqrtMagic * Math.cos(radLat) * Math.PI);
    return [lon + dLon, lat + dLat];
  }
  // The inverse by fixed-point iteration (better than a centimetre after six rounds).
  function gcj02ToWgs84(lon, lat) {
    if (!inGcj02Area(lon, lat)) return [lon, lat];
    let wLon = lon;
    let wLat = lat;
    for (let i = 0; i < 6; i += 1) {
      const [gLon, gLat] = wgs84ToGcj02(wLon, wLat);
      wLon -= gLon - lon;
      wLat -= gLat - lat;
    }
    return [wLon, wLat];
  }

  // Web Mercator over GCJ-02: the tile grid of AutoNavi and Tencent, for layers that stay in WGS-84.
  let gcj02Crs = null;
  function gcj02() {
    if (gcj02Crs) return gcj02Crs;
    const mercator = L.Projection.SphericalMercator;
    gcj02Crs = L.extend({}, L.CRS.EPSG3857, {
      code: "EPSG:3857+GCJ-02",
      projection: {
        bounds: mercator.bounds,
        project(latlng) {
          const [lon, lat] = wgs84ToGcj02(latlng.lng, latlng.lat);
          return mercator.project(L.latLng(lat, lon));
        },
        unproject(point) {
          const shifted = mercator.unproject(point);
          const [lon, lat] = gcj02ToWgs84(shifted.lng, shifted.lat);
          return L.latLng(lat, lon);
        },
      },
    });
    return gcj02Crs;
  }

  // The provider's credit, as text (an operator's setting is never HTML), linked when a link is configured.
  function credit(data) {
    const span = document.createElement("span");
    span.textContent = data.attribution || "";
    if (!data.attributionUrl) return span.innerHTML;
    const link = document.createElement("a");
    link.href = data.attributionUrl;
    link.target = "_blank";
    link.rel = "noopener";
    link.textContent = data.attribution || data.attributionUrl;
    return link.outerHTML;
  }

  // The tiles failed (server unreachable, refusing, a wrong URL): the page says so on the map, not grey alone.
  function watchTiles(layer, el) {
    const notice = el.parentElement && el.parentElement.querySelector("[data-testid=map-tiles-failed]");
    if (!notice) return;
    let failed = 0;
    layer.on("loading", () => { failed = 0; });
    layer.on("tileerror", () => { failed += 1; notice.hidden = false; });
    layer.on("load", () => { if (failed === 0) notice.hidden = true; });
  }

  // A Leaflet map on `el` with the deployment's base map (options: Leaflet's map options).
  function create(el, options) {
    const data = el.dataset;
    const maxZoom = Number(data.maxZoom) || 19;
    const map = L.map(el, Object.assign({ maxZoom }, options || {},
                                        { crs: data.crs === "gcj02" ? gcj02() : L.CRS.EPSG3857 }));
    if (data.tiles) {
      const layer = L.tileLayer(data.tiles, {
        maxZoom, subdomains: data.subdomains || "abc", attribution: credit(data),
        // The pages send no Referer (their addresses hold trip ids and share tokens); tile servers ask for one
        // (OpenStreetMap's policy requires it), so tile requests carry the site's origin alone.
        referrerPolicy: "strict-origin",
      });
      watchTiles(layer, el);
      layer.addTo(map);
    }
    return map;
  }

  window.TripGuardBaseMap = { create, wgs84ToGcj02, gcj02ToWgs84, inGcj02Area };
})();
