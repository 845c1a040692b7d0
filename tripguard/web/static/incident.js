// The incident page: where the caller was, and recordings played only with a reason (audited by the API).
(function () {
  "use strict";
  const el = document.getElementById("map");
  if (el && window.L) {
    const [lon, lat] = el.dataset.position.split(",").map(Number);
    const map = L.map(el).setView([lat, lon], 15);
    if (el.dataset.tiles) L.tileLayer(el.dataset.tiles, { maxZoom: 19, attribution: el.dataset.attribution || "" }).addTo(map);
    L.circleMarker([lat, lon], { radius: 9, color: "#b42318", fillColor: "#b42318", fillOpacity: 0.8 }).addTo(map);
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
})();
