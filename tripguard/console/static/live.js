// The live map: every active trip, its newest position and (when few enough) its planned route;
// markers cluster when thousands of trips are under way (Leaflet.markercluster, vendored); the side
// panel lists and finds trips, and a click focuses one. Data come from the snapshot and the shell's
// live stream (console.js subscribe, shared by every tab of the browser). Mounted by the shell on the
// live map page and removed with it (boosted navigation keeps the document). Coordinates are
// [longitude, latitude] everywhere in TripGuard; Leaflet takes [latitude, longitude], converted here only.
window.TripGuard.widget("live-map", function (panel) {
  "use strict";
  const ROUTE_LIMIT = 300;  // above this many trips, routes are drawn for the focused and flagged ones only
  const ROWS_SHOWN = 200;
  // Operator-supplied text (trip ids, labels) goes into the DOM as text, never as HTML.
  function asText(value) {
    const span = document.createElement("span");
    span.textContent = String(value);
    return span;
  }
  const latLng = (lon, lat) => [lat, lon];

  let gone = false;  // unmounted: the page was swapped away
  const el = panel.querySelector("#map");
  const map = window.TripGuardBaseMap.create(el, { preferCanvas: false }).setView([41.15, -8.61], 12);
  const cluster = L.markerClusterGroup({ chunkedLoading: true, showCoverageOnHover: false, maxClusterRadius: 45,
                                         disableClusteringAtZoom: 16 }).addTo(map);
  const flaggedLayer = L.layerGroup().addTo(map);  // trips with a case: never inside a cluster
  const routesLayer = L.layerGroup().addTo(map);
  const trips = new Map();
  const highlighted = new Set();
  let focused = null;
  const rows = document.getElementById("trips");
  const alerts = document.getElementById("alerts");
  const count = document.getElementById("trip-count");
  const more = document.getElementById("trip-more");
  const search = document.getElementById("trip-search");
  const labels = JSON.parse(document.getElementById("kind-labels").textContent);
  const clock = new Intl.DateTimeFormat("en-GB", { timeZone: panel.dataset.zone, hour: "2-digit", minute: "2-digit",
                                                   second: "2-digit", hour12: false });

  // Keep every active trip in view until the agent takes the map in hand.
  let autoFit = true;
  let fitPending = false;
  for (const type of ["mousedown", "wheel", "touchstart", "keydown"]) {
    el.addEventListener(type, () => { autoFit = false; }, { passive: true });
  }
  function refit() {
    if (!autoFit || fitPending) return;
    fitPending = true;
    requestAnimationFrame(() => {
      fitPending = false;
      if (gone) return;
      const bounds = L.latLngBounds([]);
      trips.forEach((t) => {
        if (t.line) bounds.extend(t.line.getBounds());
        if (t.pos) bounds.extend(latLng(t.pos.lon, t.pos.lat));
      });
      if (bounds.isValid()) map.fitBounds(bounds, { maxZoom: 15, padding: [20, 20] });
    });
  }

  function showsRoute(id) {
    return trips.size <= ROUTE_LIMIT || id === focused || highlighted.has(id);
  }
  function drawRoute(id) {
    const t = trips.get(id);
    if (!t) return;
    const wanted = t.route && t.route.length && showsRoute(id);
    if (wanted && !t.line) {
      t.line = L.polyline(t.route.map(([lon, lat]) => latLng(lon, lat)),
                          { color: highlighted.has(id) ? "#b42318" : "#0f6b5c", weight: 3, opacity: 0.6 });
      routesLayer.addLayer(t.line);
    } else if (!wanted && t.line) {
      routesLayer.removeLayer(t.line);
      t.line = null;
    }
  }
  function markerStyle(id) {
    return highlighted.has(id) ? { radius: 10, color: "#b42318", fillColor: "#b42318", fillOpacity: 0.9 }
      : { radius: 6, color: "#1d2330", fillColor: "#0f6b5c", fillOpacity: 0.9 };
  }
  function placeMarker(id) {
    const t = trips.get(id);
    if (!t || !t.pos) return;
    const where = latLng(t.pos.lon, t.pos.lat);
    const layer = highlighted.has(id) ? flaggedLayer : cluster;
    if (t.marker && t.layer !== layer) { t.layer.removeLayer(t.marker); t.marker = null; }
    if (!t.marker) {
      t.marker = L.circleMarker(where, markerStyle(id));
      t.marker.bindTooltip(asText(id));  // Leaflet renders a string as HTML
      t.marker.on("click", () => focus(id, false));
      t.layer = layer;
      layer.addLayer(t.marker);
    } else {
      t.marker.setLatLng(where);
      t.marker.setStyle(markerStyle(id));
    }
  }

  function startTrip(item) {
    const t = trips.get(item.trip_id) || { route: null, pos: null, marker: null, line: null, layer: null };
    if (item.route && item.route.length) t.route = item.route;
    trips.set(item.trip_id, t);
    drawRoute(item.trip_id);
    if (item.position) move(item.trip_id, item.position.lon, item.position.lat, item.position.ts);
    if (trips.size === ROUTE_LIMIT + 1) trips.forEach((_, id) => drawRoute(id));
    refit();
    scheduleRows();
  }
  function move(id, lon, lat, ts) {
    const t = trips.get(id) || { route: null, pos: null, marker: null, line: null, layer: null };
    trips.set(id, t);
    t.pos = { lon, lat, ts };
    placeMarker(id);
    scheduleRows();
  }
  function endTrip(id) {
    const t = trips.get(id);
    if (t) {
      if (t.line) routesLayer.removeLayer(t.line);
      if (t.marker) t.layer.removeLayer(t.marker);
    }
    trips.delete(id);
    if (focused === id) focused = null;
    if (trips.size === ROUTE_LIMIT) trips.forEach((_, other) => drawRoute(other));
    scheduleRows();
  }

  // ---- the side panel: the trips matching the search, flagged first ----------------------------
  let rowsPending = false;
  function scheduleRows() {
    if (rowsPending) return;
    rowsPending = true;
    setTimeout(() => { rowsPending = false; window.TripGuard.steady(renderRows); }, 250);  // never under a press
  }
  function renderRows() {
    const active = document.activeElement;  // keep keyboard focus across the redraw
    const activeTrip = active && rows.contains(active) && active.closest("tr[data-trip]")
      ? active.closest("tr[data-trip]").dataset.trip : null;
    const activeIsLink = activeTrip !== null && active.tagName === "A";
    const needle = search.value.trim().toLowerCase();
    const matching = [...trips.keys()].filter((id) => !needle || id.toLowerCase().includes(needle));
    matching.sort((a, b) => (highlighted.has(b) - highlighted.has(a)) || (a < b ? -1 : a > b ? 1 : 0));
    const body = document.createDocumentFragment();
    for (const id of matching.slice(0, ROWS_SHOWN)) {
      const t = trips.get(id);
      const tr = document.createElement("tr");
      tr.dataset.trip = id;
      tr.tabIndex = 0;  // Enter on a row focuses its trip, as a click does
      if (highlighted.has(id)) tr.classList.add("case");
      if (id === focused) tr.classList.add("focused");
      const idCell = document.createElement("td");
      const link = document.createElement("a");
      link.href = `/console/trips/${encodeURIComponent(id)}`;
      link.textContent = id;
      idCell.appendChild(link);
      const pos = document.createElement("td");
      pos.className = "pos mono";
      pos.textContent = t.pos ? `${t.pos.lon.toFixed(5)}, ${t.pos.lat.toFixed(5)}` : "—";
      const at = document.createElement("td");
      at.className = "ts mono";
      at.textContent = t.pos ? clock.format(new Date(t.pos.ts)) : "—";
      tr.append(idCell, pos, at);
      body.appendChild(tr);
    }
    rows.replaceChildren(body);
    window.TripGuard.boost(rows);
    if (activeTrip !== null) {
      const again = rows.querySelector(`tr[data-trip="${CSS.escape(activeTrip)}"]`);
      if (again) (activeIsLink ? again.querySelector("a") : again).focus({ preventScroll: true });
    }
    count.textContent = trips.size;
    more.hidden = matching.length <= ROWS_SHOWN;
    more.textContent = labels.more.replace("{n}", String(matching.length - ROWS_SHOWN));
  }
  search.addEventListener("input", scheduleRows);
  rows.addEventListener("keydown", (event) => {
    const tr = event.target.closest && event.target.closest("tr[data-trip]");
    if (tr && event.target === tr && (event.key === "Enter" || event.key === " ")) {
      event.preventDefault();
      focus(tr.dataset.trip, true);
    }
  });
  rows.addEventListener("click", (event) => {
    if (event.target.closest("a")) return;  // the link opens the trip page
    const tr = event.target.closest("tr[data-trip]");
    if (tr) focus(tr.dataset.trip, true);
  });
  function focus(id, pan) {
    const previous = focused;
    focused = id;
    if (previous) drawRoute(previous);
    drawRoute(id);
    const t = trips.get(id);
    autoFit = false;
    if (t && pan) {
      if (t.marker && t.layer === cluster) cluster.zoomToShowLayer(t.marker, () => t.marker.openTooltip());
      else if (t.pos) { map.setView(latLng(t.pos.lon, t.pos.lat), Math.max(map.getZoom(), 15)); if (t.marker) t.marker.openTooltip(); }
      else if (t.line) map.fitBounds(t.line.getBounds(), { maxZoom: 15 });
    }
    scheduleRows();
  }

  function alert(a) {
    const li = document.createElement("li");
    li.dataset.alertKind = a.kind;
    li.className = `severity-${a.severity}`;
    const link = document.createElement("a");
    link.href = `/console/trips/${encodeURIComponent(a.trip_id)}`;
    link.textContent = `${clock.format(new Date(a.ts))} ${a.trip_id} ${labels[a.kind] || a.kind}`;
    li.appendChild(link);
    alerts.prepend(li);
    window.TripGuard.boost(li);
    while (alerts.children.length > 100) alerts.lastChild.remove();
  }

  // Never under a press: a moved car is a new marker (a car being clicked would not be), a new alert moves
  // the list. Held changes are made in order just after the click.
  function handle(message) { window.TripGuard.steady(() => apply(message)); }
  function apply(message) {
    if (message.type === "trip_started") startTrip(message);
    else if (message.type === "position") move(message.trip_id, message.lon, message.lat, message.ts);
    else if (message.type === "trip_ended") endTrip(message.trip_id);
    else if (message.type === "alert") alert(message);
    else if (message.type === "check_in") alert({ ts: new Date().toISOString(), trip_id: message.trip_id,
                                                  kind: `check_in_${message.status}`, severity: "high" });
  }

  // The snapshot is (re)loaded each time the stream says hello, and on resync: positions are not
  // replayed, so after a gap the map is read afresh and trips that ended meanwhile go away.
  function reload() {
    fetch("/console/live/snapshot", { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then((response) => (response.ok ? response.json() : null))  // refused: the shell's banner says why
      .then((snapshot) => window.TripGuard.steady(() => {
        if (!snapshot || gone) return;
        const current = new Set(snapshot.trips.map((t) => t.trip_id));
        [...trips.keys()].forEach((id) => { if (!current.has(id)) endTrip(id); });
        snapshot.trips.forEach(startTrip);
        alerts.replaceChildren();
        snapshot.alerts.slice().reverse().forEach(alert);
      }));
  }

  // A case on a trip (an SOS, an alert or a check-in that became one) marks the trip: red, out of
  // any cluster, its route drawn, first in the list.
  function highlight(id) {
    highlighted.add(id);
    const t = trips.get(id);
    if (t) {
      if (t.line) { routesLayer.removeLayer(t.line); t.line = null; }
      drawRoute(id);
      placeMarker(id);
      if (t.marker) t.marker.bringToFront();
    }
    scheduleRows();
  }
  function onCase(event) {
    const item = event.detail;
    if (item.trip_id && ["open", "acknowledged", "in_progress"].includes(item.status)) highlight(item.trip_id);
  }
  document.addEventListener("tripguard:case", onCase);
  window.TripGuard.cases().forEach((item) => onCase({ detail: item }));

  const unsubscribe = window.TripGuard.subscribe("map", "/console/live/stream",
                                                 { onItem: handle, onHello: reload, onResync: reload });
  return function unmount() {
    gone = true;
    unsubscribe();
    document.removeEventListener("tripguard:case", onCase);
    map.remove();
  };
});
