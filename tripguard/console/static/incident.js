// The case page: where the caller was, the planned route and the last minutes of the track (all
// [longitude, latitude], drawn as Leaflet's [lat, lon]), the SLA countdown, and recordings played
// only with a reason (audited by the API). The case's state and assignee follow the live stream: an
// agent elsewhere who acknowledges or takes it is seen here at once, and the countdown stops.
window.TripGuard.widget("case", function (card) {
  "use strict";
  const el = document.getElementById("map");
  let map = null;
  if (el && window.L) {
    const labels = JSON.parse(el.dataset.labels);
    map = window.TripGuardBaseMap.create(el);
    const bounds = L.latLngBounds([]);
    const latLng = ([lon, lat]) => [lat, lon];
    const asText = (text) => { const span = document.createElement("span"); span.textContent = text; return span; };
    const tip = (layer, text) => layer.bindTooltip(asText(text));
    const route = JSON.parse(el.dataset.route);
    if (route.length) {
      const line = L.polyline(route.map(latLng), { color: "#0f6b5c", weight: 3, opacity: 0.6, dashArray: "6 6" }).addTo(map);
      tip(line, labels.route);
      bounds.extend(line.getBounds());
    }
    const recent = JSON.parse(el.dataset.recent);
    if (recent.length) {
      const line = L.polyline(recent.map(latLng), { color: "#1d2330", weight: 4 }).addTo(map);
      tip(line, labels.recent);
      bounds.extend(line.getBounds());
    }
    for (const name of ["pickup", "dropoff"]) {
      const at = JSON.parse(el.dataset[name]);
      if (at) { const mark = L.circleMarker(latLng(at), { radius: 6, color: "#0f6b5c" }).addTo(map); tip(mark, labels[name]); bounds.extend(latLng(at)); }
    }
    if (el.dataset.position) {
      const at = el.dataset.position.split(",").map(Number);
      const mark = L.circleMarker(latLng(at), { radius: 9, color: "#b42318", fillColor: "#b42318", fillOpacity: 0.8 }).addTo(map);
      tip(mark, labels.caller);
      bounds.extend(latLng(at));
    }
    if (bounds.isValid()) map.fitBounds(bounds, { maxZoom: 16, padding: [20, 20] });
  }
  const form = document.getElementById("evidence");
  const player = document.getElementById("player");
  // Trip positions as evidence: downloaded from the API, which audits the reason and notes it on the case.
  document.querySelectorAll("button.trajectory").forEach((button) => {
    button.addEventListener("click", () => {
      if (!form.reportValidity()) return;
      const params = new URLSearchParams({ purpose: form.purpose.value, reason: form.reason.value,
                                           format: button.dataset.format, incident_id: form.dataset.incident });
      window.location.assign(`/api/v1/telematics/trips/${encodeURIComponent(form.dataset.trip)}/trajectory?${params}`);
    });
  });
  document.querySelectorAll("button.play").forEach((button) => {
    button.addEventListener("click", () => {
      if (!form.reportValidity()) return;
      const params = new URLSearchParams({ incident_id: form.dataset.incident, reason: form.reason.value });
      const media = document.createElement(button.dataset.kind === "video" ? "video" : "audio");
      media.controls = true;
      media.src = `/api/v1/recordings/${encodeURIComponent(button.dataset.recording)}/content?${params}`;
      player.replaceChildren(media);
      media.play().catch(() => {});
    });
  });

  const names = JSON.parse(card.dataset.names);
  const labels = JSON.parse(card.dataset.labels);
  const status = card.querySelector("[data-testid=incident-status]");
  function onCase(event) { window.TripGuard.steady(() => showCase(event.detail)); }  // never under a press
  function showCase(item) {
    // Never an older state over the one shown (this page may be newer than a hello read before it).
    if (item.id !== card.dataset.incident || (item.version || 0) < Number(card.dataset.version)) return;
    card.dataset.version = String(item.version || 0);
    if (item.status !== status.dataset.status) {
      status.dataset.status = item.status;
      status.textContent = labels.states[item.status] || item.status;
      card.querySelector("[data-testid=case-changed]").hidden = false;
    }
    if (item.status !== "open") {  // acknowledged: no more countdown, and no acknowledge button
      card.querySelectorAll("[data-testid=due], [data-testid=due-label], button[value=acknowledge]")
        .forEach((node) => node.remove());
    }
    card.querySelector("[data-testid=assignee]").textContent =
      item.assigned_to ? names[item.assigned_to] || item.assigned_to : "—";
  }
  document.addEventListener("tripguard:case", onCase);
  return () => {
    document.removeEventListener("tripguard:case", onCase);
    if (map) map.remove();
  };
});
