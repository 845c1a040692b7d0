// The live map: a snapshot, then server-sent events (the shell's openStream). No build step; Leaflet from xstatic.
(function () {
  "use strict";
  // Operator-supplied text (trip ids, labels) goes into the DOM as text, never as HTML.
  function asText(value) {
    const span = document.createElement("span");
    span.textContent = String(value);
    return span;
  }

  const el = document.getElementById("map");
  const map = L.map(el, { preferCanvas: false }).setView([41.15, -8.61], 12);
  if (el.dataset.tiles) {
    L.tileLayer(el.dataset.tiles, { maxZoom: 19, attribution: el.dataset.attribution || "" }).addTo(map);
  }
  const trips = new Map();
  const rows = document.getElementById("trips");
  const alerts = document.getElementById("alerts");
  const count = document.getElementById("trip-count");
  const labels = JSON.parse(document.getElementById("kind-labels").textContent);
  // Keep every active route in view until the agent takes the map in hand.
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
      const bounds = L.latLngBounds([]);
      trips.forEach((entry) => { if (entry.route) bounds.extend(entry.route.getBounds()); });
      if (bounds.isValid()) map.fitBounds(bounds, { maxZoom: 15, padding: [20, 20] });
    });
  }

  function row(id) {
    let tr = rows.querySelector(`tr[data-trip="${CSS.escape(id)}"]`);
    if (!tr) {
      tr = document.createElement("tr");
      tr.dataset.trip = id;
      for (const cls of ["id", "pos", "ts"]) { const td = document.createElement("td"); td.className = cls; tr.appendChild(td); }
      const link = document.createElement("a");
      link.href = `/console/trips/${encodeURIComponent(id)}`;
      link.textContent = id;
      tr.querySelector(".id").appendChild(link);
      rows.appendChild(tr);
    }
    return tr;
  }

  function startTrip(t) {
    const entry = trips.get(t.trip_id) || {};
    if (!entry.route && t.route && t.route.length) {
      entry.route = L.polyline(t.route.map(([lon, lat]) => [lat, lon]), { color: "#0f6b5c", weight: 3, opacity: 0.6 }).addTo(map);
    }
    trips.set(t.trip_id, entry);
    refit();
    row(t.trip_id);
    if (t.position) move(t.trip_id, t.position.lon, t.position.lat, t.position.ts);
    count.textContent = trips.size;
  }

  function move(id, lon, lat, ts) {
    const entry = trips.get(id) || {};
    if (!entry.marker) {
      entry.marker = L.circleMarker([lat, lon], { radius: 6, color: "#1d2330", fillColor: "#0f6b5c", fillOpacity: 0.9 }).addTo(map);
      entry.marker.bindTooltip(asText(id));  // Leaflet renders a string as HTML
    } else {
      entry.marker.setLatLng([lat, lon]);
    }
    trips.set(id, entry);
    const tr = row(id);
    if (highlighted.has(id)) highlight(id);
    tr.querySelector(".pos").textContent = `${lon.toFixed(5)}, ${lat.toFixed(5)}`;
    tr.querySelector(".ts").textContent = ts.slice(11, 19);
    count.textContent = trips.size;
  }

  function endTrip(id) {
    const entry = trips.get(id);
    if (entry) { if (entry.route) entry.route.remove(); if (entry.marker) entry.marker.remove(); }
    trips.delete(id);
    const tr = rows.querySelector(`tr[data-trip="${CSS.escape(id)}"]`);
    if (tr) tr.remove();
    count.textContent = trips.size;
  }

  function alert(a) {
    const li = document.createElement("li");
    li.dataset.alertKind = a.kind;
    li.className = `severity-${a.severity}`;
    const link = document.createElement("a");
    link.href = `/console/trips/${encodeURIComponent(a.trip_id)}`;
    link.textContent = `${a.ts.slice(11, 19)} ${a.trip_id} ${labels[a.kind] || a.kind}`;
    li.appendChild(link);
    alerts.prepend(li);
    const entry = trips.get(a.trip_id);
    if (entry && entry.marker && a.severity === "high") entry.marker.setStyle({ fillColor: "#b42318" });
  }

  function handle(message) {
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
    fetch("/console/live/snapshot", { credentials: "same-origin" })
      .then((response) => response.json())
      .then((snapshot) => {
        const current = new Set(snapshot.trips.map((t) => t.trip_id));
        [...trips.keys()].forEach((id) => { if (!current.has(id)) endTrip(id); });
        snapshot.trips.forEach(startTrip);
        alerts.replaceChildren();
        snapshot.alerts.slice().reverse().forEach(alert);
        highlighted.forEach(highlight);
      });
  }

  // A case on a trip (an SOS, an alert or a check-in that became one) marks the trip on the map.
  const highlighted = new Set();
  function highlight(id) {
    highlighted.add(id);
    const entry = trips.get(id);
    if (entry && entry.marker) {
      entry.marker.setStyle({ fillColor: "#b42318", color: "#b42318", radius: 10 });
      entry.marker.bringToFront();
    }
    const tr = rows.querySelector(`tr[data-trip="${CSS.escape(id)}"]`);
    if (tr) tr.classList.add("case");
  }
  document.addEventListener("tripguard:case", (event) => {
    const item = event.detail;
    if (item.trip_id && ["open", "acknowledged", "in_progress"].includes(item.status)) highlight(item.trip_id);
  });

  window.TripGuard.openStream("map", "/console/live/stream", {
    onItem: handle,
    onHello: reload,
    onResync: reload,
  });
})();
