// The SOS queue: cases arrive over the shell's live stream (console.js), which also sounds and announces them.
(function () {
  "use strict";
  const queue = document.getElementById("queue");
  const states = JSON.parse(queue.dataset.stateLabels);
  const severities = JSON.parse(queue.dataset.severityLabels);
  function cell(text, cls) {
    const td = document.createElement("td");
    if (cls) td.className = cls;
    td.textContent = text;
    return td;
  }
  function show(item) {
    let row = queue.querySelector(`tr[data-incident="${CSS.escape(item.id)}"]`);
    if (row) {
      row.querySelector(".status").textContent = states[item.status] || item.status;
      if (item.status === "closed") row.remove();
      return;
    }
    if (item.status === "closed") return;
    row = document.createElement("tr");
    row.dataset.incident = item.id;
    row.className = `severity-${item.severity} new`;
    row.appendChild(cell(item.created_at.slice(11, 19), "mono"));
    const link = document.createElement("a");
    link.href = `/console/incidents/${encodeURIComponent(item.id)}`;
    link.textContent = item.id;
    const id = document.createElement("td");
    id.appendChild(link);
    row.appendChild(id);
    row.appendChild(cell(severities[item.severity] || item.severity));
    row.appendChild(cell(states[item.status] || item.status, "status"));
    row.appendChild(cell(item.trip_id || item.order_id || "—"));
    row.appendChild(cell(item.ack_due_at.slice(11, 19), "mono"));
    queue.prepend(row);
  }
  document.addEventListener("tripguard:case", (event) => show(event.detail));
})();
