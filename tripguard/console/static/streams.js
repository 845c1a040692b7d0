// The console's live streams, one connection per browser: every tab of the console shares it.
//
// Over HTTP/1.1 a browser keeps at most 6 connections per host, and each EventSource holds one for
// as long as it is open: with a stream per tab, the 7th tab never loads. So one tab, the leader, is
// elected with the Web Locks API (the lock passes to a waiting tab when the leader closes or
// crashes); it owns one EventSource per stream that any tab wants and relays every event to the
// other tabs over a BroadcastChannel. Each tab holds a lock of its own for as long as it lives, so the
// leader can tell which tabs are still there (navigator.locks.query) without timers, which browsers
// slow down in hidden tabs.
//
// The protocol of each stream is kept (tripguard/console/streams.py): a `hello` first, `heartbeat`s, a
// reconnection that names the last event id seen (Last-Event-ID catch-up), `resync`, `closing`. A
// stream the server refuses says why: when the EventSource gives up (an HTTP error), the leader asks
// the same address once for its problem+json and tells the tabs (refused: with the problem; signed
// out). A new leader continues from the last event id its own tab saw, so nothing falls between.
//
// Where Web Locks are missing (a plain-HTTP address other than localhost), each tab keeps its own
// connection, as before.
(function () {
  "use strict";
  const LEADER_LOCK = "tripguard-live-leader";
  const TAB_LOCK = "tripguard-tab-";
  const CHANNEL = "tripguard-live";
  const UNWANTED_GRACE_MS = 10000;  // a stream no tab wants is closed after this (a swapped page wants it again)
  const REFUSED_RETRY_MS = 60000;  // a refused stream is asked again after this, or when a tab subscribes anew
  const PRUNE_MS = 5000;
  const shared = Boolean(navigator.locks && window.BroadcastChannel);
  const tab = Math.random().toString(36).slice(2) + Date.now().toString(36);
  const channel = shared ? new BroadcastChannel(CHANNEL) : null;

  // ---- this tab's subscriptions and what it has seen -----------------------------------------
  const subscriptions = new Map();  // name -> { url, handlers: Set }
  const views = new Map();  // name -> { cursor, state, problem, greeted, watchdog, heartbeatMs }
  const folds = new Map();  // name -> (hello, item) => hello: keeps a stream's hello current for late tabs
  let initialCursor = "";

  function view(name) {
    if (!views.has(name)) {
      views.set(name, { cursor: initialCursor, state: "connecting", problem: null, greeted: false, watchdog: null,
                        heartbeatMs: 15000, hello: null });
    }
    return views.get(name);
  }
  function each(name, call) {
    const subscription = subscriptions.get(name);
    if (subscription) [...subscription.handlers].forEach(call);
  }
  function setViewState(name, state, problem) {
    const v = view(name);
    v.state = state;
    v.problem = problem || null;
    each(name, (h) => h.onState && h.onState(state, v.problem));
  }
  // Relayed or local: the tab's own record of the stream, then its page's handlers.
  function deliver(message) {
    if (message.to && message.to !== tab) return;
    const name = message.name;
    const v = view(name);
    if (message.id) v.cursor = message.id;
    if (message.kind === "state") {
      setViewState(name, message.data.state, message.data.problem);
      return;
    }
    watch(name);
    if (message.kind === "hello") {
      v.heartbeatMs = (message.data.heartbeat_s || 15) * 1000;
      const reconnected = v.greeted;
      v.greeted = true;
      v.hello = message.data;
      setViewState(name, "connected");
      each(name, (h) => h.onHello && h.onHello(message.data, reconnected));
    } else if (message.kind === "item") {
      const fold = folds.get(name);
      if (fold && v.hello) v.hello = fold(v.hello, message.data);
      each(name, (h) => h.onItem(message.data));
    } else if (message.kind === "resync") {
      each(name, (h) => h.onResync && h.onResync());
    }
  }
  // A tab that hears nothing (not even a heartbeat) for too long shows it: the leader may be stuck.
  function watch(name) {
    const v = view(name);
    clearTimeout(v.watchdog);
    if (!subscriptions.has(name)) return;
    v.watchdog = setTimeout(() => { if (v.state === "connected") setViewState(name, "reconnecting"); },
                            v.heartbeatMs * 2.5 + 5000);
  }

  // ---- the leader: one EventSource per wanted stream -----------------------------------------
  let leader = !shared;
  const peers = new Map();  // tab -> { name: url } it wants
  const connections = new Map();  // name -> connection

  function emit(message) {
    if (channel && leader) channel.postMessage(message);
    deliver(message);
  }
  function wanted() {
    const all = new Map();
    subscriptions.forEach((s, name) => all.set(name, s.url));
    peers.forEach((streams) => Object.entries(streams).forEach(([name, url]) => all.set(name, url)));
    return all;
  }
  function reconcile() {
    if (!leader) return;
    const now = Date.now();
    const want = wanted();
    want.forEach((url, name) => {
      const connection = connections.get(name);
      if (!connection) connections.set(name, connect(name, url));
      else connection.unwantedSince = null;
    });
    connections.forEach((connection, name) => {
      if (want.has(name)) return;
      connection.unwantedSince = connection.unwantedSince || now;
      if (now - connection.unwantedSince >= UNWANTED_GRACE_MS) { connection.close(); connections.delete(name); }
    });
  }
  // A tab that starts wanting an open stream is greeted: the hello (kept current by the stream's
  // fold), and the state, addressed to it alone.
  function greet(to, names) {
    names.forEach((name) => {
      const connection = connections.get(name);
      if (!connection) return;
      if (connection.hello) emit({ name, kind: "hello", data: connection.hello, id: connection.cursor, to });
      if (connection.state !== "connected") emit({ name, kind: "state", data: connection.status(), to });
    });
  }

  function connect(name, url) {
    const connection = { unwantedSince: null, hello: null, state: "connecting", problem: null, cursor: view(name).cursor };
    let source = null;
    let failures = 0;
    let opened = false;
    let heartbeatMs = 15000;
    let watchdog = null;
    let pending = null;
    let closed = false;

    connection.status = () => ({ state: connection.state, problem: connection.problem });
    function setState(state, problem) {
      connection.state = state;
      connection.problem = problem || null;
      emit({ name, kind: "state", data: connection.status() });
    }
    function alive(event) {
      if (event && event.lastEventId) connection.cursor = event.lastEventId;
      clearTimeout(watchdog);
      watchdog = setTimeout(() => restart(), heartbeatMs * 2.5);  // silent too long: a dead connection
    }
    function open() {
      pending = null;
      if (closed) return;
      setState(opened ? "reconnecting" : "connecting");
      const sep = url.includes("?") ? "&" : "?";
      const cursor = connection.cursor;
      source = new EventSource(cursor ? `${url}${sep}last_event_id=${encodeURIComponent(cursor)}` : url);
      source.addEventListener("hello", (event) => {
        const hello = JSON.parse(event.data);
        heartbeatMs = (hello.heartbeat_s || 15) * 1000;
        alive(event);
        opened = true;
        failures = 0;
        connection.hello = hello;
        connection.state = "connected";
        connection.problem = null;
        emit({ name, kind: "hello", data: hello, id: connection.cursor });
      });
      source.addEventListener("heartbeat", (event) => { alive(event); emit({ name, kind: "beat", id: connection.cursor }); });
      source.addEventListener("resync", (event) => { alive(event); emit({ name, kind: "resync", id: connection.cursor }); });
      source.addEventListener("closing", () => restart(300 + Math.random() * 700));
      source.onmessage = (event) => {
        alive(event);
        const item = JSON.parse(event.data);
        const fold = folds.get(name);
        if (fold && connection.hello) connection.hello = fold(connection.hello, item);
        emit({ name, kind: "item", data: item, id: connection.cursor });
      };
      source.onerror = () => {
        // CLOSED: the browser gave up (an HTTP error, not a lost connection): ask the server why.
        if (source && source.readyState === EventSource.CLOSED) probe();
        else restart();
      };
    }
    function stop() {
      clearTimeout(watchdog);
      if (source) { source.close(); source = null; }
    }
    function restart(delay) {
      stop();
      if (pending || closed) return;
      failures += 1;
      setState("reconnecting");
      const backoff = Math.min(15000, 1000 * 2 ** Math.min(failures - 1, 4)) * (0.75 + Math.random() * 0.5);
      pending = setTimeout(open, delay === undefined ? backoff : delay);
    }
    function retryAfter(delay, state, problem) {
      stop();
      if (pending || closed) return;
      setState(state, problem);
      pending = setTimeout(open, delay);
    }
    // The stream's own address, asked once for a problem+json: 403 with its type (the agreement not
    // signed, access suspended), 401 or the sign-in page (signed out), 429/503 (come back later).
    function probe() {
      stop();
      const controller = new AbortController();
      fetch(url, { headers: { Accept: "application/problem+json" }, credentials: "same-origin", redirect: "manual",
                   signal: controller.signal })
        .then((response) => {
          if (response.ok) { controller.abort(); restart(500); return; }
          if (response.status === 401 || response.type === "opaqueredirect") {
            retryAfter(REFUSED_RETRY_MS, "signed_out", { status: 401 });
          } else if (response.status === 403) {
            response.json().catch(() => ({})).then((problem) => retryAfter(
              REFUSED_RETRY_MS, "refused", { status: 403, type: problem.type || "", title: problem.title || "",
                                             detail: problem.detail || "" }));
          } else if (response.status === 429 || response.status === 503) {
            const seconds = Number(response.headers.get("Retry-After")) || 5;
            retryAfter(Math.min(60, seconds) * 1000 * (0.75 + Math.random() * 0.5), "reconnecting");
          } else {
            restart();
          }
        })
        .catch(() => restart());
    }
    connection.again = () => {  // a tab subscribed anew: a refused stream is asked again now
      if (pending && ["refused", "signed_out"].includes(connection.state)) { clearTimeout(pending); open(); }
    };
    connection.online = () => { if (pending) { clearTimeout(pending); open(); } };
    connection.close = () => { closed = true; clearTimeout(pending); stop(); };
    open();
    return connection;
  }

  // ---- the tabs talk ---------------------------------------------------------------------------
  function announceWants() {
    if (!channel) return;
    const streams = {};
    subscriptions.forEach((s, name) => { streams[name] = s.url; });
    channel.postMessage({ type: "want", from: tab, streams });
  }
  function prune() {
    if (!leader || !navigator.locks) return;
    navigator.locks.query().then((state) => {
      const alive = new Set(state.held.map((lock) => lock.name));
      [...peers.keys()].forEach((peer) => { if (!alive.has(TAB_LOCK + peer)) peers.delete(peer); });
      reconcile();
    });
  }
  if (channel) {
    channel.onmessage = (event) => {
      const message = event.data;
      if (message.type === "leader") { announceWants(); return; }
      if (message.type === "want" && leader) {
        const before = peers.get(message.from) || {};
        peers.set(message.from, message.streams);
        reconcile();
        const added = Object.keys(message.streams).filter((name) => !(name in before));
        added.forEach((name) => { const c = connections.get(name); if (c) c.again(); });
        greet(message.from, added);
        return;
      }
      if (message.type === "bye" && leader) { peers.delete(message.from); reconcile(); return; }
      if (!message.type && !leader) deliver(message);
    };
    navigator.locks.request(TAB_LOCK + tab, () => new Promise(() => {}));  // held while this tab lives
    navigator.locks.request(LEADER_LOCK, () => {
      leader = true;
      document.documentElement.dataset.streamLeader = "true";
      peers.clear();
      channel.postMessage({ type: "leader", from: tab });
      reconcile();
      setInterval(prune, PRUNE_MS);
      return new Promise(() => {});  // kept until this tab goes away; then the next tab in line leads
    });
    window.addEventListener("pagehide", () => { channel.postMessage({ type: "bye", from: tab }); });
  }
  window.addEventListener("online", () => connections.forEach((c) => c.online()));
  setInterval(reconcile, PRUNE_MS);  // closes streams nobody wants once their grace has passed

  // ---- what pages use --------------------------------------------------------------------------
  // Subscribes this tab to the stream `name` at `url`. handlers: onItem(item), onHello(hello,
  // reconnected), onResync(), onState(state, problem). Returns the unsubscribe function.
  function subscribe(name, url, handlers) {
    let subscription = subscriptions.get(name);
    const fresh = !subscription;
    if (fresh) {
      subscription = { url, handlers: new Set() };
      subscriptions.set(name, subscription);
    }
    subscription.handlers.add(handlers);
    const v = view(name);
    if (handlers.onState) handlers.onState(v.state, v.problem);
    if (!fresh && v.greeted && v.hello && handlers.onHello) {
      handlers.onHello(v.hello, false);  // another part of this page has the stream: this one starts from now
    }
    if (fresh) {
      v.greeted = false;
      setViewState(name, "connecting");
      if (leader) {
        reconcile();
        const connection = connections.get(name);
        connection.again();
        if (connection.hello) greet(tab, [name]);
        else if (connection.state !== "connecting") deliver({ name, kind: "state", data: connection.status() });
      } else {
        announceWants();
      }
    }
    watch(name);
    return function unsubscribe() {
      subscription.handlers.delete(handlers);
      if (subscription.handlers.size || subscriptions.get(name) !== subscription) return;
      subscriptions.delete(name);
      clearTimeout(v.watchdog);
      if (leader) reconcile(); else announceWants();
    };
  }

  window.TripGuardStreams = {
    subscribe,
    // fold(hello, item) -> hello: how an item changes the state a stream's hello gives (late tabs get it).
    define(name, fold) { folds.set(name, fold); },
    start(cursor) { initialCursor = initialCursor || cursor || ""; },
    isLeader: () => leader,
    shared,
  };
})();
