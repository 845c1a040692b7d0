// The SOS queue: new cases arrive over the live stream, with a sound once the agent has allowed it.
(function () {
  "use strict";
  const queue = document.getElementById("queue");
  const states = JSON.parse(queue.dataset.stateLabels);
  const severities = JSON.parse(queue.dataset.severityLabels);
  const button = document.getElementById("sound");
  let audio = null;
  button.addEventListener("click", () => {
    audio = audio || new AudioContext();
    button.setAttribute("aria-pressed", "true");
    button.textContent = button.dataset.on;
  });
  function beep() {
    if (!audio) return;
    const tone = audio.createOscillator();
    const gain = audio.createGain();
    tone.frequency.value = 880;
    gain.gain.setValueAtTime(0.2, audio.currentTime);
    gain.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + 0.6);
    tone.connect(gain).connect(audio.destination);
    tone.start();
    tone.stop(audio.currentTime + 0.6);
  }
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
    beep();
  }
  const source = new EventSource("/console/live/stream");
  source.onmessage = (event) => {
    const item = JSON.parse(event.data);
    if (item.type === "incident") show(item);
  };
  source.onopen = () => { document.body.dataset.live = "connected"; };
})();
