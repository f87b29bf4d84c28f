// p2pchain explorer: a subject's heart rate over time, drawn as inline SVG.
//
// P2PChart.render(box, points, {from, to, now}) draws into box (an element
// the chart fills): points are {t (Unix ms), bpm, state ("final",
// "confirmed" or "pending"), id, height, confirmations}, any order; from and
// to bound the time axis. It draws a BPM axis with its unit, a local-time
// axis whose tick step follows the range (minutes, hours, days, months),
// gridlines, the normal resting range (60-100 bpm) shaded and labelled, and
// one marker per reading whose shape and fill say its state. Hovering,
// touching, or focusing the chart and pressing the arrow keys shows a
// reading's value, time and state. The chart redraws itself to its box's
// width.
"use strict";

(function () {
  const ns = "http://www.w3.org/2000/svg";
  const MIN = 60e3, HOUR = 60 * MIN, DAY = 24 * HOUR;
  const NORMAL = [60, 100]; // resting heart rate of an adult, bpm

  function svgEl(tag, attrs, text) {
    const e = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // Tick steps of the time axis: [unit, count, approximate length in ms].
  const steps = [
    ["minute", 1, MIN], ["minute", 2, 2 * MIN], ["minute", 5, 5 * MIN], ["minute", 10, 10 * MIN],
    ["minute", 15, 15 * MIN], ["minute", 30, 30 * MIN], ["hour", 1, HOUR], ["hour", 2, 2 * HOUR],
    ["hour", 3, 3 * HOUR], ["hour", 6, 6 * HOUR], ["hour", 12, 12 * HOUR], ["day", 1, DAY],
    ["day", 2, 2 * DAY], ["day", 7, 7 * DAY], ["day", 14, 14 * DAY], ["month", 1, 30 * DAY],
    ["month", 3, 91 * DAY], ["month", 6, 182 * DAY], ["year", 1, 365 * DAY],
  ];

  // timeTicks returns the local-time ticks between from and to, at most
  // about max of them, aligned on whole minutes, hours, days or months.
  function timeTicks(from, to, max) {
    const span = to - from;
    const [unit, n] = steps.find((s) => span / s[2] <= max) || steps[steps.length - 1];
    const d = new Date(from);
    d.setSeconds(0, 0);
    if (unit === "minute") d.setMinutes(Math.floor(d.getMinutes() / n) * n);
    else if (unit === "hour") d.setHours(Math.floor(d.getHours() / n) * n, 0);
    else {
      d.setHours(0, 0);
      if (unit === "month") d.setDate(1);
      if (unit === "month") d.setMonth(Math.floor(d.getMonth() / n) * n);
      if (unit === "year") d.setMonth(0, 1);
    }
    const next = {
      minute: () => d.setMinutes(d.getMinutes() + n), hour: () => d.setHours(d.getHours() + n),
      day: () => d.setDate(d.getDate() + n), month: () => d.setMonth(d.getMonth() + n),
      year: () => d.setFullYear(d.getFullYear() + n),
    }[unit];
    const ticks = [];
    for (let i = 0; i < 500 && d.getTime() <= to; i++, next()) {
      if (d.getTime() >= from) ticks.push(d.getTime());
    }
    return { unit, ticks };
  }

  // fmtTime is a tick's time of day, HH:MM on the 24-hour clock, as the
  // tables write times (not the locale's, which may be 04:40 PM).
  const fmtTime = (t) => { const d = new Date(t); return `${pad2(d.getHours())}:${pad2(d.getMinutes())}`; };
  const fmtDay = (t) => new Date(t).toLocaleDateString([], { day: "numeric", month: "short" });
  const fmtMonth = (t) => new Date(t).toLocaleDateString([], { month: "short" });
  // fmtFull shows a time as YYYY-MM-DD HH:MM:SS in the browser's time
  // zone, naming the zone (its short name, such as EST, or its offset,
  // such as GMT+5:30): a bare local time, or a day/month order, would be
  // ambiguous. Every full time the explorer shows is written by it.
  const pad2 = (n) => String(n).padStart(2, "0");
  const zoneFmt = new Intl.DateTimeFormat("en-US", { timeZoneName: "short" }); // made once: a page shows up to 2,000 times
  const fmtFull = (t) => {
    const d = new Date(t);
    const zone = zoneFmt.formatToParts(d).find((x) => x.type === "timeZoneName");
    return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ` +
      `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())} ${zone ? zone.value : offsetName(d)}`;
  };
  // offsetName is d's UTC offset in the browser's zone, as UTC+hh:mm.
  const offsetName = (d) => {
    const m = -d.getTimezoneOffset();
    return `UTC${m < 0 ? "-" : "+"}${pad2(Math.floor(Math.abs(m) / 60))}:${pad2(Math.abs(m) % 60)}`;
  };
  const dayKey = (t) => new Date(t).toDateString();
  const yearOf = (t) => new Date(t).getFullYear();

  // tickLabel gives a tick's two lines: the time (or day, or month) and,
  // where it changes from the tick before, the day (or year).
  function tickLabel(unit, t, prev) {
    if (unit === "minute" || unit === "hour") {
      return [fmtTime(t), prev === undefined || dayKey(prev) !== dayKey(t) ? fmtDay(t) : ""];
    }
    const first = unit === "day" ? fmtDay(t) : fmtMonth(t);
    return [first, prev === undefined || yearOf(prev) !== yearOf(t) ? String(yearOf(t)) : ""];
  }

  // bpmTicks returns a round step and the axis bounds, always showing the
  // normal range.
  function bpmScale(points, max) {
    let lo = Math.min(NORMAL[0] - 10, ...points.map((p) => p.bpm - 5));
    let hi = Math.max(NORMAL[1] + 10, ...points.map((p) => p.bpm + 5));
    const step = [5, 10, 20, 25, 50, 100].find((s) => (hi - lo) / s <= max) || 100;
    lo = Math.max(0, Math.floor(lo / step) * step);
    hi = Math.ceil(hi / step) * step;
    const ticks = [];
    for (let b = lo; b <= hi; b += step) ticks.push(b);
    return { lo, hi, ticks };
  }

  const stateText = (p) => p.state === "pending" ? "pending (not in a block yet)"
    : `${p.state} · block #${p.height} · ${p.confirmations} confirmation${p.confirmations === 1 ? "" : "s"}`;

  // marker draws a reading's marker: final readings are filled circles,
  // confirmed ones hollow circles, pending ones hollow diamonds.
  function marker(p, x, y, r) {
    const attrs = { class: `pt ${p.state}`, "data-state": p.state, "data-id": p.id || "", "data-t": p.t };
    if (p.state === "pending") {
      return svgEl("path", { ...attrs, d: `M${x} ${y - r - 1}L${x + r + 1} ${y}L${x} ${y + r + 1}L${x - r - 1} ${y}Z` });
    }
    return svgEl("circle", { ...attrs, cx: x, cy: y, r });
  }

  function draw(box, points, opts) {
    const W = Math.max(280, Math.floor(box.clientWidth || 800));
    const narrow = W < 520;
    const H = narrow ? 250 : 320;
    const L = narrow ? 42 : 54, R = narrow ? 10 : 18, T = 14, B = 46;
    const from = opts.from, to = Math.max(opts.to, opts.from + 1);
    const shown = points.filter((p) => p.t >= from && p.t <= to).sort((a, b) => a.t - b.t);
    const ys = bpmScale(shown, Math.max(3, Math.floor((H - T - B) / 32)));
    const x = (t) => L + ((t - from) / (to - from)) * (W - L - R);
    const y = (b) => T + (1 - (b - ys.lo) / (ys.hi - ys.lo)) * (H - T - B);

    const svg = svgEl("svg", { class: "chart", width: W, height: H, viewBox: `0 0 ${W} ${H}`,
      role: "img", tabindex: "0", "aria-roledescription": "chart",
      "aria-label": shown.length
        ? `Heart rate in bpm over time: ${shown.length} reading${shown.length === 1 ? "" : "s"} from ${fmtFull(shown[0].t)} to ${fmtFull(shown[shown.length - 1].t)}; lowest ${Math.min(...shown.map((p) => p.bpm))}, highest ${Math.max(...shown.map((p) => p.bpm))} bpm. Use the arrow keys to read each one; the table below lists them.`
        : "Heart rate chart: no readings in this time range" });

    // Normal resting range, under everything else.
    const nTop = y(Math.min(NORMAL[1], ys.hi)), nBot = y(Math.max(NORMAL[0], ys.lo));
    svg.append(svgEl("rect", { class: "normal", x: L, y: nTop, width: W - L - R, height: nBot - nTop }));
    svg.append(svgEl("text", { class: "normal-label", x: L + 6, y: nTop + 14 },
      narrow ? "normal 60–100" : "normal resting range 60–100 bpm"));

    // BPM axis: gridlines, values and the unit.
    for (const b of ys.ticks) {
      svg.append(svgEl("line", { class: "grid", x1: L, x2: W - R, y1: y(b), y2: y(b) }));
      svg.append(svgEl("text", { class: "tick", x: L - 6, y: y(b) + 4, "text-anchor": "end" }, b));
    }
    svg.append(svgEl("text", { class: "unit", x: 12, y: T + (H - T - B) / 2, "text-anchor": "middle",
      transform: `rotate(-90 12 ${T + (H - T - B) / 2})` }, "heart rate (bpm)"));

    // Time axis: gridlines and local-time labels.
    const tt = timeTicks(from, to, Math.max(2, Math.floor((W - L - R) / (narrow ? 64 : 84))));
    let prev;
    for (const t of tt.ticks) {
      const [a, b] = tickLabel(tt.unit, t, prev);
      prev = t;
      svg.append(svgEl("line", { class: "grid", x1: x(t), x2: x(t), y1: T, y2: H - B }));
      svg.append(svgEl("text", { class: "tick", x: x(t), y: H - B + 16, "text-anchor": "middle" }, a));
      if (b) svg.append(svgEl("text", { class: "tick sub", x: x(t), y: H - B + 30, "text-anchor": "middle" }, b));
    }
    svg.append(svgEl("line", { class: "axis", x1: L, x2: W - R, y1: H - B, y2: H - B }));
    svg.append(svgEl("line", { class: "axis", x1: L, x2: L, y1: T, y2: H - B }));
    const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
    svg.append(svgEl("text", { class: "unit", x: W - R, y: H - 4, "text-anchor": "end" },
      zone ? `local time (${zone})` : "local time"));

    // The readings: a thin line in time order, then their markers.
    if (shown.length > 1) {
      svg.append(svgEl("polyline", { class: "line", points: shown.map((p) => `${x(p.t).toFixed(1)},${y(p.bpm).toFixed(1)}`).join(" ") }));
    }
    const r = shown.length > 300 ? 3 : narrow ? 4 : 4.5;
    const g = svgEl("g", { class: "points" });
    for (const p of shown) g.append(marker(p, x(p.t), y(p.bpm), r));
    svg.append(g);

    // Hover: a crosshair, a ring on the reading and a tip with its details.
    const cross = svgEl("line", { class: "cross", y1: T, y2: H - B, visibility: "hidden" });
    const ring = svgEl("circle", { class: "ring", r: r + 4, visibility: "hidden" });
    svg.append(cross, ring);
    const tip = document.createElement("div");
    tip.className = "tip";
    tip.hidden = true;
    tip.setAttribute("role", "status");
    let sel = -1;
    function show(i) {
      sel = i;
      if (i < 0 || i >= shown.length) {
        delete box.dataset.sel;
        cross.setAttribute("visibility", "hidden");
        ring.setAttribute("visibility", "hidden");
        tip.hidden = true;
        return;
      }
      const p = shown[i], px = x(p.t), py = y(p.bpm);
      box.dataset.sel = p.id || String(p.t); // kept when the chart redraws at a new width
      cross.setAttribute("x1", px); cross.setAttribute("x2", px);
      cross.setAttribute("visibility", "visible");
      ring.setAttribute("cx", px); ring.setAttribute("cy", py);
      ring.setAttribute("visibility", "visible");
      const flag = p.bpm < NORMAL[0] ? " (below normal resting range)" : p.bpm > NORMAL[1] ? " (above normal resting range)" : "";
      tip.replaceChildren(
        Object.assign(document.createElement("strong"), { textContent: `${p.bpm} bpm` }), flag,
        document.createElement("br"), fmtFull(p.t), document.createElement("br"), stateText(p));
      tip.hidden = false;
      const tw = tip.offsetWidth, th = tip.offsetHeight;
      let left = px + 12;
      if (left + tw > W) left = Math.max(0, px - 12 - tw);
      tip.style.left = `${left}px`;
      tip.style.top = `${Math.max(0, Math.min(py - th - 10, H - th))}px`;
    }
    function nearest(ev) {
      const rect = svg.getBoundingClientRect();
      const mx = ev.clientX - rect.left, my = ev.clientY - rect.top;
      let best = -1, bd = Infinity;
      shown.forEach((p, i) => {
        const dx = x(p.t) - mx, dy = y(p.bpm) - my;
        const d = dx * dx + dy * dy / 16; // closest in time, then in bpm
        if (d < bd) { bd = d; best = i; }
      });
      return bd <= 60 * 60 ? best : -1;
    }
    svg.addEventListener("pointermove", (ev) => show(nearest(ev)));
    svg.addEventListener("pointerdown", (ev) => show(nearest(ev)));
    svg.addEventListener("pointerleave", (ev) => { if (ev.pointerType === "mouse") show(-1); });
    svg.addEventListener("blur", () => show(-1));
    svg.addEventListener("keydown", (ev) => {
      const k = { ArrowRight: 1, ArrowUp: 1, ArrowLeft: -1, ArrowDown: -1 }[ev.key];
      if (k && shown.length) { show(sel < 0 ? (k > 0 ? 0 : shown.length - 1) : Math.max(0, Math.min(shown.length - 1, sel + k))); ev.preventDefault(); }
      else if (ev.key === "Home" && shown.length) { show(0); ev.preventDefault(); }
      else if (ev.key === "End" && shown.length) { show(shown.length - 1); ev.preventDefault(); }
      else if (ev.key === "Escape") show(-1);
    });

    const keep = box.dataset.sel;
    box.replaceChildren(svg, tip);
    if (keep) show(shown.findIndex((p) => (p.id || String(p.t)) === keep));
    if (!shown.length) {
      const empty = document.createElement("p");
      empty.className = "chart-empty";
      empty.textContent = "No readings in this time range.";
      box.append(empty);
    }
    return shown.length;
  }

  // render draws the chart now and again whenever box changes width.
  function render(box, points, opts) {
    box.classList.add("chart-box");
    delete box.dataset.sel;
    let width = box.clientWidth;
    const n = draw(box, points, opts);
    if (box._p2pObserver) box._p2pObserver.disconnect();
    if (window.ResizeObserver) {
      box._p2pObserver = new ResizeObserver(() => {
        if (!box.isConnected) { box._p2pObserver.disconnect(); return; }
        if (box.clientWidth !== width) { width = box.clientWidth; draw(box, points, opts); }
      });
      box._p2pObserver.observe(box);
    }
    return n;
  }

  // legend returns an element explaining the markers and the shaded band.
  function legend() {
    const div = document.createElement("div");
    div.className = "legend";
    const item = (state, text) => {
      const s = svgEl("svg", { width: 16, height: 16, viewBox: "0 0 16 16", "aria-hidden": "true" });
      if (state === "normal") s.append(svgEl("rect", { class: "normal", x: 1, y: 3, width: 14, height: 10 }));
      else s.append(marker({ state, t: 0 }, 8, 8, 5));
      const span = document.createElement("span");
      span.className = "legend-item";
      span.append(s, text);
      return span;
    };
    div.append(item("final", "final (filled circle): in a block that never leaves the chain"),
      item("confirmed", "confirmed (open circle): in a block, not final yet"),
      item("pending", "pending (open diamond): waiting for a block"),
      item("normal", "normal resting range, 60–100 bpm"));
    return div;
  }

  window.P2PChart = { render, legend, timeTicks, fmtFull };
})();
