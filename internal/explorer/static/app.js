// p2pchain explorer: reads the node's API on the same origin.
"use strict";

const api = "/api/v1";
const $ = (id) => document.getElementById(id);

// el builds an element; text is set with textContent, never parsed as HTML.
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}
const link = (href, text, cls) => el("a", cls ? { href, class: cls } : { href }, text);
const short = (h) => h.slice(0, 10);
const when = (ms) => new Date(ms).toLocaleString();

// get reads an API path; a failure throws an Error with the API's message,
// its status and code, and the candidates of an "ambiguous" prefix.
async function get(path) {
  const r = await fetch(api + path, { headers: { Accept: "application/json" } });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) {
    throw Object.assign(new Error(body.error || r.statusText),
      { status: r.status, code: body.code, candidates: body.candidates || [] });
  }
  return body;
}

// --- finality ------------------------------------------------------------------

// finalHeight is the node's final height as last heard (status or a final
// event): a main-chain block at or below it never leaves the chain.
let finalHeight = -1;

// stateBadge shows where a block or reading stands: "final" (it never
// leaves the chain), "confirmed" (in the main chain, not final yet),
// "pending" (a reading waiting for a block) or "side branch".
function stateBadge(state) {
  const text = { final: "final", confirmed: "confirmed", pending: "pending", side: "side branch" }[state] || state;
  return el("span", { class: `state state-${state}`, "data-state": state }, text);
}

// markFinal turns the badges of listed main-chain blocks at or below the
// final height into "final".
function markFinal() {
  for (const badge of document.querySelectorAll("#blocks tr[data-height] .state-confirmed")) {
    const h = Number(badge.closest("tr").dataset.height);
    if (h <= finalHeight) badge.replaceWith(stateBadge("final"));
  }
}

function setFinal(height, hash) {
  if (height < finalHeight) return; // an older answer
  finalHeight = height;
  $("final").replaceChildren(link(`#/block/${hash}`, `#${height}`));
  markFinal();
}

function consensusText(s) {
  const a = s.authority;
  if (!a) return s.consensus === "authority" ? "authority" : "proof of work";
  const self = a.self >= 0 ? `authority #${a.self}` : "follower";
  return `authority · h${a.height} r${a.round} ${a.step} · ${a.authorities.length} signers · ${self}`;
}

// --- summary cards -----------------------------------------------------------

async function refreshStatus() {
  try {
    const s = await get("/status");
    $("network").textContent = `network ${s.network} · difficulty ${s.difficulty} · peer ${s.peer_id.slice(-8)}`;
    $("height").textContent = s.height;
    $("tip").replaceChildren(link(`#/block/${s.tip}`, short(s.tip)));
    $("peer-count").textContent = s.peers;
    $("pending").textContent = s.pending;
    $("consensus").textContent = consensusText(s);
    setFinal(s.finalized_height, s.finalized_hash);
    $("sync").textContent = s.sync.state === "syncing"
      ? `syncing ${Math.floor(s.sync.progress * 100)}%` : s.sync.state.replace("_", " ");
  } catch (e) {
    $("sync").textContent = "node unreachable";
  }
}

// --- home: recent blocks, submit form, peers ------------------------------

function readingsText(block) {
  const rs = block.readings || [];
  const parts = rs.slice(0, 3).map((r) => `${r.subject} ${r.bpm}`);
  if (rs.length > 3) parts.push(`+${rs.length - 3} more`);
  return parts.join(", ");
}

// blockRow is a main-chain block in the list; v is its GET /blocks answer.
function blockRow(v, fresh) {
  const b = v.block;
  const final = v.final || b.height <= finalHeight;
  const tr = el("tr", { "data-height": b.height, class: fresh ? "new" : "" },
    el("td", {}, link(`#/block/${b.height}`, b.height)),
    el("td", { class: "mono" }, link(`#/block/${b.hash}`, short(b.hash))),
    el("td", {}, b.height === 0 ? "genesis" : when(b.time)),
    el("td", { class: "readings" }, readingsText(b)),
    el("td", { class: "state-cell" }, stateBadge(final ? "final" : "confirmed")));
  return tr;
}

async function loadBlocks() {
  const list = await get("/blocks?limit=20");
  const full = await Promise.all(list.blocks.map((s) => get(`/blocks/${s.hash}`)));
  const tbody = $("blocks");
  if (tbody) tbody.replaceChildren(...full.map((v) => blockRow(v, false)));
}

async function showNewTip(hash) {
  const tbody = $("blocks");
  if (!tbody) return;
  const v = await get(`/blocks/${hash}`);
  const b = v.block;
  if (!v.main) return; // replaced already: another tip event follows
  // A reorganisation may replace rows at this height and above.
  for (const tr of [...tbody.children]) if (Number(tr.dataset.height) >= b.height) tr.remove();
  if (tbody.querySelector(`tr[data-height="${b.height - 1}"]`) === null && b.height > 1) {
    return loadBlocks(); // we missed blocks: reload the list
  }
  tbody.prepend(blockRow(v, true));
  while (tbody.children.length > 20) tbody.lastChild.remove();
}

async function loadPeers() {
  const ul = $("peers");
  if (!ul) return;
  const p = await get("/peers");
  ul.replaceChildren(...(p.peers.length ? p.peers.map((x) =>
    el("li", { class: "mono" }, `${x.id.slice(-12)} · height ${x.height}`)) : [el("li", { class: "muted" }, "no peers")]));
}

function setupSubmit() {
  const form = $("submit-form");
  const token = localStorage.getItem("p2pchain-token");
  if (token) { $("token").value = token; $("token-row").hidden = false; }
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const out = $("submit-result");
    out.className = "";
    out.textContent = "submitting…";
    const headers = { "Content-Type": "application/json" };
    const t = $("token").value.trim();
    if (t) { headers.Authorization = `Bearer ${t}`; localStorage.setItem("p2pchain-token", t); }
    try {
      const r = await fetch(`${api}/readings`, { method: "POST", headers,
        body: JSON.stringify({ subject: $("subject").value.trim(), bpm: Number($("bpm").value) }) });
      const body = await r.json().catch(() => ({}));
      if (r.status === 401) { $("token-row").hidden = false; throw new Error("this node requires its API token for writes"); }
      if (!r.ok) throw new Error(body.error || r.statusText);
      out.replaceChildren("accepted: ", link(`#/reading/${body.id}`, short(body.id), "mono"), " (pending, mining)");
    } catch (e) {
      out.className = "error";
      out.textContent = e.message;
    }
  });
}

async function showHome() {
  $("view").replaceChildren($("home").content.cloneNode(true));
  setupSubmit();
  await Promise.all([loadBlocks(), loadPeers()]);
}

// --- block, reading and subject pages -------------------------------------

function fields(pairs) {
  const dl = el("dl");
  for (const [k, v] of pairs) dl.append(el("dt", {}, k), el("dd", {}, v));
  return dl;
}

function readingsTable(rows) {
  return el("table", {},
    el("thead", {}, el("tr", {}, ...["time", "subject", "BPM", "id", "where"].map((h) => el("th", {}, h)))),
    el("tbody", {}, ...rows.map(({ reading: r, where }) => el("tr", {},
      el("td", {}, when(r.time)),
      el("td", {}, link(`#/subject/${encodeURIComponent(r.subject)}`, r.subject)),
      el("td", {}, r.bpm),
      el("td", { class: "mono" }, link(`#/reading/${r.id}`, short(r.id))),
      el("td", {}, where)))));
}

async function showBlock(ref) {
  const v = await get(`/blocks/${encodeURIComponent(ref)}`);
  const b = v.block;
  $("view").replaceChildren(el("section", {},
    el("h2", {}, `Block ${b.height}`),
    fields([["hash", el("span", { class: "mono" }, b.hash)],
      ["parent", b.height === 0 ? "none (genesis)" : link(`#/block/${b.parent}`, b.parent, "mono")],
      ["time", when(b.time)], ["readings root", el("span", { class: "mono" }, b.root)],
      ["difficulty", b.difficulty], ["nonce", b.nonce],
      ["main chain", v.main ? `yes, ${v.confirmations} confirmations` : "no (side branch)"],
      ["state", stateBadge(!v.main ? "side" : v.final ? "final" : "confirmed")]]),
    el("h2", {}, `${b.readings.length} reading${b.readings.length === 1 ? "" : "s"}`),
    readingsTable(b.readings.map((r) => ({ reading: r, where: "" })))));
}

async function showReading(id) {
  const v = await get(`/readings/${encodeURIComponent(id)}`);
  const r = v.reading;
  $("view").replaceChildren(el("section", {},
    el("h2", {}, "Reading"),
    fields([["id", el("span", { class: "mono" }, r.id)],
      ["subject", link(`#/subject/${encodeURIComponent(r.subject)}`, r.subject)],
      ["BPM", r.bpm], ["time", when(r.time)], ["author", el("span", { class: "mono" }, r.author)],
      ["status", v.status === "pending" ? el("span", {}, stateBadge("pending"), " waiting for a block")
        : el("span", {}, stateBadge(v.final ? "final" : "confirmed"), " in block ", link(`#/block/${v.block}`, v.height),
          `, ${v.confirmations} confirmations`)]])));
}

// chart draws BPM over time as an SVG line.
function chart(points) {
  const ns = "http://www.w3.org/2000/svg";
  const W = 800, H = 260, L = 40, R = 10, T = 10, B = 30;
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("class", "chart");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "BPM over time");
  const add = (tag, attrs, text) => {
    const e = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    svg.append(e);
  };
  const t0 = Math.min(...points.map((p) => p.t)), t1 = Math.max(...points.map((p) => p.t));
  const b0 = Math.min(...points.map((p) => p.bpm)) - 5, b1 = Math.max(...points.map((p) => p.bpm)) + 5;
  const x = (t) => L + (t1 === t0 ? (W - L - R) / 2 : ((t - t0) / (t1 - t0)) * (W - L - R));
  const y = (b) => T + (1 - (b - b0) / (b1 - b0)) * (H - T - B);
  add("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, class: "axis" });
  add("line", { x1: L, y1: T, x2: L, y2: H - B, class: "axis" });
  for (const b of [b0, (b0 + b1) / 2, b1]) add("text", { x: 4, y: y(b) + 4 }, Math.round(b));
  add("text", { x: L, y: H - 8 }, new Date(t0).toLocaleString());
  if (t1 !== t0) add("text", { x: W - R, y: H - 8, "text-anchor": "end" }, new Date(t1).toLocaleString());
  add("polyline", { points: points.map((p) => `${x(p.t)},${y(p.bpm)}`).join(" "), class: "line" });
  for (const p of points) add("circle", { cx: x(p.t), cy: y(p.bpm), r: 3, class: "dot" });
  return svg;
}

async function showSubject(subject) {
  const v = await get(`/subjects/${encodeURIComponent(subject)}/readings?limit=500`);
  const rows = [...v.pending.map((r) => ({ reading: r, where: stateBadge("pending") })),
    ...v.readings.map((x) => ({ reading: x.reading,
      where: el("span", {}, stateBadge(x.final ? "final" : "confirmed"), " ", link(`#/block/${x.height}`, `block ${x.height}`)) }))];
  const points = rows.map(({ reading: r }) => ({ t: r.time, bpm: r.bpm })).sort((a, b) => a.t - b.t);
  $("view").replaceChildren(el("section", {},
    el("h2", {}, `Subject ${subject}: ${rows.length} reading${rows.length === 1 ? "" : "s"}`),
    points.length ? chart(points) : el("p", { class: "muted" }, "no readings yet"),
    readingsTable(rows)));
}

// --- routing and search ------------------------------------------------------

// problem shows why a page could not be shown: an ambiguous short hash
// with links to the hashes it could mean, or a plain "Not found".
function problem(e, kind) {
  if (e.code === "ambiguous") {
    return el("section", {}, el("h2", {}, "Ambiguous"), el("p", {}, e.message),
      el("ul", { class: "candidates" }, ...e.candidates.map((h) =>
        el("li", { class: "mono" }, link(`#/${kind}/${h}`, h)))));
  }
  return el("section", {}, el("h2", {}, "Not found"),
    el("p", { class: "error" }, e.message), link("#/", "back to the latest blocks"));
}

async function route() {
  const [, page, arg] = location.hash.match(/^#\/(\w+)\/(.+)$/) || [];
  try {
    if (page === "block") await showBlock(decodeURIComponent(arg));
    else if (page === "reading") await showReading(decodeURIComponent(arg));
    else if (page === "subject") await showSubject(decodeURIComponent(arg));
    else if (page === "search") await showSearch(decodeURIComponent(arg));
    else await showHome();
  } catch (e) {
    $("view").replaceChildren(problem(e, page === "reading" ? "reading" : "block"));
  }
}

// search goes to what q names: a block by height, a block or a reading by
// its hash or its first digits (at least 4), else a subject.
function search(q) {
  q = q.trim();
  if (!q) return;
  const target = `#/search/${encodeURIComponent(q)}`;
  if (location.hash === target) route(); else location.hash = target;
}

async function showSearch(q) {
  const height = /^(0|[1-9]\d*)$/.test(q);
  if (height && q.length < 4) { location.replace(`#/block/${q}`); return; }
  const hex = /^[0-9a-f]{4,64}$/i.test(q);
  if (height || hex) {
    // A height, or a short hash of a block or of a reading: whichever exists.
    const found = [];
    const tries = [["block", () => get(`/blocks/${q}`).then((v) => v.block)]];
    if (hex) tries.push(["reading", () => get(`/readings/${q}`).then((v) => v.reading)]);
    for (const [kind, lookup] of tries) {
      try {
        const x = await lookup();
        if (kind === "block" && height && String(x.height) === q) { location.replace(`#/block/${x.hash}`); return; }
        found.push({ kind, hashes: [kind === "block" ? x.hash : x.id] });
      } catch (e) {
        if (e.code === "ambiguous") found.push({ kind, hashes: e.candidates, ambiguous: true });
      }
    }
    if (found.length === 1 && !found[0].ambiguous) {
      location.replace(`#/${found[0].kind}/${found[0].hashes[0]}`);
      return;
    }
    if (found.length > 0) {
      const items = found.flatMap((f) => f.hashes.map((h) =>
        el("li", { class: "mono" }, `${f.kind} `, link(`#/${f.kind}/${h}`, h))));
      $("view").replaceChildren(el("section", {}, el("h2", {}, "Ambiguous"),
        el("p", {}, `More than one block or reading starts with ${q}; type more digits.`),
        el("ul", { class: "candidates" }, ...items)));
      return;
    }
    // Neither: a subject only if it has readings (a subject may look hex).
    const v = await get(`/subjects/${encodeURIComponent(q)}/readings?limit=1`).catch(() => null);
    if (!v || v.readings.length + v.pending.length === 0) {
      $("view").replaceChildren(el("section", {}, el("h2", {}, "Not found"),
        el("p", { class: "error" }, `Nothing matches ${q}: no block, reading or subject.`),
        link("#/", "back to the latest blocks")));
      return;
    }
  }
  location.replace(`#/subject/${encodeURIComponent(q)}`);
}

// --- live updates --------------------------------------------------------------

function listen() {
  // EventSource cannot send headers: off loopback the token goes in the query.
  const streamToken = localStorage.getItem("p2pchain-token");
  const es = new EventSource(streamToken ? `${api}/events?access_token=${encodeURIComponent(streamToken)}` : `${api}/events`);
  const live = (on) => { const l = $("live"); if (l) l.classList.toggle("off", !on); };
  es.addEventListener("open", () => live(true));
  es.addEventListener("error", () => live(false));
  es.addEventListener("tip", (ev) => {
    const d = JSON.parse(ev.data);
    refreshStatus();
    showNewTip(d.hash).catch(() => loadBlocks());
  });
  es.addEventListener("final", (ev) => {
    const d = JSON.parse(ev.data);
    setFinal(d.height, d.hash);
  });
  for (const name of ["peer-connected", "peer-gone"]) {
    es.addEventListener(name, () => { refreshStatus(); loadPeers().catch(() => {}); });
  }
}

$("search").addEventListener("submit", (ev) => { ev.preventDefault(); search($("q").value); });
window.addEventListener("hashchange", route);
refreshStatus();
setInterval(refreshStatus, 5000);
route();
listen();
