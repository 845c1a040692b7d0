// The console's shell, on every page: the navigation toggle, live streams that never go silent
// (state shown, reconnection with back-off, catch-up from the last event id), and new cases
// announced wherever the agent is (badge, aria-live, sound once allowed).
(function () {
  "use strict";
  const body = document.body;
  const labels = JSON.parse(document.getElementById("shell-labels").textContent);

  // ---- navigation on narrow screens --------------------------------------------------------
  const toggle = document.querySelector(".nav-toggle");
  if (toggle) {
    toggle.addEventListener("click", () => {
      const open = toggle.getAttribute("aria-expanded") !== "true";
      toggle.setAttribute("aria-expanded", String(open));
      document.getElementById("main-nav").classList.toggle("open", open);
    });
  }

  // ---- destructive actions ask first -------------------------------------------------------
  // A button with data-confirm opens the dialog; confirmed, its form goes with confirm=yes (the
  // server asks again on a page of its own when that is missing, so nothing runs unconfirmed).
  const dialog = document.getElementById("confirm-dialog");
  document.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-confirm]");
    if (!button || !dialog || button.form.querySelector("input[name=confirm]")) return;
    event.preventDefault();
    dialog.querySelector("#confirm-question").textContent = button.dataset.confirm;
    dialog.querySelector("#confirm-consequence").textContent = button.dataset.consequence || "";
    dialog.querySelector("#confirm-yes").textContent = button.textContent.trim();
    dialog.returnValue = "";
    dialog.onclose = () => {
      if (dialog.returnValue !== "confirm") return;
      const confirmed = document.createElement("input");
      Object.assign(confirmed, { type: "hidden", name: "confirm", value: "yes" });
      button.form.appendChild(confirmed);
      button.form.requestSubmit(button);
    };
    dialog.showModal();
  });

  // ---- live streams ------------------------------------------------------------------------
  const indicator = document.getElementById("live-state");
  const states = new Map();
  const RANK = { connected: 0, connecting: 1, reconnecting: 2 };

  function showState() {
    let worst = "connected";
    states.forEach((state) => { if (RANK[state] > RANK[worst]) worst = state; });
    body.dataset.live = states.size ? worst : "";
    if (!indicator) return;
    indicator.hidden = states.size === 0;
    indicator.dataset.state = worst;
    indicator.textContent = labels[worst];
  }

  // Opens `url` as a server-sent event stream and keeps it open: a missed heartbeat, an error or a
  // server's `closing` leads to a new connection that names the last event seen, so the server
  // sends what changed meanwhile. handlers: onItem(item), onHello(hello, reconnected), onResync().
  function openStream(name, url, handlers) {
    let cursor = body.dataset.cursor || "";
    let source = null;
    let failures = 0;
    let opened = false;
    let heartbeatMs = 15000;
    let watchdog = null;
    let pending = null;

    function setState(state) {
      states.set(name, state);
      body.dataset[`stream${name[0].toUpperCase()}${name.slice(1)}`] = state;
      showState();
    }
    function alive(event) {
      if (event && event.lastEventId) cursor = event.lastEventId;
      clearTimeout(watchdog);
      watchdog = setTimeout(() => restart(), heartbeatMs * 2.5);  // silent too long: a dead connection
    }
    function connect() {
      pending = null;
      setState(opened ? "reconnecting" : "connecting");
      const sep = url.includes("?") ? "&" : "?";
      source = new EventSource(cursor ? `${url}${sep}last_event_id=${encodeURIComponent(cursor)}` : url);
      source.addEventListener("hello", (event) => {
        const hello = JSON.parse(event.data);
        heartbeatMs = (hello.heartbeat_s || 15) * 1000;
        alive(event);
        const reconnected = opened;
        opened = true;
        failures = 0;
        setState("connected");
        if (handlers.onHello) handlers.onHello(hello, reconnected);
      });
      source.addEventListener("heartbeat", alive);
      source.addEventListener("resync", (event) => { alive(event); if (handlers.onResync) handlers.onResync(); });
      source.addEventListener("closing", () => restart(300 + Math.random() * 700));
      source.onmessage = (event) => { alive(event); handlers.onItem(JSON.parse(event.data)); };
      source.onerror = () => restart();
    }
    function restart(delay) {
      clearTimeout(watchdog);
      if (source) { source.close(); source = null; }
      if (pending) return;
      failures += 1;
      setState("reconnecting");
      const backoff = Math.min(15000, 1000 * 2 ** Math.min(failures - 1, 4)) * (0.75 + Math.random() * 0.5);
      pending = setTimeout(connect, delay === undefined ? backoff : delay);
    }
    window.addEventListener("online", () => { if (pending) { clearTimeout(pending); connect(); } });
    connect();
  }

  // ---- sound (the browser allows it only after a click on the page) ------------------------
  const soundButton = document.getElementById("sound");
  let audio = null;
  function soundWanted() { return localStorage.getItem("tg-sound") === "on"; }
  function showSound() {
    if (!soundButton) return;
    const on = soundWanted();
    soundButton.setAttribute("aria-pressed", String(on));
    soundButton.textContent = !on ? labels.sound_off : audio && audio.state === "running" ? labels.sound_on : labels.sound_blocked;
  }
  function unlockAudio() {
    if (!soundWanted()) return;
    audio = audio || new AudioContext();
    if (audio.state !== "running") audio.resume().then(showSound, showSound);
    showSound();
  }
  if (soundButton) {
    soundButton.addEventListener("click", (event) => {
      event.stopPropagation();
      localStorage.setItem("tg-sound", soundWanted() && audio && audio.state === "running" ? "off" : "on");
      unlockAudio();
      showSound();
    });
    for (const type of ["pointerdown", "keydown"]) document.addEventListener(type, unlockAudio, { once: true });
    showSound();
  }
  function beep() {
    if (!audio || audio.state !== "running" || !soundWanted()) return;
    const tone = audio.createOscillator();
    const gain = audio.createGain();
    tone.frequency.value = 880;
    gain.gain.setValueAtTime(0.2, audio.currentTime);
    gain.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + 0.6);
    tone.connect(gain).connect(audio.destination);
    tone.start();
    tone.stop(audio.currentTime + 0.6);
  }

  // ---- cases: badge and announcement on every page ----------------------------------------
  if ("watchCases" in body.dataset) {
    const badge = document.getElementById("sos-badge");
    const announcer = document.getElementById("announce");
    const waiting = new Set();
    const announced = JSON.parse(sessionStorage.getItem("tg-announced") || "[]");
    function showBadge() {
      badge.hidden = waiting.size === 0;
      badge.dataset.count = String(waiting.size);
      badge.querySelector("b").textContent = String(waiting.size);
    }
    function announce(item) {
      announced.push(item.id);
      sessionStorage.setItem("tg-announced", JSON.stringify(announced.slice(-200)));
      const what = labels[`new_${item.source}`] || labels.new_sos;
      announcer.textContent = `${what}: ${item.trip_id || item.order_id || item.id}`;
      badge.classList.remove("flash");
      void badge.offsetWidth;  // restart the animation
      badge.classList.add("flash");
      beep();
    }
    openStream("cases", "/console/incidents/stream", {
      onHello(hello) {
        waiting.clear();
        (hello.open || []).forEach((id) => waiting.add(id));
        showBadge();
        // Cases already under way: pages mark them (the map its trips), but nothing is announced.
        (hello.live || []).forEach((item) => document.dispatchEvent(
          new CustomEvent("tripguard:case", { detail: { ...item, already: true } })));
      },
      onItem(item) {
        if (item.type !== "incident") return;
        if (item.status === "open") waiting.add(item.id); else waiting.delete(item.id);
        showBadge();
        if (item.status === "open" && !announced.includes(item.id)) announce(item);
        document.dispatchEvent(new CustomEvent("tripguard:case", { detail: item }));
      },
    });
  }

  // ---- clocks: time left to acknowledge (overdue once passed) and age, every second -----------
  function span(seconds) {
    const s = Math.abs(Math.round(seconds));
    if (s < 60) return `${s} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
    return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  }
  function tick() {
    const now = Date.now();
    document.querySelectorAll("[data-countdown]").forEach((el) => {
      el.dataset.clock = el.dataset.clock || el.textContent;
      const left = (Date.parse(el.dataset.countdown) - now) / 1000;
      const overdue = left < 0;
      el.textContent = overdue ? `${el.dataset.clock} · ${el.dataset.overdue} ${span(left)}` : `${el.dataset.clock} · ${span(left)}`;
      el.classList.toggle("overdue", overdue);
      const row = el.closest("tr");
      if (row && overdue) row.classList.add("overdue");
    });
    document.querySelectorAll("[data-age]").forEach((el) => { el.textContent = span((now - Date.parse(el.dataset.age)) / 1000); });
  }
  tick();
  setInterval(tick, 1000);

  window.TripGuard = { openStream, tick };
})();
