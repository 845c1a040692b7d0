// The SOS queue: cases arrive over the shell's live stream (console.js, which also sounds and
// announces them). A new case is added at the top when the list shows live cases on its first page
// and the case passes its filters; a change updates its row: state, assignee, and the countdown,
// which stops once the case is acknowledged (by anyone: the row never turns "overdue" after that).
window.TripGuard.widget("queue", function (queue) {
  "use strict";
  const labels = JSON.parse(queue.dataset.labels);
  const filters = JSON.parse(queue.dataset.filters);
  const names = JSON.parse(queue.dataset.names || "{}");
  const time = new Intl.DateTimeFormat("en-GB", { timeZone: queue.dataset.zone, month: "2-digit", day: "2-digit",
                                                  hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
  const clock = new Intl.DateTimeFormat("en-GB", { timeZone: queue.dataset.zone, hour: "2-digit", minute: "2-digit",
                                                   second: "2-digit", hour12: false });
  function cell(text, cls) {
    const td = document.createElement("td");
    if (cls) td.className = cls;
    td.textContent = text;
    return td;
  }
  function ref(text) {  // an id shown as an id (the server's `ref` filter)
    const code = document.createElement("code");
    code.className = "ref";
    code.translate = false;
    code.textContent = text;
    return code;
  }
  function subject(item) {  // the trip or order; one the caller named that is not linked to them, marked
    const claimed = item.claimed_trip_id || item.claimed_order_id;
    const shown = item.trip_id || item.order_id || claimed;
    const td = cell(shown ? "" : "—");
    if (shown) td.appendChild(ref(shown));
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
  function assignee(item) {
    return item.assigned_to ? names[item.assigned_to] || item.assigned_to : labels.nobody;
  }
  function statusCell(td, item) {
    td.textContent = labels.states[item.status] || item.status;
    if (item.escalated_at) {
      const tag = document.createElement("span");
      tag.className = "tag bad";
      tag.textContent = labels.escalated;
      td.append(" ", tag);
    }
  }
  // Waiting: the time left to acknowledge (the shell's clock counts it down); after: when it was.
  function dueCell(td, item) {
    if (item.status === "open") {
      if (td.querySelector("[data-countdown]")) return;
      const countdown = document.createElement("span");
      countdown.dataset.countdown = item.ack_due_at;
      countdown.dataset.overdue = labels.overdue;
      countdown.textContent = clock.format(new Date(item.ack_due_at));
      td.replaceChildren(countdown);
    } else {
      td.textContent = item.acknowledged_at ? `${labels.acknowledged} ${clock.format(new Date(item.acknowledged_at))}` : "—";
    }
  }
  function update(row, item) {
    // Never an older state over the one shown (the page may be newer than what the shell heard).
    if ((item.version || 0) < Number(row.dataset.version || 0)) return;
    row.dataset.version = String(item.version || 0);
    statusCell(row.querySelector(".status"), item);
    row.querySelector(".assignee").textContent = assignee(item);
    dueCell(row.querySelector(".due"), item);
    if (item.status !== "open") row.classList.remove("overdue");
    row.classList.toggle("escalated", Boolean(item.escalated_at));
  }
  function show(item) {
    let row = queue.querySelector(`tr[data-incident="${CSS.escape(item.id)}"]`);
    if (row) { update(row, item); return; }
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
    link.appendChild(ref(item.id));
    const id = document.createElement("td");
    id.appendChild(link);
    row.appendChild(id);
    row.appendChild(cell(labels.sources[item.source] || item.source));
    row.appendChild(cell(labels.severities[item.severity] || item.severity));
    row.appendChild(cell("", "status"));
    row.appendChild(subject(item));
    row.appendChild(cell("", "assignee"));
    row.appendChild(cell("", "mono due"));
    update(row, item);
    queue.prepend(row);
    window.TripGuard.boost(row);
    window.TripGuard.tick();
  }
  function onCase(event) { window.TripGuard.steady(() => show(event.detail)); }  // never under a press
  document.addEventListener("tripguard:case", onCase);
  // What changed while the page was on its way here (the shell knows every live case).
  window.TripGuard.cases().forEach((item) => {
    if (queue.querySelector(`tr[data-incident="${CSS.escape(item.id)}"]`)) show(item);
  });
  return () => document.removeEventListener("tripguard:case", onCase);
});
