// The share page: the route, start and destination, and the car's position and ETA refreshed every
// 5 s. A failed refresh is retried with back-off (and says so); a link that stopped working says that.
(function () {
  "use strict";
  const el = document.getElementById("map");
  const state = document.querySelector("[data-testid=state]");
  const updated = document.querySelector("[data-testid=updated]");
  const labels = JSON.parse(el.dataset.labels);
  const map = window.TripGuardBaseMap.create(el).setView([41.15, -8.61], 13);
  const latlng = (p) => [p[1], p[0]];  // TripGuard's [longitude, latitude] to Leaflet's order
  const asText = (text) => { const span = document.createElement("span"); span.textContent = text; return span; };
  const route = JSON.parse(el.dataset.route);
  if (route.length) {
    const line = L.polyline(route.map(latlng), { color: "#0f6b5c", weight: 4, opacity: 0.7 }).addTo(map);
    map.fitBounds(line.getBounds(), { padding: [20, 20] });
  }
  for (const key of ["start", "destination"]) {
    const point = JSON.parse(el.dataset[key]);
    if (point) L.circleMarker(latlng(point), { radius: 5, color: "#5b6475" }).bindTooltip(asText(labels[key])).addTo(map);
  }
  let car = null;
  function place(position) {
    if (!position) return;
    if (!car) car = L.circleMarker(latlng(position), { radius: 8, color: "#1d2330", fillColor: "#0f6b5c", fillOpacity: 1 })
      .bindTooltip(asText(labels.car)).addTo(map);
    else car.setLatLng(latlng(position));
  }
  place(JSON.parse(el.dataset.position));

  let at = updated.dataset.at ? Date.parse(updated.dataset.at) : null;
  let retryIn = 0;
  function showUpdated() {
    if (retryIn > 0) updated.textContent = updated.dataset.retry.replace("{s}", String(retryIn));
    else if (at) updated.textContent = updated.dataset.template.replace("{s}", String(Math.max(0, Math.round((Date.now() - at) / 1000))));
  }
  showUpdated();
  const ticker = setInterval(() => { if (retryIn > 0) retryIn -= 1; showUpdated(); }, 1000);
  if (el.dataset.arrived === "true") return;

  let failures = 0;
  function refresh() {
    fetch(`/s/${encodeURIComponent(el.dataset.token)}/position`, { credentials: "omit" })
      .then((response) => {
        if (response.status === 404 || response.status === 410) return Promise.reject(new Error("gone"));
        return response.ok ? response.json() : Promise.reject(new Error(String(response.status)));
      })
      .then((now) => {
        failures = 0;
        retryIn = 0;
        place(now.position);
        if (now.at) at = Date.parse(now.at);
        if (now.arrived) {
          state.textContent = state.dataset.arrivedText;
          return;
        }
        state.textContent = state.dataset.onWayText + (now.eta_minutes ? ` ${state.dataset.etaText.replace("{n}", String(now.eta_minutes))}` : "");
        setTimeout(refresh, 5000);
      })
      .catch((error) => {
        if (error.message === "gone") {
          clearInterval(ticker);
          updated.textContent = updated.dataset.gone;
          return;
        }
        failures += 1;
        retryIn = Math.min(60, 5 * 2 ** Math.min(failures - 1, 4));
        showUpdated();
        setTimeout(refresh, retryIn * 1000);
      });
  }
  setTimeout(refresh, 5000);
})();
