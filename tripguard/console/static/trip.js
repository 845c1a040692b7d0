// A trip's page: the trajectory is evidence, fetched only when the agent names a purpose and a reason.
window.TripGuard.widget("trip", function (root) {
  "use strict";
  // Operator-supplied text (trip ids, labels) goes into the DOM as text, never as HTML.
  function asText(value) {
    const span = document.createElement("span");
    span.textContent = String(value);
    return span;
  }

  const el = root.querySelector("#map");
  const map = window.TripGuardBaseMap.create(el).setView([41.15, -8.61], 12);
  const unmount = () => { map.remove(); delete document.body.dataset.trajectory; };
  const form = document.getElementById("evidence");
  if (!form) return unmount;
  const status = document.getElementById("evidence-status");
  const styles = {
    trajectory: { color: "#1d2330", weight: 4 },
    planned_route: { color: "#0f6b5c", weight: 3, opacity: 0.6, dashArray: "6 6" },
  };
  let layer = null;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const params = new URLSearchParams({ purpose: form.purpose.value, reason: form.reason.value, format: "geojson" });
    fetch(`/api/v1/telematics/trips/${encodeURIComponent(el.dataset.trip)}/trajectory?${params}`,
          { credentials: "same-origin" })
      .then((response) => response.ok ? response.json() : response.json().then((p) => Promise.reject(p)))
      .then((collection) => {
        if (layer) layer.remove();
        layer = L.geoJSON(collection, {
          style: (feature) => styles[feature.properties.role] || {},
          // An alert's point (where it happened) is named by its kind; pickup, drop-off and end by their role.
          pointToLayer: (feature, latlng) => L.circleMarker(latlng, feature.properties.role === "alert"
            ? { radius: 7, color: "#b42318" } : { radius: 6, color: "#1d2330" })
            .bindTooltip(asText(feature.properties.kind || feature.properties.role)),
        }).addTo(map);
        if (layer.getBounds().isValid()) map.fitBounds(layer.getBounds(), { padding: [20, 20] });
        const line = collection.features.find((f) => f.properties.role === "trajectory");
        status.textContent = `${line ? line.geometry.coordinates.length : 0} ${status.dataset.pointsLabel}`;
        document.body.dataset.trajectory = "shown";
      })
      .catch((problem) => { status.textContent = (problem && problem.detail) || "error"; });
  });
  return unmount;
});
