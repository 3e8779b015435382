/* emomon dashboard: the valence-arousal plane (a canvas) and the scalp map of
 * channel quality (SVG), drawn from one stream's state by dashboard.js. */
(function () {
  "use strict";

  var TRAIL = 20; // predicted windows in the plane's trail
  var INK = "#1c2430";
  // quality.reasons -> colour and legend text, in legend order
  var QUALITY = [
    ["ok", "#2e9d5b", "ok"],
    ["interpolated", "#3b7dd8", "interpolated (kept)"],
    ["line_noise", "#e0c000", "line noise (kept)"],
    ["noisy", "#f28e2b", "noisy"],
    ["flat", "#8c6bb1", "flat"],
    ["railed", "#d62728", "railed"],
    ["nonfinite", "#6e1414", "non-finite"],
    ["no_data", "#a0a0a0", "no data"],
    ["unknown", "#333333", "other finding"],
  ];
  var QUALITY_COLOUR = {};
  QUALITY.forEach(function (q) { QUALITY_COLOUR[q[0]] = q[1]; });
  var scalpKey = null; // the stream and channels the map was built for

  function $(id) { return document.getElementById(id); }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }
  var SVG_NS = "http://www.w3.org/2000/svg";
  function svg(tag, attrs) {
    var e = document.createElementNS(SVG_NS, tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    return e;
  }

  // -- the valence-arousal plane ----------------------------------------------------
  function hasVA(st) {
    if (!st.tasks) return false;
    var names = {};
    st.tasks.forEach(function (t) { names[t.name] = t.binary; });
    return names.valence === true && names.arousal === true;
  }
  function drawVA(st) {
    var card = $("va-card");
    card.hidden = !hasVA(st);
    if (card.hidden) return;
    var canvas = $("va");
    var css = 300, dpr = window.devicePixelRatio || 1;
    if (canvas.width !== css * dpr) { canvas.width = css * dpr; canvas.height = css * dpr; }
    var ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, css, css);
    var L = 40, T = 10, W = 250, H = 250;
    function X(v) { return L + v * W; }
    function Y(a) { return T + (1 - a) * H; }
    var quads = [
      [0.5, 1, 1, 0.5, "#fff4d6", "excited", "high V \u00b7 high A"],
      [0, 1, 0.5, 0.5, "#fde3e1", "stressed", "low V \u00b7 high A"],
      [0, 0.5, 0.5, 0, "#e4e9f2", "sad / tired", "low V \u00b7 low A"],
      [0.5, 0.5, 1, 0, "#e2f3e8", "calm", "high V \u00b7 low A"],
    ];
    quads.forEach(function (q) {
      ctx.fillStyle = q[4];
      ctx.fillRect(X(q[0]), Y(q[1]), X(q[2]) - X(q[0]), Y(q[3]) - Y(q[1]));
      ctx.fillStyle = "#374151";
      ctx.textAlign = "center";
      ctx.font = "600 12px system-ui, sans-serif";
      var cx = (X(q[0]) + X(q[2])) / 2;
      var top = q[1] === 1;
      var cy = top ? Y(q[1]) + 16 : Y(q[3]) - 22;
      ctx.fillText(q[5], cx, cy);
      ctx.font = "10px system-ui, sans-serif";
      ctx.fillStyle = "#5d6775";
      ctx.fillText(q[6], cx, cy + 13);
    });
    ctx.strokeStyle = "#4b5563";
    ctx.lineWidth = 1;
    ctx.strokeRect(L + 0.5, T + 0.5, W, H);
    ctx.setLineDash([5, 4]);
    ctx.beginPath();
    ctx.moveTo(X(0.5), Y(0)); ctx.lineTo(X(0.5), Y(1));
    ctx.moveTo(X(0), Y(0.5)); ctx.lineTo(X(1), Y(0.5));
    ctx.stroke();
    ctx.setLineDash([]);
    ctx.fillStyle = INK;
    ctx.font = "10px system-ui, sans-serif";
    ctx.textAlign = "center";
    [0, 0.5, 1].forEach(function (v) {
      ctx.fillText(v.toFixed(1), X(v), T + H + 12);
      ctx.textAlign = "right";
      ctx.fillText(v.toFixed(1), L - 4, Y(v) + 3);
      ctx.textAlign = "center";
    });
    ctx.font = "11px system-ui, sans-serif";
    ctx.fillText("valence: p(high) \u2192", L + W / 2, T + H + 26);
    ctx.save();
    ctx.translate(12, T + H / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.fillText("arousal: p(high) \u2192", 0, 0);
    ctx.restore();
    var trail = st.trail;
    if (trail.length > 1) {
      for (var i = 1; i < trail.length; i++) {
        ctx.strokeStyle = "rgba(28, 36, 48, " + (0.1 + 0.6 * i / trail.length) + ")";
        ctx.lineWidth = 1.5;
        ctx.beginPath();
        ctx.moveTo(X(trail[i - 1].v), Y(trail[i - 1].a));
        ctx.lineTo(X(trail[i].v), Y(trail[i].a));
        ctx.stroke();
      }
    }
    trail.forEach(function (p, i) {
      ctx.fillStyle = "rgba(0, 114, 178, " + (0.15 + 0.6 * (i + 1) / trail.length) + ")";
      ctx.beginPath();
      ctx.arc(X(p.v), Y(p.a), 3, 0, 2 * Math.PI);
      ctx.fill();
    });
    var note = "";
    if (trail.length) {
      var now = trail[trail.length - 1];
      var flagged = st.last && st.last.ok === false;
      ctx.beginPath();
      ctx.arc(X(now.v), Y(now.a), 7, 0, 2 * Math.PI);
      ctx.fillStyle = flagged ? "#ffffff" : "#0072B2";
      ctx.fill();
      ctx.lineWidth = 2;
      ctx.strokeStyle = flagged ? "#b3261e" : "#ffffff";
      ctx.stroke();
      ctx.lineWidth = 1;
      ctx.strokeStyle = INK;
      ctx.beginPath();
      ctx.arc(X(now.v), Y(now.a), 8.5, 0, 2 * Math.PI);
      ctx.stroke();
      note = flagged ? "latest window flagged: last estimate shown" : "seq " + now.seq;
    } else {
      note = "no estimate yet";
    }
    $("va-note").textContent = note;
    $("va-trail-n").textContent = String(TRAIL);
  }

  // -- the scalp map ----------------------------------------------------------------
  function buildScalp(st) {
    var map = $("scalp");
    map.textContent = "";
    map.appendChild(svg("path", { d: "M -0.12 -0.985 L 0 -1.13 L 0.12 -0.985", class: "head" }));
    map.appendChild(svg("ellipse", { cx: -1.03, cy: 0, rx: 0.055, ry: 0.16, class: "head" }));
    map.appendChild(svg("ellipse", { cx: 1.03, cy: 0, rx: 0.055, ry: 0.16, class: "head" }));
    map.appendChild(svg("circle", { cx: 0, cy: 0, r: 1, class: "head" }));
    var unplaced = [];
    st.electrodes = {};
    if (!st.meta) return;
    st.meta.ch_names.forEach(function (ch, i) {
      var pos = st.meta.pos_2d[i];
      if (!pos) { unplaced.push(ch); return; }
      var g = svg("g", { "data-channel": ch });
      var c = svg("circle", { cx: pos[0], cy: -pos[1], r: 0.085, class: "electrode" });
      var title = svg("title", {});
      var label = svg("text", { x: pos[0], y: -pos[1] });
      label.textContent = ch;
      c.appendChild(title);
      g.appendChild(c);
      g.appendChild(label);
      map.appendChild(g);
      st.electrodes[ch] = { circle: c, label: label, title: title };
    });
    $("scalp-unplaced").textContent = unplaced.length
      ? "Not on the map (no 10-05 position): " + unplaced.join(", ")
      : "";
  }
  function light(hex) {
    var r = parseInt(hex.substr(1, 2), 16), g = parseInt(hex.substr(3, 2), 16), b = parseInt(hex.substr(5, 2), 16);
    return 0.299 * r + 0.587 * g + 0.114 * b > 150;
  }
  function drawScalp(st) {
    var key = st.name + "|" + (st.meta ? JSON.stringify(st.meta.ch_names) : "");
    if (key !== scalpKey) { buildScalp(st); scalpKey = key; }
    var counts = {};
    var reasons = st.last && st.last.q ? st.last.q : {};
    var names = st.meta ? st.meta.ch_names : Object.keys(reasons);
    names.forEach(function (ch) {
      var r = st.last ? reasons[ch] || "ok" : null;
      if (r != null && !QUALITY_COLOUR[r]) r = "unknown";
      if (r != null) counts[r] = (counts[r] || 0) + 1;
      var e = st.electrodes && st.electrodes[ch];
      if (!e) return;
      var colour = r == null ? "#e5e7eb" : QUALITY_COLOUR[r];
      e.circle.setAttribute("fill", colour);
      e.label.setAttribute("fill", light(colour) ? INK : "#ffffff");
      e.title.textContent = ch + ": " + (r == null ? "no window yet" : r.replace("_", " "));
    });
    var legend = $("scalp-legend");
    legend.textContent = "";
    QUALITY.forEach(function (q) {
      if (q[0] === "unknown" && !counts.unknown) return;
      var li = el("li");
      li.dataset.reason = q[0];
      var dot = el("span", "dot");
      dot.style.background = q[1];
      li.appendChild(dot);
      li.appendChild(document.createTextNode(q[2] + " "));
      li.appendChild(el("span", "n", String(counts[q[0]] || 0)));
      legend.appendChild(li);
    });
    // Findings over the kept history: a channel that was bad a minute ago stays named.
    var seen = {};
    for (var i = 0; i < st.q.length; i++) {
      var row = st.q[i];
      if (!row) continue;
      for (var ch in row) {
        var k = ch + ": " + row[ch].replace("_", " ");
        seen[k] = (seen[k] || 0) + 1;
      }
    }
    var found = Object.keys(seen).sort(function (x, y) { return seen[y] - seen[x]; });
    $("scalp-history").textContent = found.length
      ? "Findings in the shown history (windows): " + found.slice(0, 8).map(function (k) {
          return k + " \u00d7" + seen[k];
        }).join(", ") + (found.length > 8 ? ", \u2026" : "")
      : "No channel findings in the shown history.";
    $("scalp-note").textContent = st.last
      ? "window seq " + st.last.seq + (st.last.ok ? "" : " (flagged)")
      : "no window yet";
  }

  window.emomonPanels = {
    TRAIL: TRAIL, QUALITY: QUALITY, INK: INK, $: $, el: el,
    drawVA: drawVA, drawScalp: drawScalp,
  };
})();
