// The console's shell, on every page. The console keeps one document across its pages: links and
// forms are boosted by htmx (the body is swapped, the scripts stay), so the live connection and the
// unlocked sound survive navigation. Page widgets (maps, the queue, charts) register here and are
// mounted on each page that has them and unmounted when it goes.
// The shell: the navigation toggle, destructive actions that ask first, the live streams' state
// (shown, and page-wide banners when a stream is lost or refused), new cases announced wherever the
// agent is (badge, aria-live, the alarm of alarm.js), and the clocks of the SLA.
(function () {
  "use strict";
  const streams = window.TripGuardStreams;
  const alarm = window.TripGuardAlarm;
  const LIVE = ["open", "acknowledged", "in_progress"];
  const LOST_AFTER_MS = 3000;  // a reconnection longer than this is a lost connection: the banner shows
  let labels = {};
  let shell = {};
  const byId = (id) => document.getElementById(id);

  function readShell() {
    const labelsEl = byId("shell-labels");
    const stateEl = byId("shell-state");
    labels = labelsEl ? JSON.parse(labelsEl.textContent) : {};
    shell = stateEl ? JSON.parse(stateEl.textContent) : {};
  }

  // ---- the page holds still under a pressed pointer -------------------------------------------
  // A click is a press and a release; when what is under the pointer moves between the two (the banner
  // the press itself hides by unlocking the sound, a case added above the row being clicked, a list
  // redrawn), the browser sends the click to what both have in common, the page, and it is lost. Changes
  // that move the page wait while the pointer is pressed, and are made just after its click.
  const HOLD_AT_MOST_MS = 1500;  // a press longer than this is no click: the page moves on
  let pressed = null;
  const held = new Set();
  function steady(change) {
    if (pressed) held.add(change); else change();
  }
  function released() {
    if (!pressed) return;
    clearTimeout(pressed);
    pressed = null;
    setTimeout(() => {  // after the click, which follows the release in the same task
      const changes = [...held];
      held.clear();
      changes.forEach((change) => {
        try { change(); } catch (error) { setTimeout(() => { throw error; }); }  // one failing change stops no other
      });
    }, 0);
  }
  // On the window, capturing: before any listener of the page sees the press (alarm.js unlocks on it).
  window.addEventListener("pointerdown", (event) => {
    if (!event.isPrimary || event.button > 1) return;  // the main button, or the middle one (a new tab)
    clearTimeout(pressed);
    pressed = setTimeout(released, HOLD_AT_MOST_MS);
  }, true);
  for (const type of ["pointerup", "pointercancel"]) window.addEventListener(type, released, true);
  window.addEventListener("blur", released);  // the window's own (an element's blur is seen only capturing)

  // ---- clicks the shell answers: the navigation on narrow screens, the sound, confirmations ----
  document.addEventListener("click", (event) => {
    const toggle = event.target.closest(".nav-toggle");
    if (toggle) {
      const open = toggle.getAttribute("aria-expanded") !== "true";
      toggle.setAttribute("aria-expanded", String(open));
      byId("main-nav").classList.toggle("open", open);
      return;
    }
    if (event.target.closest("#sound")) {
      if (alarm.state() === "on") alarm.turnOff(); else alarm.turnOn();
      return;
    }
    if (event.target.closest("#sound-on")) { alarm.turnOn(); return; }
    // A button with data-confirm opens the dialog; confirmed, its form goes with confirm=yes (the
    // server asks again on a page of its own when that is missing, so nothing runs unconfirmed).
    // With data-confirm-from="<select name>", the chosen option's own data-confirm/-consequence are
    // asked (a sanction asks by its kind). A form not filled in yet is left to the browser to say so.
    const button = event.target.closest("button[data-confirm]");
    const dialog = byId("confirm-dialog");
    if (!button || !dialog || !button.form || button.form.querySelector("input[name=confirm]")) return;
    if (!button.form.checkValidity()) return;
    event.preventDefault();
    const from = button.dataset.confirmFrom && button.form.elements.namedItem(button.dataset.confirmFrom);
    const chosen = from && from.selectedOptions && from.selectedOptions[0];
    const asked = chosen && chosen.dataset.confirm ? chosen.dataset : button.dataset;
    dialog.querySelector("#confirm-question").textContent = asked.confirm;
    dialog.querySelector("#confirm-consequence").textContent = asked.consequence || "";
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

  // ---- page widgets ----------------------------------------------------------------------------
  const widgets = new Map();  // name -> init(element) returning its cleanup
  let mounted = [];  // { element, cleanup }
  let started = false;
  function widget(name, init) {
    widgets.set(name, init);
    if (started) mount();
  }
  function mount() {
    mounted = mounted.filter(({ element, cleanup }) => {
      if (element.isConnected) return true;
      if (cleanup) cleanup();
      return false;
    });
    document.querySelectorAll("[data-widget]").forEach((element) => {
      const init = widgets.get(element.dataset.widget);
      if (!init || mounted.some((m) => m.element === element)) return;
      mounted.push({ element, cleanup: init(element) || null });
    });
  }

  // ---- boosted navigation ----------------------------------------------------------------------
  // <html data-navigating> while a boosted page is on its way (what a test, or a script, waits for).
  let nextLang = null;
  let swapping = false;
  const root = document.documentElement;
  document.addEventListener("htmx:beforeRequest", (event) => {
    if (event.detail.boosted || (event.detail.requestConfig && event.detail.requestConfig.boosted)) {
      root.dataset.navigating = "true";
    }
  });
  document.addEventListener("htmx:afterRequest", () => { if (!swapping) delete root.dataset.navigating; });
  document.addEventListener("htmx:beforeSwap", (event) => {
    const detail = event.detail;
    if (!detail.boosted) {  // a part of the page refreshed (the home's figures, the audit rows): never under a press
      if (pressed && detail.shouldSwap && detail.target) {
        detail.shouldSwap = false;
        const { target, serverResponse } = detail;
        const style = (detail.requestConfig.elt.getAttribute("hx-swap") || "innerHTML").split(" ")[0];
        // Not when the press was a click that is taking the agent to another page (it replaces this one, and
        // htmx would forget that the link being followed was boosted).
        steady(() => {
          if (target.isConnected && !root.dataset.navigating) window.htmx.swap(target, serverResponse, { swapStyle: style });
        });
      }
      return;
    }
    swapping = true;
    const type = detail.xhr.getResponseHeader("Content-Type") || "";
    if (!type.startsWith("text/html")) {  // a download that was not marked hx-boost="false"
      detail.shouldSwap = false;
      swapping = false;
      if (detail.requestConfig.verb === "get") window.location.assign(detail.xhr.responseURL);
      return;
    }
    if (detail.isError) { detail.shouldSwap = true; detail.isError = false; }  // console errors are pages
    const lang = /<html[^>]*\slang="([^"]+)"/.exec(detail.serverResponse);
    nextLang = lang ? lang[1] : null;
  });
  // A boosted page that cannot be fetched (a time-out, the network) is opened the ordinary way.
  for (const type of ["htmx:sendError", "htmx:timeout"]) {
    document.addEventListener(type, (event) => {
      const config = event.detail.requestConfig;
      if (config && config.boosted && config.verb === "get") window.location.assign(config.path);
    });
  }
  function swapped() {
    swapping = false;
    delete root.dataset.navigating;
    if (nextLang) { document.documentElement.lang = nextLang; nextLang = null; }
    refresh();
    // Signed in with a gesture: the moment to ask for notifications, once (never in an emergency; the
    // banner's button asks again).
    if (shell.watch_cases && !waiting.size && navigator.userActivation && navigator.userActivation.isActive
        && !sessionStorage.getItem("tg-notifications-asked")) {
      sessionStorage.setItem("tg-notifications-asked", "yes");
      alarm.askNotifications();
    }
  }
  document.addEventListener("htmx:afterSettle", swapped);
  document.addEventListener("htmx:historyRestore", swapped);
  function go(href) {  // to a console page, keeping the document (a boosted link)
    if (!window.htmx) { window.location.assign(href); return; }
    const link = Object.assign(document.createElement("a"), { href, hidden: true });
    document.body.appendChild(link);
    window.htmx.process(link);
    link.click();
    link.remove();
  }

  // ---- live streams: state, lost and refused ---------------------------------------------------
  const states = new Map();  // stream name -> { state, problem, since }
  const RANK = { connected: 0, connecting: 1, reconnecting: 2, refused: 3, signed_out: 4 };
  function subscribe(name, url, handlers) {
    const unsubscribe = streams.subscribe(name, url, {
      ...handlers,
      onState(state, problem) {
        const before = states.get(name);
        states.set(name, { state, problem, since: before && before.state === state ? before.since : Date.now() });
        showState();
        if (handlers.onState) handlers.onState(state, problem);
      },
    });
    return () => {
      unsubscribe();
      states.delete(name);
      delete document.body.dataset[`stream${name[0].toUpperCase()}${name.slice(1)}`];
      showState();
    };
  }
  function worst() {
    let result = "connected";
    states.forEach(({ state }) => { if (RANK[state] > RANK[result]) result = state; });
    return result;
  }
  function showState() {
    const state = worst();
    document.body.dataset.live = states.size ? state : "";
    states.forEach(({ state: s }, name) => { document.body.dataset[`stream${name[0].toUpperCase()}${name.slice(1)}`] = s; });
    steady(showIndicator);
    showBanners();
  }
  function showIndicator() {
    const state = worst();
    const indicator = byId("live-state");
    if (indicator) {
      indicator.hidden = states.size === 0;
      indicator.dataset.state = state;
      indicator.textContent = labels[state] || state;
    }
  }
  function problemKind(entry) {
    if (entry.state === "signed_out") return "signed_out";
    const type = (entry.problem && entry.problem.type) || "";
    if (type === "/problems/agreement-unsigned") return "agreement";
    if (type === "/problems/access-suspended") return "suspended";
    return "refused";
  }
  function showBanners() { steady(renderBanners); }
  function renderBanners() {
    const now = Date.now();
    const lost = !navigator.onLine || [...states.values()].some(
      (s) => s.state === "reconnecting" && now - s.since >= LOST_AFTER_MS);
    const connectionBanner = byId("connection-banner");
    if (connectionBanner) connectionBanner.hidden = !lost;
    const refusal = [...states.entries()].find(([, s]) => s.state === "refused" || s.state === "signed_out");
    const streamBanner = byId("stream-banner");
    if (streamBanner) {
      streamBanner.hidden = !refusal;
      if (refusal) {
        const [name, entry] = refusal;
        const kind = problemKind(entry);
        streamBanner.dataset.problem = kind;
        streamBanner.querySelectorAll("[data-problem]").forEach((el) => { el.hidden = el.dataset.problem !== kind; });
        streamBanner.querySelectorAll("[data-slot=stream]").forEach((el) => { el.textContent = labels[`stream_${name}`] || name; });
        streamBanner.querySelectorAll("[data-slot=title]").forEach((el) => {
          el.textContent = (entry.problem && (entry.problem.detail || entry.problem.title)) || "";
        });
      }
    }
    const soundBanner = byId("sound-banner");
    const sound = alarm.state();
    if (soundBanner) {
      soundBanner.hidden = !shell.watch_cases || sound === "on";
      soundBanner.dataset.sound = sound;
      soundBanner.querySelectorAll("[data-when]").forEach((el) => { el.hidden = el.dataset.when !== sound; });
    }
    const soundButton = byId("sound");
    if (soundButton) {
      soundButton.setAttribute("aria-pressed", String(sound === "on"));
      soundButton.textContent = sound === "on" ? labels.sound_on : sound === "off" ? labels.sound_off : labels.sound_blocked;
    }
  }
  alarm.onChange(showBanners);
  window.addEventListener("online", showBanners);
  window.addEventListener("offline", showBanners);

  // ---- cases: badge, announcement and alarm on every page --------------------------------------
  const cases = new Map();  // the live cases, id -> latest item
  const waiting = new Set();  // ids of the cases waiting for an agent
  const announced = new Set(JSON.parse(sessionStorage.getItem("tg-announced") || "[]"));
  const escalations = new Set();  // cases whose escalation was sounded here
  let unwatch = null;

  // The cases stream's hello, kept current by its items: a tab that opens later starts from it.
  streams.define("cases", (hello, item) => {
    if (item.type !== "incident") return hello;
    const live = (hello.live || []).filter((i) => i.id !== item.id);
    const open = (hello.open || []).filter((id) => id !== item.id);
    if (LIVE.includes(item.status)) live.unshift(item);
    if (item.status === "open") open.unshift(item.id);
    return { ...hello, live, open };
  });

  function showBadge() {
    steady(renderBadge);
    alarm.setWaiting([...waiting].map((id) => ({ id, escalated: Boolean(cases.get(id) && cases.get(id).escalated_at) })));
  }
  function renderBadge() {
    const badge = byId("sos-badge");
    if (badge) {
      badge.hidden = waiting.size === 0;
      badge.dataset.count = String(waiting.size);
      badge.querySelector("b").textContent = String(waiting.size);
    }
  }
  function announce(item, kind) {
    const subject = item.trip_id || item.order_id || item.id;
    const what = kind === "escalated" ? labels.escalated : labels[`new_${item.source}`] || labels.new_sos;
    const announcer = byId("announce");
    if (announcer) announcer.textContent = `${what}: ${subject}`;
    const badge = byId("sos-badge");
    if (badge) {
      badge.classList.remove("flash");
      void badge.offsetWidth;  // restart the animation
      badge.classList.add("flash");
    }
    alarm.ring();
    alarm.notify(what, subject, `tripguard-${kind}-${item.id}`, `/console/incidents/${encodeURIComponent(item.id)}`);
  }
  function caseEvent(detail) {
    document.dispatchEvent(new CustomEvent("tripguard:case", { detail }));
  }
  // A case's items are its states, each read or published at its own moment: a hello read just before a
  // change, a job that publishes after an agent's newer change. Each carries the case's version, and an
  // item older than what this page knows is never applied (it would re-open an acknowledged case here).
  const versions = new Map();  // id -> the newest version of the case seen
  function isCurrent(item) {
    const known = versions.get(item.id) || 0;
    if ((item.version || 0) < known) return false;
    versions.set(item.id, item.version || 0);
    return true;
  }
  function onHello(hello) {
    const known = new Map(cases);
    cases.clear();
    waiting.clear();
    (hello.live || []).forEach((item) => {
      if (isCurrent(item)) cases.set(item.id, item);
      else if (known.has(item.id)) cases.set(item.id, known.get(item.id));
    });
    (hello.open || []).forEach((id) => {
      const item = cases.get(id);
      if (item ? item.status === "open" : !versions.has(id)) waiting.add(id);
    });
    cases.forEach((item) => { if (item.escalated_at) escalations.add(item.id); });
    showBadge();
    // Cases already under way: pages mark them (the map its trips), but nothing is announced.
    cases.forEach((item) => caseEvent({ ...item, already: true }));
  }
  function onItem(item) {
    if (item.type !== "incident" || !isCurrent(item)) return;
    if (LIVE.includes(item.status)) cases.set(item.id, item); else cases.delete(item.id);
    if (item.status === "open") waiting.add(item.id); else waiting.delete(item.id);
    showBadge();
    if (item.status === "open" && !announced.has(item.id)) {
      announced.add(item.id);
      sessionStorage.setItem("tg-announced", JSON.stringify([...announced].slice(-200)));
      if (item.escalated_at) escalations.add(item.id);
      announce(item, "new");
    } else if (item.status === "open" && item.escalated_at && !escalations.has(item.id)) {
      escalations.add(item.id);
      announce(item, "escalated");
    }
    caseEvent(item);
  }
  function watchCases(on) {
    if (on && !unwatch) unwatch = subscribe("cases", "/console/incidents/stream", { onHello, onItem });
    if (!on && unwatch) {
      unwatch();
      unwatch = null;
      cases.clear();
      waiting.clear();
      showBadge();
    }
  }

  // ---- clocks: time left to acknowledge (overdue once passed) and age, every second -----------
  function span(seconds) {
    const s = Math.abs(Math.round(seconds));
    if (s < 60) return `${s} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
    return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  }
  function tick() { steady(tickNow); }
  function tickNow() {
    const now = Date.now();
    document.querySelectorAll("[data-countdown]").forEach((el) => {
      el.dataset.clock = el.dataset.clock || el.textContent;
      const left = (Date.parse(el.dataset.countdown) - now) / 1000;
      const overdue = left < 0;
      el.textContent = overdue ? `${el.dataset.clock} · ${el.dataset.overdue} ${span(left)}` : `${el.dataset.clock} · ${span(left)}`;
      el.classList.toggle("overdue", overdue);
      const row = el.closest("tr");
      if (row) row.classList.toggle("overdue", overdue);
    });
    document.querySelectorAll("[data-age]").forEach((el) => { el.textContent = span((now - Date.parse(el.dataset.age)) / 1000); });
    showBanners();
  }

  function refresh() {
    readShell();
    streams.start(shell.cursor);
    watchCases(Boolean(shell.watch_cases));
    showState();
    showBadge();
    mount();
    tick();
  }
  // Links a script adds are boosted too (htmx sees only what it swapped in).
  function boost(element) { if (window.htmx) window.htmx.process(element); }
  window.TripGuard = {
    widget, subscribe, tick, go, boost, steady,
    cases: () => [...cases.values()],
    labels: () => labels,
  };
  document.addEventListener("DOMContentLoaded", () => {
    started = true;
    refresh();
    setInterval(tick, 1000);
  });
})();
