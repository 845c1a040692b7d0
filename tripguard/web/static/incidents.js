// The SOS queue: cases arrive over the shell's live stream (console.js, which also sounds and
// announces them). A new case is added at the top when the list shows live cases on its first page
// and the case passes its filters; a change of state updates its row.
(function () {
  "use strict";
  const queue = document.getElementById("queue");
  const labels = JSON.parse(queue.dataset.labels);
  const filters = JSON.parse(queue.dataset.filters);
  const time = new Intl.DateTimeFormat("en-GB", { timeZone: queue.dataset.zone, month: "2-digit", day: "2-digit",
                                                  hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
  function cell(text, cls) {
    const td = document.createElement("td");
    if (cls) td.className = cls;
    td.textContent = text;
    return td;
  }
  function subject(item) {  // the trip or order; one the caller named that is not linked to them, marked
    const claimed = item.claimed_trip_id || item.claimed_order_id;
    const td = cell(item.trip_id || item.order_id || claimed || "—");
    if (claimed) {
      const tag = document.createElement("span");
      tag.className = "tag bad";
      tag.textContent = labels.unverified;
      td.append(" ", tag);
    }
    return td;
  }
  function passes(item) {
    const live = ["open", "acknowledged", "in_progress"];
    if (filters.state === "live" && !live.includes(item.status)) return false;
    if (filters.state && !["live", "all"].includes(filters.state) && filters.state !== item.status) return false;
    if (filters.source && filters.source !== item.source) return false;
    return !filters.assignee || filters.assignee === "none";
  }
  function show(item) {
    let row = queue.querySelector(`tr[data-incident="${CSS.escape(item.id)}"]`);
    if (row) {
      row.querySelector(".status").textContent = labels.states[item.status] || item.status;
      if (item.status !== "open") row.classList.remove("overdue");
      if (item.escalated) row.classList.add("escalated");
      return;
    }
    if (item.already || queue.dataset.live !== "true" || !passes(item)) return;  // already: known at connection
    const empty = queue.querySelector("tr.empty");
    if (empty) empty.remove();
    row = document.createElement("tr");
    row.dataset.incident = item.id;
    row.className = `severity-${item.severity} new`;
    const raised = cell("", "mono");
    raised.append(time.format(new Date(item.created_at)).replace(",", ""), document.createElement("br"));
    const age = document.createElement("span");
    age.className = "muted small";
    age.dataset.age = item.created_at;
    raised.appendChild(age);
    row.appendChild(raised);
    const link = document.createElement("a");
    link.href = `/console/incidents/${encodeURIComponent(item.id)}`;
    link.textContent = item.id;
    const id = document.createElement("td");
    id.appendChild(link);
    row.appendChild(id);
    row.appendChild(cell(labels.sources[item.source] || item.source));
    row.appendChild(cell(labels.severities[item.severity] || item.severity));
    row.appendChild(cell(labels.states[item.status] || item.status, "status"));
    row.appendChild(subject(item));
    row.appendChild(cell(labels.nobody));
    const due = cell("", "mono");
    const countdown = document.createElement("span");
    countdown.dataset.countdown = item.ack_due_at;
    countdown.dataset.overdue = labels.overdue;
    countdown.textContent = time.format(new Date(item.ack_due_at)).slice(-8);
    due.appendChild(countdown);
    row.appendChild(due);
    queue.prepend(row);
    window.TripGuard.tick();
  }
  document.addEventListener("tripguard:case", (event) => show(event.detail));
})();
