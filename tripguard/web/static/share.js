// The share page: the route, start and destination, and the car's position refreshed every 5 s.
(function () {
  "use strict";
  const el = document.getElementById("map");
  const map = L.map(el).setView([41.15, -8.61], 13);
  if (el.dataset.tiles) {
    L.tileLayer(el.dataset.tiles, { maxZoom: 19, attribution: el.dataset.attribution || "" }).addTo(map);
  }
  const latlng = (p) => [p[1], p[0]];
  const route = JSON.parse(el.dataset.route);
  if (route.length) {
    const line = L.polyline(route.map(latlng), { color: "#0f6b5c", weight: 4, opacity: 0.7 }).addTo(map);
    map.fitBounds(line.getBounds(), { padding: [20, 20] });
  }
  for (const key of ["start", "destination"]) {
    const point = JSON.parse(el.dataset[key]);
    if (point) L.circleMarker(latlng(point), { radius: 5, color: "#5b6475" }).addTo(map);
  }
  let car = null;
  function place(position) {
    if (!position) return;
    if (!car) car = L.circleMarker(latlng(position), { radius: 8, color: "#1d2330", fillColor: "#0f6b5c", fillOpacity: 1 }).addTo(map);
    else car.setLatLng(latlng(position));
  }
  place(JSON.parse(el.dataset.position));
  if (el.dataset.arrived === "true") return;
  const timer = setInterval(() => {
    fetch(`/s/${encodeURIComponent(el.dataset.token)}/position`, { credentials: "omit" })
      .then((response) => (response.ok ? response.json() : Promise.reject(response.status)))
      .then((now) => { place(now.position); if (now.arrived) clearInterval(timer); })
      .catch(() => clearInterval(timer));
  }, 5000);
})();
