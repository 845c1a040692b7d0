// The alarm: a tone that repeats while a case waits for an agent, until someone (anyone) acknowledges
// it; a faster, two-note tone once a case is escalated; a system notification when the console is hidden.
//
// Browsers let a page play sound only after a gesture in that document (a click, a key). The console
// keeps one document across its pages (htmx-boosted links and forms), so the gesture that signs in
// unlocks the sound for the whole shift. A reload needs a new gesture: the shell shows a banner that
// cannot be missed until sound is on again. Managed browsers can allow the console's origin to play
// sound without a gesture (Chrome's AutoplayAllowlist policy; docs/operations.md).
//
// One tab sounds for the whole browser: the first whose sound is unlocked takes the `tripguard-alarm`
// lock (Web Locks) and keeps it while it lives; the next in line takes over when it closes.
(function () {
  "use strict";
  const ALARM_LOCK = "tripguard-alarm";
  const PERIOD_MS = 3000;
  const ESCALATED_PERIOD_MS = 2000;
  const NORMAL = [[880, 0, 0.25], [880, 0.4, 0.25]];  // [hertz, start s, length s]
  const ESCALATED = [[988, 0, 0.18], [740, 0.22, 0.18], [988, 0.44, 0.18], [740, 0.66, 0.18]];
  const locks = navigator.locks;
  let audio = null;
  let holds = false;  // this tab sounds the alarm for the browser
  let release = null;
  let queued = null;  // the pending lock request, abortable
  let elsewhere = false;  // another tab of this browser sounds it
  let waiting = [];  // the cases waiting for an agent: [{ id, escalated }]
  let nextAt = 0;
  const listeners = new Set();

  function wanted() { return localStorage.getItem("tg-sound") !== "off"; }
  function running() { return Boolean(audio) && audio.state === "running"; }
  function changed() {
    if (running() && wanted()) claim(); else letGo();
    listeners.forEach((listener) => listener());
  }

  // Called at load and inside every gesture: a context created or resumed in a gesture runs.
  function unlock() {
    if (!wanted()) return;
    if (!audio) {
      audio = new AudioContext();
      audio.addEventListener("statechange", changed);
    }
    if (audio.state !== "running") audio.resume().then(changed, changed);
    changed();
  }

  function claim() {
    if (!locks) { holds = true; return; }
    if (holds || queued) return;
    queued = new AbortController();
    locks.request(ALARM_LOCK, { signal: queued.signal }, () => {
      queued = null;
      if (!running() || !wanted()) return undefined;  // sound went off while this tab waited in line
      holds = true;
      listeners.forEach((listener) => listener());
      tick();
      return new Promise((resolve) => { release = resolve; });
    }).catch(() => { queued = null; });
  }
  function letGo() {
    if (queued) { queued.abort(); queued = null; }
    if (release) { release(); release = null; }
    holds = false;
  }
  function lookAround() {
    if (!locks) return;
    locks.query().then((state) => {
      const now = !holds && state.held.some((lock) => lock.name === ALARM_LOCK);
      if (now !== elsewhere) { elsewhere = now; listeners.forEach((listener) => listener()); }
    });
  }

  function play(notes) {
    const t0 = audio.currentTime + 0.02;
    for (const [hertz, at, length] of notes) {
      const tone = audio.createOscillator();
      const gain = audio.createGain();
      tone.frequency.value = hertz;
      gain.gain.setValueAtTime(0.0001, t0 + at);
      gain.gain.exponentialRampToValueAtTime(0.25, t0 + at + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, t0 + at + length);
      tone.connect(gain).connect(audio.destination);
      tone.start(t0 + at);
      tone.stop(t0 + at + length + 0.02);
    }
  }
  function tick() {
    if (!holds || !running() || !wanted() || !waiting.length) return;
    const now = Date.now();
    if (now < nextAt) return;
    const escalated = waiting.some((c) => c.escalated);
    play(escalated ? ESCALATED : NORMAL);
    nextAt = now + (escalated ? ESCALATED_PERIOD_MS : PERIOD_MS);
  }

  // One tab of the browser notifies: the one that sounds or, where none may, the streams' leader.
  function notify(title, body, tag, href) {
    if (!document.hidden || !("Notification" in window) || Notification.permission !== "granted") return;
    const show = () => {
      const notice = new Notification(title, { body, tag, requireInteraction: true, lang: document.documentElement.lang });
      notice.onclick = () => { window.focus(); notice.close(); if (href) window.TripGuard.go(href); };
    };
    if (holds) { show(); return; }
    if (!window.TripGuardStreams || !window.TripGuardStreams.isLeader()) return;
    if (!locks) { show(); return; }
    locks.query().then((state) => {  // asked now: the tab that sounded may have closed a moment ago
      if (!holds && !state.held.some((lock) => lock.name === ALARM_LOCK)) show();
    });
  }
  // Asked at sign-in (the gesture that lands on the console) or from the banner, never in an emergency.
  function askNotifications() {
    if ("Notification" in window && Notification.permission === "default") Notification.requestPermission();
  }

  for (const type of ["pointerdown", "keydown"]) document.addEventListener(type, unlock, { capture: true });
  window.addEventListener("storage", (event) => { if (event.key === "tg-sound") { if (wanted()) unlock(); changed(); } });
  setInterval(tick, 250);
  setInterval(lookAround, 2000);
  lookAround();
  unlock();  // allowed at once where the browser allows it (a managed policy, a navigation after a click)

  window.TripGuardAlarm = {
    // "on": this browser sounds; "blocked": sound wanted but no tab may play; "off": turned off.
    state() { return !wanted() ? "off" : running() || elsewhere ? "on" : "blocked"; },
    setWaiting(cases) { waiting = cases; if (!waiting.length) nextAt = 0; tick(); },
    ring() { nextAt = 0; tick(); },  // now, not at the next period: a new case, an escalation
    turnOn() { localStorage.setItem("tg-sound", "on"); unlock(); askNotifications(); changed(); },
    turnOff() { localStorage.setItem("tg-sound", "off"); letGo(); changed(); },
    notify,
    askNotifications,
    onChange(listener) { listeners.add(listener); },
  };
})();
