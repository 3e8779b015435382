/* emomon dashboard: one WebSocket in, uPlot charts, a valence-arousal plane and a
 * scalp map out. Everything the page keeps is bounded: per stream the last
 * `history_s` seconds (at most `max_points` predictions, the server's settings),
 * the plane's trail, and the ring of measured lags. */
(function () {
  "use strict";

  var P = window.emomonPanels; // the plane and the scalp map (panels.js)
  var LAG_RING = 4096; // lag samples kept for the benchmark and the counters
  var CHART_HEIGHT = 230;
  var INK = P.INK;
  var GRID = "#e6e9ee";
  // Okabe-Ito colours (distinguishable with the common colour-vision deficiencies)
  var PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#7f7f7f"];
  var NAMED = { negative: "#D55E00", neutral: "#6b6b6b", positive: "#009E73" };
  var TASK_COLOURS = { valence: "#0072B2", arousal: "#D55E00", dominance: "#009E73", liking: "#CC79A7" };
  var STATE_TEXT = {
    waiting: "waiting for stream",
    connecting: "connecting",
    connected: "connected",
    reconnecting: "reconnecting (input lost)",
    stopped: "stopped",
    silent: "silent",
  };

  var $ = P.$, el = P.el; // the DOM helpers both scripts use
  function fmt(v, digits, unit) {
    return v == null || !isFinite(v) ? "\u2013" : v.toFixed(digits) + (unit || "");
  }

  // -- bounded ring of numbers (lags in ms) ------------------------------------
  function Ring(n) { this.n = n; this.a = []; this.i = 0; this.fresh = []; }
  Ring.prototype.push = function (v) {
    if (this.a.length < this.n) this.a.push(v); else { this.a[this.i] = v; this.i = (this.i + 1) % this.n; }
    if (this.fresh.length < this.n) this.fresh.push(v);
  };
  Ring.prototype.take = function () { var f = this.fresh; this.fresh = []; return f; };
  Ring.prototype.summary = function () {
    if (!this.a.length) return { n: 0 };
    var s = this.a.slice().sort(function (x, y) { return x - y; });
    function q(p) { return s[Math.min(s.length - 1, Math.floor(p * s.length))]; }
    return { n: s.length, p50: q(0.5), p95: q(0.95), p99: q(0.99), max: s[s.length - 1] };
  };

  // -- the page's state -----------------------------------------------------------
  var S = {
    server: null,
    streams: new Map(),
    selected: null,
    follow: true,
    view: null,
    tab: { dropped: 0, resyncs: 0 },
    link: "connecting",
    retry: 0,
    retryAt: 0,
    charts: {},
    chartsKey: null,
    dirty: false,
    renders: 0,
    lag: new Ring(LAG_RING), // publication -> drawn on this page (selected stream)
    recvLag: new Ring(LAG_RING), // publication -> arrived on this page (every stream)
  };
  var hashMatch = location.hash.match(/stream=([^&]*)/);
  if (hashMatch) S.selected = decodeURIComponent(hashMatch[1]);

  function historyS() { return S.server ? S.server.history_s : 300; }
  function maxRows() { return (S.server ? S.server.max_points : 2400) + 64; }

  function newStream(name) {
    return {
      name: name, meta: null, status: null, stats: null, state: "connecting",
      lastRecvLocal: null, tasks: null,
      t: [], seq: [], ok: [], q: [], cols: {}, // the columns the charts plot (q: reasons)
      last: null, trail: [], fresh: [],
    };
  }
  function stream(name) {
    var st = S.streams.get(name);
    if (!st) {
      st = newStream(name);
      S.streams.set(name, st);
      if (S.selected == null) S.selected = name; // the first stream heard of
    }
    return st;
  }
  function current() {
    if (S.selected != null && S.streams.has(S.selected)) return S.streams.get(S.selected);
    var first = S.streams.values().next();
    return first.done ? null : first.value;
  }

  // -- tasks and columns ------------------------------------------------------------
  var BIN = "__p_high";
  function tasksFromMeta(meta) {
    return Object.keys(meta.tasks).map(function (name) {
      var classes = meta.tasks[name];
      var binary = classes.length === 2;
      return { name: name, classes: classes, binary: binary, plotted: binary ? [classes[1]] : classes.slice() };
    });
  }
  function tasksFromPoint(p) {
    return Object.keys(p.p || {}).map(function (name) {
      var v = p.p[name];
      if (v !== null && typeof v === "object") {
        var classes = Object.keys(v);
        return { name: name, classes: classes, binary: false, plotted: classes.slice() };
      }
      return { name: name, classes: ["low", "high"], binary: true, plotted: ["high"] };
    });
  }
  function ensureColumns(st) {
    var n = st.t.length;
    st.tasks.forEach(function (task) {
      var c = st.cols[task.name] || (st.cols[task.name] = {});
      var keys = task.binary ? [BIN] : task.plotted;
      keys.forEach(function (k) {
        if (!c[k]) { c[k] = new Array(n).fill(null); }
      });
    });
  }
  function setMeta(st, meta) {
    st.meta = meta;
    var tasks = tasksFromMeta(meta);
    if (tasks.length) { st.tasks = tasks; ensureColumns(st); }
  }

  function pushRow(st, t, p) {
    st.t.push(t);
    st.seq.push(p ? p.seq : null);
    st.ok.push(p ? p.ok : null);
    st.q.push(p && p.q ? p.q : null);
    for (var name in st.cols) {
      var c = st.cols[name];
      var v = p && p.ok ? p.p[name] : null;
      for (var k in c) {
        var x = null;
        if (v != null) x = k === BIN ? (typeof v === "number" ? v : null) : (v[k] == null ? null : v[k]);
        c[k].push(x);
      }
    }
  }
  function addPoint(st, p, live) {
    if (!st.tasks) { st.tasks = tasksFromPoint(p); ensureColumns(st); }
    var n = st.t.length;
    var t = p.t;
    if (n) {
      var lastT = st.t[n - 1];
      var lastSeq = st.seq[n - 1];
      if (!(t > lastT)) t = lastT + 1e-3; // the x axis must grow
      var hop = st.meta && st.meta.hop_s ? st.meta.hop_s : 0.25;
      var jump = lastSeq !== null && (p.seq !== lastSeq + 1 || t - lastT > Math.max(4 * hop, 2.0));
      if (jump) pushRow(st, (lastT + t) / 2, null); // a break: no line across a gap or a new run
    }
    pushRow(st, t, p);
    st.last = p;
    var v = p.ok && p.p ? p.p.valence : null;
    var a = p.ok && p.p ? p.p.arousal : null;
    if (typeof v === "number" && typeof a === "number") {
      st.trail.push({ v: v, a: a, seq: p.seq });
      if (st.trail.length > P.TRAIL) st.trail.shift();
    }
    if (live) {
      S.recvLag.push(Date.now() - p.t * 1000);
      if (st.fresh.length < LAG_RING) st.fresh.push(p);
    }
  }
  function trim(st) {
    var n = st.t.length;
    if (!n) return;
    var cutoff = st.t[n - 1] - historyS();
    var k = 0;
    while (k < n && st.t[k] < cutoff) k++;
    k = Math.max(k, n - maxRows());
    if (k < n && k > 0 && st.seq[k] === null) k++; // never start on a break
    if (k < 8 && n <= maxRows()) return; // trim in small batches, never past the cap
    spliceRows(st, 0, k);
  }
  function spliceRows(st, start, count) {
    st.t.splice(start, count);
    st.seq.splice(start, count);
    st.ok.splice(start, count);
    st.q.splice(start, count);
    for (var name in st.cols) for (var k in st.cols[name]) st.cols[name][k].splice(start, count);
  }

  // -- messages from the server -----------------------------------------------------
  function setStats(st, stats) {
    if (!stats) return;
    st.stats = stats;
    st.state = stats.state;
    if (stats.age_s != null) {
      var at = performance.now() - stats.age_s * 1000;
      st.lastRecvLocal = st.lastRecvLocal == null ? at : Math.max(st.lastRecvLocal, at);
    }
  }
  function onHello(m) {
    S.server = m.server;
    S.tab = m.tab || S.tab;
    var known = new Set();
    m.streams.forEach(function (snap) {
      known.add(snap.stream);
      var st = stream(snap.stream);
      if (snap.meta) setMeta(st, snap.meta);
      st.status = snap.status;
      var pts = snap.points;
      if (pts.length) {
        // Keep what this page has from before the server's history (a restarted
        // server knows less); the server's copy replaces the rest.
        var first = pts[0].t;
        var cut = 0;
        while (cut < st.t.length && st.t[cut] < first) cut++;
        spliceRows(st, cut, st.t.length - cut);
        while (st.seq.length && st.seq[st.seq.length - 1] === null) spliceRows(st, st.seq.length - 1, 1);
        st.trail = [];
        pts.forEach(function (p) { addPoint(st, p, false); });
        trim(st);
      }
      setStats(st, snap.stats);
    });
    S.streams.forEach(function (st, name) {
      if (!known.has(name) && st.state !== "stopped") st.state = "silent";
    });
  }
  function handle(m) {
    var st;
    switch (m.type) {
      case "hello":
        onHello(m);
        break;
      case "meta":
        st = stream(m.stream);
        setMeta(st, m.meta);
        break;
      case "status":
        st = stream(m.stream);
        st.status = m.status;
        setStats(st, m.stats);
        st.lastRecvLocal = performance.now();
        break;
      case "points":
        st = stream(m.stream);
        m.points.forEach(function (p) { addPoint(st, p, true); });
        trim(st);
        st.lastRecvLocal = performance.now();
        if (st.state !== "connected" && st.state !== "reconnecting") st.state = "connected";
        break;
      case "stats":
        S.server = Object.assign(S.server || {}, m.server);
        S.tab = m.tab || S.tab;
        for (var name in m.streams) setStats(stream(name), m.streams[name]);
        break;
      default:
        break;
    }
  }

  // -- the WebSocket, reconnected with a growing pause ------------------------------
  function connect() {
    var url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws";
    var ws;
    try { ws = new WebSocket(url); } catch (e) { retryLater(); return; }
    setLink("connecting");
    ws.onopen = function () { S.retry = 0; setLink("live"); };
    ws.onmessage = function (ev) {
      var msg;
      try { msg = JSON.parse(ev.data); } catch (e) { return; }
      if (Array.isArray(msg)) msg.forEach(handle); else handle(msg);
      scheduleRender();
    };
    ws.onclose = function () { retryLater(); };
  }
  function retryLater() {
    var delay = Math.min(10000, 500 * Math.pow(2, S.retry)) * (0.8 + 0.4 * Math.random());
    S.retry = Math.min(S.retry + 1, 6);
    S.retryAt = Date.now() + delay;
    setLink("down");
    setTimeout(connect, delay);
  }
  function setLink(link) {
    S.link = link;
    updateLink();
    scheduleRender();
  }
  function updateLink() {
    var e = $("link");
    e.dataset.link = S.link;
    if (S.link === "live") e.textContent = "live";
    else if (S.link === "connecting") e.textContent = "connecting to dashboard\u2026";
    else {
      var s = Math.max(0, Math.ceil((S.retryAt - Date.now()) / 1000));
      e.textContent = "dashboard unreachable \u2013 retrying in " + s + " s";
    }
  }

  // -- charts -----------------------------------------------------------------------
  function colourFor(task, cls, i) {
    if (task.binary) return TASK_COLOURS[task.name] || PALETTE[i % PALETTE.length];
    return NAMED[cls] || PALETTE[i % PALETTE.length];
  }
  function thresholdPlugin(task) {
    var value = task.binary ? 0.5 : 1 / task.classes.length;
    var label = task.binary
      ? "decision 0.5 (above: " + task.classes[1] + ")"
      : "chance 1/" + task.classes.length;
    return {
      hooks: {
        draw: [function (u) {
          var ctx = u.ctx;
          var y = Math.round(u.valToPos(value, "p", true)) + 0.5;
          var dpr = window.devicePixelRatio || 1;
          ctx.save();
          ctx.strokeStyle = "#4b5563";
          ctx.lineWidth = 1.5 * dpr;
          ctx.setLineDash([6 * dpr, 4 * dpr]);
          ctx.beginPath();
          ctx.moveTo(u.bbox.left, y);
          ctx.lineTo(u.bbox.left + u.bbox.width, y);
          ctx.stroke();
          ctx.setLineDash([]);
          ctx.font = (11 * dpr) + "px system-ui, sans-serif";
          var w = ctx.measureText(label).width + 8 * dpr;
          var x = u.bbox.left + 4 * dpr;
          ctx.fillStyle = "rgba(255, 255, 255, 0.85)";
          ctx.fillRect(x, y - 16 * dpr, w, 14 * dpr);
          ctx.fillStyle = "#374151";
          ctx.textAlign = "left";
          ctx.textBaseline = "bottom";
          ctx.fillText(label, x + 4 * dpr, y - 3 * dpr);
          ctx.restore();
        }],
      },
    };
  }
  function flaggedPlugin(st) {
    // Shade flagged windows (no estimate: the lines have gaps there).
    return {
      hooks: {
        drawClear: [function (u) {
          var t = st.t, ok = st.ok, seq = st.seq, n = t.length;
          if (!n) return;
          var hop = st.meta && st.meta.hop_s ? st.meta.hop_s : 0.25;
          var ctx = u.ctx;
          ctx.save();
          ctx.fillStyle = "rgba(214, 39, 40, 0.14)";
          var i = 0;
          while (i < n) {
            if (ok[i] !== false || seq[i] === null) { i++; continue; }
            var j = i;
            while (j + 1 < n && ok[j + 1] === false && seq[j + 1] !== null) j++;
            var x0 = u.valToPos(t[i] - hop / 2, "x", true);
            var x1 = u.valToPos(t[j] + hop / 2, "x", true);
            var left = Math.max(u.bbox.left, x0), right = Math.min(u.bbox.left + u.bbox.width, x1);
            if (right > left) ctx.fillRect(left, u.bbox.top, Math.max(1, right - left), u.bbox.height);
            i = j + 1;
          }
          ctx.restore();
        }],
      },
    };
  }
  function timeValue(u, v) { return v == null ? "\u2013" : new Date(v * 1000).toLocaleTimeString(); }
  function makeChart(st, task) {
    var card = el("section", "card chart-card");
    card.dataset.task = task.name;
    var title = el("h2", null, task.name + " ");
    title.appendChild(el("span", "muted", task.binary
      ? "probability of \u201c" + task.classes[1] + "\u201d (classes " + task.classes.join(" / ") + ")"
      : task.classes.length + " classes: " + task.classes.join(", ")));
    card.appendChild(title);
    var host = el("div", "plot");
    card.appendChild(host);
    $("charts").appendChild(card);
    var series = [
      { label: "time", value: timeValue },
      {
        label: "seq", scale: "seq", class: "seq-series", stroke: "#9aa1ab", width: 0,
        paths: function () { return null; }, points: { show: false },
        value: function (u, v) { return v == null ? "\u2013" : String(v); },
      },
    ];
    task.plotted.forEach(function (cls, i) {
      series.push({
        label: "p(" + cls + ")", scale: "p", stroke: colourFor(task, cls, i), width: 2,
        spanGaps: false, points: { show: false },
        value: function (u, v) { return v == null ? "\u2013" : v.toFixed(2); },
      });
    });
    var data = [st.t, st.seq];
    task.plotted.forEach(function (cls) {
      data.push(st.cols[task.name][task.binary ? BIN : cls]);
    });
    var opts = {
      width: Math.max(300, host.clientWidth || 600),
      height: CHART_HEIGHT,
      scales: { x: { time: true }, p: { auto: false, range: [0, 1] }, seq: { auto: true } },
      axes: [
        { label: "time (local clock)", stroke: INK, grid: { stroke: GRID }, ticks: { stroke: GRID }, labelSize: 22 },
        {
          scale: "p", label: "probability", stroke: INK, grid: { stroke: GRID }, ticks: { stroke: GRID },
          splits: function () { return [0, 0.25, 0.5, 0.75, 1]; },
          values: function (u, vals) { return vals.map(function (v) { return v.toFixed(2); }); },
          size: 44, labelSize: 20,
        },
      ],
      series: series,
      cursor: { sync: { key: "emomon" }, drag: { x: true, y: false, setScale: false } },
      legend: { live: true },
      plugins: [flaggedPlugin(st), thresholdPlugin(task)],
      hooks: { setSelect: [onSelect] },
    };
    var u = new uPlot(opts, data, host);
    u.over.addEventListener("dblclick", function () { backToLive(); });
    var extra = el("div", "chart-legend");
    var dash = el("span");
    dash.appendChild(el("span", "swatch dash"));
    dash.appendChild(document.createTextNode(task.binary ? "decision threshold 0.5" : "chance level 1/" + task.classes.length));
    var flag = el("span");
    flag.appendChild(el("span", "swatch flag"));
    flag.appendChild(document.createTextNode("flagged window (no estimate)"));
    extra.appendChild(dash);
    extra.appendChild(flag);
    card.appendChild(extra);
    return u;
  }
  function onSelect(u) {
    if (u.select.width < 3) return;
    var min = u.posToVal(u.select.left, "x");
    var max = u.posToVal(u.select.left + u.select.width, "x");
    u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
    S.follow = false;
    S.view = { min: min, max: max };
    $("follow").hidden = false;
    scheduleRender();
  }
  function backToLive() {
    S.follow = true;
    S.view = null;
    $("follow").hidden = true;
    scheduleRender();
  }
  function ensureCharts(st) {
    var key = st.name + "|" + JSON.stringify(st.tasks);
    if (key === S.chartsKey) return;
    for (var name in S.charts) S.charts[name].destroy();
    S.charts = {};
    $("charts").textContent = "";
    S.chartsKey = key;
    if (!st.tasks) return;
    st.tasks.forEach(function (task) { S.charts[task.name] = makeChart(st, task); });
  }
  function xRange(st) {
    if (!S.follow && S.view) return S.view;
    var n = st.t.length;
    if (!n) return null;
    var hop = st.meta && st.meta.hop_s ? st.meta.hop_s : 0.25;
    var max = st.t[n - 1] + hop;
    return { min: Math.min(st.t[0], max - 10), max: max };
  }
  function drawCharts(st) {
    ensureCharts(st);
    var range = xRange(st);
    for (var name in S.charts) {
      var u = S.charts[name];
      var task = st.tasks.filter(function (x) { return x.name === name; })[0];
      var data = [st.t, st.seq];
      task.plotted.forEach(function (cls) { data.push(st.cols[name][task.binary ? BIN : cls]); });
      u.batch(function () {
        u.setData(data, false);
        if (range) u.setScale("x", range);
      });
    }
  }

  // -- header, counters, selector ---------------------------------------------------
  function updateSelector() {
    var sel = $("stream-select");
    var names = Array.from(S.streams.keys());
    var want = names.map(function (n) { return n + "\u0000" + S.streams.get(n).state; }).join("\u0001");
    if (sel.dataset.key !== want) {
      sel.dataset.key = want;
      sel.textContent = "";
      names.forEach(function (n) {
        var o = el("option", null, n + " \u2013 " + S.streams.get(n).state);
        o.value = n;
        sel.appendChild(o);
      });
    }
    var st = current();
    if (st && sel.value !== st.name) sel.value = st.name;
    sel.disabled = names.length === 0;
  }
  function ageOf(st) {
    return st && st.lastRecvLocal != null ? (performance.now() - st.lastRecvLocal) / 1000 : null;
  }
  function updateFacts() {
    var st = current();
    var badge = $("state");
    if (!st) {
      badge.dataset.state = "waiting";
      badge.textContent = STATE_TEXT.waiting;
      $("waiting").hidden = false;
      $("main").hidden = true;
      if (S.server) $("waiting-address").textContent = S.server.address;
      updateLink();
      return;
    }
    $("waiting").hidden = true;
    $("main").hidden = false;
    var age = ageOf(st);
    badge.dataset.state = st.state;
    var text = STATE_TEXT[st.state] || st.state;
    if (st.state === "silent" && age != null) text += " \u2013 nothing for " + Math.round(age) + " s";
    if (st.state === "stopped") text += " \u2013 trace kept";
    badge.textContent = text;
    var p = st.last;
    $("last-seq").textContent = p ? String(p.seq) : "\u2013";
    $("age").textContent = age == null ? "\u2013" : age < 10 ? age.toFixed(1) + " s ago" : Math.round(age) + " s ago";
    $("latency").textContent = p ? fmt(p.lat, 1, " ms") : "\u2013";
    $("sample-age").textContent = p ? fmt(p.age, 0, " ms") : "\u2013";
    var s = st.stats || {};
    $("flagged").textContent = s.received != null ? s.flagged + " of " + s.received : "\u2013";
    var missed = $("missed");
    missed.textContent = s.missed != null ? String(s.missed) + (s.restarts ? " \u00b7 " + s.restarts + " restart(s)" : "") : "\u2013";
    missed.classList.toggle("alert", !!s.missed);
    var drops = $("drops");
    var serverDropped = S.server && S.server.inbox_dropped ? S.server.inbox_dropped : 0;
    drops.textContent = S.tab.dropped + " / " + serverDropped;
    drops.classList.toggle("alert", S.tab.dropped + serverDropped > 0);
    var m = st.meta;
    $("model").textContent = m
      ? "model " + m.model + " \u00b7 " + m.ch_names.length + " channels \u00b7 " + m.sfreq + " Hz (model " +
        m.model_sfreq + " Hz) \u00b7 window " + m.window_s + " s, hop " + m.hop_s + " s"
      : "model: waiting for the stream's description";
    updateLink();
  }

  // -- drawing, at most once a frame ------------------------------------------------
  function scheduleRender() {
    if (S.dirty) return;
    S.dirty = true;
    requestAnimationFrame(render);
  }
  function render() {
    S.dirty = false;
    S.renders++;
    updateSelector();
    updateFacts();
    var st = current();
    if (!st) return;
    drawCharts(st);
    P.drawVA(st);
    P.drawScalp(st);
    var now = Date.now();
    st.fresh.forEach(function (p) { S.lag.push(now - p.t * 1000); });
    if (st.fresh.length) {
      var last = st.fresh[st.fresh.length - 1];
      $("lag").textContent = fmt(now - last.t * 1000, 0, " ms");
    }
    S.streams.forEach(function (other) { other.fresh = []; });
  }

  function select(name) {
    if (!S.streams.has(name)) return false;
    S.selected = name;
    history.replaceState(null, "", "#stream=" + encodeURIComponent(name));
    S.view = null;
    S.follow = true;
    $("follow").hidden = true;
    scheduleRender();
    return true;
  }

  // -- start ------------------------------------------------------------------------
  function start() {
    $("stream-select").addEventListener("change", function (e) { select(e.target.value); });
    $("follow").addEventListener("click", backToLive);
    var resizing = null;
    window.addEventListener("resize", function () {
      clearTimeout(resizing);
      resizing = setTimeout(function () {
        for (var name in S.charts) {
          var u = S.charts[name];
          u.setSize({ width: Math.max(300, u.root.parentNode.clientWidth), height: CHART_HEIGHT });
        }
      }, 100);
    });
    setInterval(updateFacts, 250);
    updateFacts();
    connect();
  }

  // For tests, the benchmark and the curious: the page's own data, read-only use.
  window.emomonDashboard = {
    get charts() { return S.charts; },
    get selected() { var st = current(); return st ? st.name : null; },
    streams: function () { return Array.from(S.streams.keys()); },
    select: select,
    buffers: function () {
      var out = {};
      S.streams.forEach(function (st, name) { out[name] = st.t.length; });
      return out;
    },
    metrics: function () {
      return {
        lag: S.lag.summary(),
        recvLag: S.recvLag.summary(),
        buffers: this.buffers(),
        trail: current() ? current().trail.length : 0,
        heap: performance.memory ? performance.memory.usedJSHeapSize : null,
        renders: S.renders,
        link: S.link,
        tab: S.tab,
      };
    },
    takeLags: function () { return { shown: S.lag.take(), received: S.recvLag.take() }; },
  };

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
