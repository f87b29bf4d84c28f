// p2pchain explorer: reads the node's API on the same origin.
"use strict";

const api = "/api/v1";
const $ = (id) => document.getElementById(id);

// el builds an element; text is set with textContent, never parsed as HTML.
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v; else e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === undefined || c === null) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}
const link = (href, text, cls) => el("a", cls ? { href, class: cls } : { href }, text);
const short = (h) => h.slice(0, 10);
// when shows a time as YYYY-MM-DD HH:MM:SS in the browser's time zone, the
// zone named (chart.js's fmtFull, which the chart's hover text uses too).
const when = (ms) => P2PChart.fmtFull(ms);
const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;
const confirmations = (n) => plural(n, "confirmation");
const subjectHref = (s) => `#/subject/${encodeURIComponent(s)}`;
// subjectPath is a subject as one segment of an API path. The subjects "."
// and ".." are valid, but encodeURIComponent leaves them as they are, and
// the API's router would take them for the current and parent directory:
// they are written %2E and %2E%2E, as the API's own next links write them.
// (A browser's URL parser reads even %2E%2E as "..", so in a browser these
// two subjects still reach the wrong path; other clients send it as is.)
const subjectPath = (s) => (s === "." ? "%2E" : s === ".." ? "%2E%2E" : encodeURIComponent(s));

// peerID shows a shortened peer ID with the whole of it on hover.
const peerID = (id, n = 12) => el("span", { class: "mono peer-id", title: id }, `…${id.slice(-n)}`);

// get reads an API path (under /api/v1, or a whole "/api/v1/…" path from
// a next link); a failure throws an Error with the API's message, its
// status and code, and the candidates of an "ambiguous" prefix.
async function get(path) {
  const r = await fetch(path.startsWith(api + "/") ? path : api + path, { headers: { Accept: "application/json" } });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) {
    throw Object.assign(new Error(body.error || `${r.status} ${r.statusText}`),
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
  const a = link(`#/block/${hash}`, `#${height}`);
  a.title = hash;
  $("final").replaceChildren(a);
  markFinal();
}

function consensusText(s) {
  const a = s.authority;
  if (!a) return s.consensus === "authority" ? "authority" : "proof of work";
  const self = a.self >= 0 ? `authority #${a.self}` : "follower";
  return `authority · h${a.height} r${a.round} ${a.step} · ${a.authorities.length} signers · ${self}`;
}

// --- status strip ----------------------------------------------------------------

const syncWords = { synced: "synced", syncing: "syncing", behind: "behind", no_peers: "no peers" };

function showSync(sync) {
  const pct = Math.max(0, Math.min(100, Math.floor((sync.progress ?? 1) * 100)));
  const word = syncWords[sync.state] || String(sync.state).replace("_", " ");
  $("sync").textContent = sync.state === "syncing" || sync.state === "behind" ? `${word} ${pct}%` : word;
  $("sync-bar").style.width = `${pct}%`;
  $("sync-meter").setAttribute("aria-valuenow", pct);
  $("sync-meter").classList.toggle("done", pct >= 100);
  $("sync-detail").textContent = sync.target !== undefined
    ? `height ${sync.height} of ${sync.target}${sync.peer ? " from " : ""}` : "";
  if (sync.peer) $("sync-detail").append(peerID(sync.peer, 8));
}

async function refreshStatus() {
  try {
    const s = await get("/status");
    $("network").replaceChildren(`network ${s.network} · ${s.consensus === "authority" ? "authority" : `difficulty ${s.difficulty}`} · this node `,
      peerID(s.peer_id, 8));
    $("height").textContent = s.height;
    const tip = link(`#/block/${s.tip}`, short(s.tip));
    tip.title = s.tip;
    $("tip").replaceChildren(tip);
    $("peer-count").textContent = s.peers;
    $("pending").textContent = s.pending;
    $("consensus").textContent = consensusText(s);
    $("consensus").title = s.authority
      ? `authorities:\n${s.authority.authorities.map((id, i) => `#${i} ${id}`).join("\n")}` : "";
    setFinal(s.finalized_height, s.finalized_hash);
    showSync(s.sync || { state: "synced", progress: 1 });
  } catch (e) {
    $("sync").textContent = "node unreachable";
    $("sync-detail").textContent = "";
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
  const hash = link(`#/block/${b.hash}`, short(b.hash));
  hash.title = b.hash;
  const tr = el("tr", { "data-height": b.height, class: fresh ? "new" : "" },
    el("td", {}, link(`#/block/${b.height}`, b.height)),
    el("td", { class: "mono" }, hash),
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
    el("li", {}, peerID(x.id), ` · height ${x.height}`)) : [el("li", { class: "muted" }, "no peers")]));
}

// --- the API token ---------------------------------------------------------------

// The node's API token, once a write with it was accepted, is kept in this
// tab's sessionStorage: the browser forgets it when the tab closes, and the
// form's "forget token" button forgets it at once. It goes to this node only:
// in the Authorization header of a write, and as ?access_token= on the event
// stream (EventSource cannot send headers). Earlier versions kept it in
// localStorage, without end: a copy found there is moved here.
const TOKEN_KEY = "p2pchain-token";

function storage(kind) {
  try { return window[kind]; } catch (e) { return null; } // storage refused by the browser
}

function storedToken() {
  const local = storage("localStorage"), session = storage("sessionStorage");
  try {
    const old = local && local.getItem(TOKEN_KEY);
    if (old !== null && old !== undefined) {
      local.removeItem(TOKEN_KEY);
      if (session && !session.getItem(TOKEN_KEY)) session.setItem(TOKEN_KEY, old);
    }
    return session ? session.getItem(TOKEN_KEY) : null;
  } catch (e) {
    return null;
  }
}

function rememberToken(t) {
  const session = storage("sessionStorage");
  try { if (session) session.setItem(TOKEN_KEY, t); } catch (e) { /* kept nowhere */ }
  listen(); // the event stream again, with the token
}

// The read token (the node's api.read-token) opens the event stream from
// another machine and nothing else: it is kept apart from the token,
// under its own key, and never offered for a write.
const READ_TOKEN_KEY = "p2pchain-read-token";

function storedReadToken() {
  const session = storage("sessionStorage");
  try { return session ? session.getItem(READ_TOKEN_KEY) : null; } catch (e) { return null; }
}

function rememberReadToken(t) {
  const session = storage("sessionStorage");
  try { if (session) session.setItem(READ_TOKEN_KEY, t); } catch (e) { /* kept nowhere */ }
  showForgetRead();
  listen();
}

// forgetToken forgets both tokens, wherever they are kept or typed.
function forgetToken() {
  for (const kind of ["sessionStorage", "localStorage"]) {
    try { const s = storage(kind); if (s) { s.removeItem(TOKEN_KEY); s.removeItem(READ_TOKEN_KEY); } } catch (e) { /* nothing kept */ }
  }
  for (const id of ["token", "live-token"]) { const f = $(id); if (f) f.value = ""; }
  showForgetRead();
  listen(); // the event stream again, without them
}

// showForgetRead shows the header's "forget read token" button while a
// read token is kept (the form's button is on the home page only).
function showForgetRead() { $("forget-read-token").hidden = !storedReadToken(); }

function setupSubmit() {
  const form = $("submit-form");
  const out = $("submit-result");
  const forget = $("forget-token");
  const token = storedToken();
  if (token) { $("token").value = token; $("token-row").hidden = false; }
  forget.hidden = !token;
  forget.addEventListener("click", () => {
    forgetToken(); // empties the token field too
    $("token").focus(); // the button goes: focus must not go with it
    forget.hidden = true;
    out.className = "";
    out.textContent = "token forgotten: this browser no longer keeps it";
  });
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    out.className = "";
    out.textContent = "submitting…";
    const headers = { "Content-Type": "application/json" };
    const t = $("token").value.trim();
    if (t) headers.Authorization = `Bearer ${t}`;
    try {
      const r = await fetch(`${api}/readings`, { method: "POST", headers,
        body: JSON.stringify({ subject: $("subject").value.trim(), bpm: Number($("bpm").value) }) });
      const body = await r.json().catch(() => ({}));
      if (r.status === 401) {
        $("token-row").hidden = false;
        // The node says why (a read token, another node's token).
        throw new Error(t ? (body.error || "the node refused this API token") : "this node requires its API token for writes");
      }
      if (t && t !== storedToken()) { rememberToken(t); forget.hidden = false; }
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

// --- receipts ----------------------------------------------------------------------

// receiptLink offers a reading's receipt (GET /readings/{id}/receipt) as a
// file, receipt-<short id>.json. A pending reading has none yet; a reading
// listed in a side-branch block has none for that block (side is true).
function receiptLink(id, pending, side) {
  if (pending) return el("span", { class: "no-receipt muted", title: "a receipt exists once the reading is in a block" }, "none yet (pending)");
  if (side) {
    return el("span", { class: "no-receipt muted", title: "a receipt proves a reading in a main-chain block; open the reading to see whether the main chain holds it too" },
      "none: in a side-branch block, not in the main chain");
  }
  return el("a", { class: "receipt", href: `${api}/readings/${id}/receipt`, download: `receipt-${short(id)}.json`,
    "data-id": id, title: `download the receipt of reading ${id}` }, "receipt");
}

// downloadReceipt fetches a receipt first, so that an error is said on the
// page rather than saved as the file.
async function downloadReceipt(a) {
  const note = a.parentElement.querySelector(".receipt-error") || el("span", { class: "receipt-error error", role: "status" });
  note.textContent = "";
  try {
    const r = await fetch(a.href, { headers: { Accept: "application/json" } });
    const text = await r.text();
    if (!r.ok) {
      let msg = `${r.status} ${r.statusText}`;
      try { msg = JSON.parse(text).error || msg; } catch (e) { /* not JSON */ }
      throw new Error(r.status === 404 && !/reading/.test(msg) ? `receipts are not served by this node (${msg})` : msg);
    }
    const url = URL.createObjectURL(new Blob([text], { type: "application/json" }));
    const save = el("a", { href: url, download: a.getAttribute("download"), hidden: "" });
    document.body.append(save);
    save.click();
    save.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  } catch (e) {
    note.textContent = ` ${e.message}`;
    a.after(note);
  }
}

document.addEventListener("click", (ev) => {
  const a = ev.target.closest && ev.target.closest("a.receipt");
  if (!a || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey) return;
  ev.preventDefault();
  downloadReceipt(a);
});

// --- block, reading and subject pages -------------------------------------

function fields(pairs) {
  const dl = el("dl");
  for (const [k, v] of pairs) dl.append(el("dt", {}, k), el("dd", {}, v));
  return dl;
}

const wrap = (table) => el("div", { class: "table-wrap" }, table);

// readingsTable lists readings; rows are {reading, where, pending, side}
// (side: listed in a side-branch block). A bpm outside the normal resting
// range is flagged HIGH or LOW in its row, as the latest reading is.
function readingsTable(rows, withSubject = true) {
  const head = ["time", ...(withSubject ? ["subject"] : []), "BPM", "id", "where", "receipt"];
  return wrap(el("table", { class: "stack readings-table" },
    el("thead", {}, el("tr", {}, ...head.map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, ...rows.map(({ reading: r, where, pending, side }) => el("tr", { "data-id": r.id },
      el("td", { "data-label": "time" }, when(r.time)),
      withSubject ? el("td", { "data-label": "subject" }, link(subjectHref(r.subject), r.subject)) : null,
      el("td", { "data-label": "BPM", class: "bpm" }, bpmCell(r.bpm)),
      el("td", { "data-label": "id", class: "mono" }, link(`#/reading/${r.id}`, short(r.id))),
      el("td", { "data-label": "where" }, where),
      el("td", { "data-label": "receipt" }, receiptLink(r.id, pending, side)))))));
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
      ["main chain", v.main ? `yes, ${confirmations(v.confirmations)}` : "no (side branch)"],
      ["state", stateBadge(!v.main ? "side" : v.final ? "final" : "confirmed")]]),
    el("h2", {}, plural(b.readings.length, "reading")),
    readingsTable(b.readings.map((r) => ({ reading: r, where: v.main ? "" : stateBadge("side"), side: !v.main })))));
}

async function showReading(id) {
  const v = await get(`/readings/${encodeURIComponent(id)}`);
  const r = v.reading;
  const pending = v.status === "pending";
  $("view").replaceChildren(el("section", {},
    el("h2", {}, "Reading"),
    fields([["id", el("span", { class: "mono" }, r.id)],
      ["subject", link(subjectHref(r.subject), r.subject)],
      ["BPM", r.bpm], ["time", when(r.time)], ["author", el("span", { class: "mono" }, r.author)],
      ["status", pending ? el("span", {}, stateBadge("pending"), " waiting for a block")
        : el("span", {}, stateBadge(v.final ? "final" : "confirmed"), " in block ", link(`#/block/${v.block}`, v.height),
          `, ${confirmations(v.confirmations)}`)],
      ["receipt", el("span", {}, receiptLink(r.id, pending),
        pending ? "" : " · check it offline on the ", pending ? "" : link("#/check", "receipt check page"))]])));
}

// --- subjects ---------------------------------------------------------------------

const NORMAL = [60, 100];

// flag says, in words, a bpm outside the normal resting range.
function bpmCell(bpm) {
  if (bpm === undefined || bpm === null) return "–";
  const out = bpm < NORMAL[0] ? "low" : bpm > NORMAL[1] ? "high" : "";
  // A space a screen reader reads ("142 high"), which the flag's margin
  // shows anyway.
  return el("span", {}, String(bpm), out ? el("span", { class: "sr-only" }, " ") : null,
    out ? el("span", { class: `flag flag-${out}`, title: `${out === "low" ? "below" : "above"} the normal resting range (60–100 bpm)` }, out) : null);
}

const subjectColumns = [
  { key: "subject", label: "subject", get: (s) => s.subject, cell: (s) => link(subjectHref(s.subject), s.subject) },
  { key: "count", label: "readings", num: true, get: (s) => s.count },
  { key: "latest", label: "latest", num: true, get: (s) => s.latest ? s.latest.bpm : null,
    cell: (s) => s.latest ? bpmCell(s.latest.bpm) : "–" },
  { key: "latest-time", label: "latest at", num: true, get: (s) => s.latest ? s.latest.time : null,
    cell: (s) => s.latest ? when(s.latest.time) : "–" },
  { key: "min", label: "min", num: true, get: (s) => s.count ? s.min : null },
  { key: "mean", label: "mean", num: true, get: (s) => s.count ? s.mean : null,
    cell: (s) => s.count ? s.mean.toFixed(1) : "–" },
  { key: "max", label: "max", num: true, get: (s) => s.count ? s.max : null },
  { key: "last-seen", label: "last seen", num: true, get: (s) => s.last_seen || null,
    cell: (s) => s.last_seen ? when(s.last_seen) : "–" },
  { key: "pending", label: "pending", num: true, get: (s) => s.pending || 0 },
];

const MAX_SUBJECTS = 5000;
let subjectSort = { key: "subject", dir: 1 };

async function showSubjects() {
  const status = el("p", { class: "muted", role: "status" }, "loading subjects…");
  const section = el("section", {}, el("h2", {}, "Subjects"), status);
  $("view").replaceChildren(section);
  const all = [];
  let path = "/subjects?limit=100", total;
  try {
    while (path && all.length < MAX_SUBJECTS) {
      const page = await get(path);
      all.push(...page.subjects);
      total = page.total;
      path = page.next;
    }
  } catch (e) {
    status.className = "error";
    status.textContent = e.status === 404 && !all.length
      ? `This node does not list subjects (${e.message}). Search for a subject by name instead.`
      : `Could not read the subjects: ${e.message}`;
    if (!all.length) return;
  }
  if ($("view").firstChild !== section) return; // the user went elsewhere
  const shownTotal = total ?? all.length;
  status.className = "muted";
  status.textContent = `${plural(shownTotal, "subject")}${all.length < shownTotal ? `, the first ${all.length} shown` : ""}. ` +
    "Counts, min, mean and max are over readings in blocks; pending readings wait for one. " +
    "Flags mark values outside the normal resting range (60–100 bpm).";
  const filter = el("input", { id: "subject-filter", type: "search", placeholder: "filter by subject", autocapitalize: "none", spellcheck: "false" });
  const tbody = el("tbody");
  const ths = subjectColumns.map((c) => {
    const b = el("button", { type: "button", class: "sort", "data-key": c.key }, c.label);
    b.addEventListener("click", () => {
      subjectSort = { key: c.key, dir: subjectSort.key === c.key ? -subjectSort.dir : (c.num ? -1 : 1) };
      fill();
    });
    return el("th", { scope: "col", class: c.num ? "num" : "" }, b);
  });
  const table = el("table", { id: "subjects", class: "stack subjects" }, el("thead", {}, el("tr", {}, ...ths)), tbody);
  function fill() {
    const col = subjectColumns.find((c) => c.key === subjectSort.key) || subjectColumns[0];
    const q = filter.value.trim().toLowerCase();
    const rows = all.filter((s) => !q || s.subject.toLowerCase().includes(q)).sort((a, b) => {
      const x = col.get(a), y = col.get(b);
      if (x === y) return a.subject < b.subject ? -1 : 1;
      if (x === null) return 1; // empty values last either way
      if (y === null) return -1;
      return (x < y ? -1 : 1) * subjectSort.dir;
    });
    ths.forEach((th, i) => {
      const c = subjectColumns[i];
      th.setAttribute("aria-sort", c.key === col.key ? (subjectSort.dir > 0 ? "ascending" : "descending") : "none");
    });
    tbody.replaceChildren(...rows.map((s) => el("tr", { "data-subject": s.subject },
      ...subjectColumns.map((c) => el("td", { class: `${c.key}${c.num ? " num" : ""}`, "data-label": c.label },
        c.cell ? c.cell(s) : (c.get(s) ?? "–"))))));
    if (!rows.length) tbody.append(el("tr", {}, el("td", { colspan: subjectColumns.length, class: "muted" }, "no subject matches")));
  }
  filter.addEventListener("input", fill);
  fill();
  section.append(el("label", { class: "filter" }, "Filter ", filter), wrap(table));
}

// --- a subject's readings and chart ------------------------------------------------

// MAX_READINGS is the most readings a subject's page loads at once;
// MAX_PAGES the most pages it reads for them, more for a time range, whose
// pages may come back short or empty (each examines at most 10,000 index
// entries).
const MAX_READINGS = 2000, MAX_PAGES = 60, MAX_WINDOW_PAGES = 200;
const ranges = [["1h", 3600e3, "last hour"], ["24h", 86400e3, "last 24 hours"], ["7d", 7 * 86400e3, "last 7 days"],
  ["30d", 30 * 86400e3, "last 30 days"], ["all", 0, "all readings"]];
let chartRange = "all";

// loadSubjectReadings reads up to MAX_READINGS of a subject's readings in
// the ledger's order: pending ones first, then by block, newest block first
// (not by the readings' times: a back-fill of old readings sits in new
// blocks). With since (Unix ms) only the readings taken then or later.
// truncated: there are more than it returns; full: it stopped at
// MAX_READINGS (else, if truncated, at its page limit).
// wanted, if given, says whether the page still wants the readings: the
// loader stops between pages once it does not (the page was left).
async function loadSubjectReadings(subject, since, wanted) {
  const windowed = since !== undefined;
  let path = `/subjects/${subjectPath(subject)}/readings?limit=100${windowed ? `&since=${since}` : ""}`;
  const points = [];
  let pages = 0;
  const maxPages = windowed ? MAX_WINDOW_PAGES : MAX_PAGES;
  while (path && pages < maxPages && points.length < MAX_READINGS) {
    if (wanted && !wanted()) throw new Error("the page was left");
    const v = await get(path);
    pages++;
    for (const r of v.pending || []) {
      points.push({ t: r.time, bpm: r.bpm, state: "pending", id: r.id, reading: r });
    }
    for (const x of v.readings) {
      points.push({ t: x.reading.time, bpm: x.reading.bpm, state: x.final ? "final" : "confirmed", id: x.reading.id,
        height: x.height, confirmations: x.confirmations, reading: x.reading });
    }
    path = v.next;
  }
  const full = points.length >= MAX_READINGS;
  return { points: points.slice(0, MAX_READINGS), truncated: !!path || points.length > MAX_READINGS, full, pages };
}

// rangeText is the line under the chart: how many readings the range
// holds, how many of them are pending, and the min, mean and max of those
// in blocks, saying which readings they cover where some are pending.
function rangeText(label, inRange) {
  const inBlocks = inRange.filter((p) => p.state !== "pending");
  const pending = inRange.length - inBlocks.length;
  const s = stats(inBlocks);
  return `${label}: ${plural(inRange.length, "reading")}` +
    (pending ? `, ${pending} pending` : "") +
    (s ? ` · ${pending ? `over the ${plural(inBlocks.length, "reading")} in blocks: ` : ""}` +
      `min ${s.min} · mean ${s.mean.toFixed(1)} · max ${s.max} bpm` : "");
}

const stats = (ps) => ps.length ? {
  min: Math.min(...ps.map((p) => p.bpm)), max: Math.max(...ps.map((p) => p.bpm)),
  mean: ps.reduce((a, p) => a + p.bpm, 0) / ps.length,
} : null;

async function showSubject(subject) {
  // The subject's figures over all its readings, where the node keeps a
  // subject index: its total, and its latest reading in a block by time.
  const summary = get(`/subjects/${subjectPath(subject)}`).catch(() => null);
  const { points, truncated } = await loadSubjectReadings(subject);
  const all = await summary;
  if (!points.length) {
    $("view").replaceChildren(el("section", {}, el("h2", {}, "Not found"),
      el("p", { class: "error" }, `Subject ${subject} has no readings on this node (subjects are case-sensitive).`),
      link("#/subjects", "all subjects")));
    return;
  }
  const pendingPoints = points.filter((p) => p.state === "pending");
  // The latest reading is the one taken last. Where every reading is
  // loaded, it is among them; else the loaded ones are those last added
  // to the ledger, and the latest is the summary's (the newest by time in
  // a block) or a pending reading taken after it (the pending readings
  // come first, so they are all loaded).
  const byTime = (a, p) => (p.t > a.t ? p : a);
  let newest, latestNote = null;
  if (!truncated) {
    newest = points.reduce(byTime);
  } else if (all && all.latest) {
    newest = pendingPoints.reduce(byTime, { t: all.latest.time, bpm: all.latest.bpm });
  } else if (pendingPoints.length && all) {
    newest = pendingPoints.reduce(byTime); // every reading is pending
  } else {
    // No subject index: the newest of those loaded, said so.
    newest = points.reduce(byTime);
    latestNote = " (of the readings loaded; this node keeps no subject index to say which is the latest of all)";
  }
  const pendingCount = all ? all.pending || 0 : pendingPoints.length;
  const buttons = ranges.map(([key, , label]) => {
    const b = el("button", { type: "button", class: "range", "data-range": key, "aria-pressed": String(key === chartRange), title: label }, key);
    b.addEventListener("click", () => { chartRange = key; update(); });
    return b;
  });
  const box = el("div", { id: "chart" });
  const rangeNote = el("p", { id: "range-note", class: "muted", role: "status" });
  const tableBox = el("div");
  // A truncated list holds the MAX_READINGS readings last added to the
  // ledger, which need not be the newest taken: the heading gives the
  // subject's true total where the node keeps the index, and a time range
  // loads the readings taken in it.
  const total = all ? all.count + (all.pending || 0) : null;
  const heading = !truncated ? plural(points.length, "reading")
    : total ? `${plural(total, "reading")}, at most ${points.length} charted` : `more than ${points.length} readings, at most ${points.length} charted`;
  $("view").replaceChildren(el("section", {},
    el("h2", {}, `Subject ${subject}: ${heading}`),
    el("p", { class: "facts" },
      el("span", { id: "latest" }, "latest ", el("strong", {}, bpmCell(newest.bpm)), " bpm at ", when(newest.t), latestNote),
      pendingCount ? el("span", {}, ` · ${pendingCount} pending`) : null,
      all && all.count ? el("span", { id: "all-time" }, el("br"),
        `all time: ${plural(all.count, "reading")} in blocks · min ${all.min} · mean ${Number(all.mean).toFixed(1)} · max ${all.max} bpm`) : null),
    truncated ? el("p", { class: "warn", id: "truncated" },
      `This subject has more readings than the explorer charts at once (${points.length}). ` +
      `"all" charts and lists the ${points.length} readings most recently added to the ledger, which are not necessarily the newest taken: ` +
      "the ledger is in block order, and readings imported late (a back-fill) sit in newer blocks. " +
      "Choose 1h, 24h, 7d or 30d to chart and list every reading taken in that time.") : null,
    el("div", { class: "range-bar", role: "group", "aria-label": "time range" }, el("span", { class: "muted" }, "show"), ...buttons),
    box, P2PChart.legend(), rangeNote,
    el("h3", {}, "Readings"), tableBox));

  // A time range of a truncated subject loads the readings taken in it
  // (since=now-span), once per range while the page is shown.
  const windows = new Map();
  let drawn = 0;
  async function update() {
    const seq = ++drawn;
    for (const b of buttons) b.setAttribute("aria-pressed", String(b.dataset.range === chartRange));
    const [key, span, label] = ranges.find((r) => r[0] === chartRange);
    let pts = points, now = Date.now(), win = null;
    if (span && truncated) {
      if (!windows.has(key)) {
        const at = Date.now();
        windows.set(key, loadSubjectReadings(subject, Math.floor(at - span), () => box.isConnected).then((w) => ({ ...w, at })));
      }
      rangeNote.textContent = `${label}: loading the readings taken in it…`;
      try {
        win = await windows.get(key);
      } catch (e) {
        windows.delete(key);
        if (seq === drawn) rangeNote.textContent = `${label}: could not read this range's readings: ${e.message}`;
        return;
      }
      if (seq !== drawn || !box.isConnected) return; // another range, or another page
      pts = win.points;
      now = win.at;
    }
    let from, to;
    if (span) { from = now - span; to = now; } else {
      const ts = pts.map((p) => p.t);
      from = Math.min(...ts); to = Math.max(...ts);
      const pad = Math.max((to - from) * 0.03, 5 * 60e3);
      from -= pad; to += pad;
    }
    const inRange = pts.filter((p) => p.t >= from && p.t <= to);
    P2PChart.render(box, pts, { from, to, now });
    let head = label, tail = "";
    if (!truncated) {
      if (inRange.length < points.length) tail = ` · ${points.length - inRange.length} outside this range`;
    } else if (!span) {
      head = `the ${points.length} most recently added to the ledger`;
    } else if (win.truncated && win.full) {
      head = `${label}, only the ${win.points.length} most recently added to the ledger`;
      tail = " · more readings were taken in this range than the explorer charts: choose a shorter range to see them all";
    } else if (win.truncated) {
      tail = ` · the explorer stopped after ${win.pages} pages of the subject index: readings of this range in older blocks may be missing`;
    } else if (total !== null && total > inRange.length) {
      tail = ` · ${total - inRange.length} outside this range`;
    }
    rangeNote.textContent = rangeText(head, inRange) + tail;
    const rows = inRange.slice().sort((a, b) => b.t - a.t).map((p) => ({ reading: p.reading, pending: p.state === "pending",
      where: p.state === "pending" ? stateBadge("pending")
        : el("span", {}, stateBadge(p.state), " ", link(`#/block/${p.height}`, `block ${p.height}`),
          el("span", { class: "muted small" }, ` · ${confirmations(p.confirmations)}`)) }));
    const first = rows.slice(0, 200);
    tableBox.replaceChildren(readingsTable(first, false));
    if (rows.length > first.length) {
      const more = el("button", { type: "button" }, `show all ${rows.length}`);
      more.addEventListener("click", () => tableBox.replaceChildren(readingsTable(rows, false)));
      tableBox.append(more);
    }
  }
  update();
}

// --- checking a receipt, in the browser ----------------------------------------------

function safeJSON(v) {
  try { return JSON.stringify(v, (k, x) => (typeof x === "bigint" ? x.toString() : x), 2); } catch (e) { return String(v); }
}

// receiptFacts lays out what a checked receipt proves, for people.
function receiptFacts(r) {
  if (!r || typeof r !== "object") return null;
  const t = Date.parse(r.time);
  const rows = [
    ["subject", r.subject], ["heart rate", r.bpm !== undefined ? `${r.bpm} bpm` : undefined],
    ["taken", Number.isNaN(t) ? r.time : `${when(t)} (your time zone)`],
    ["reading id", r.reading_id ? el("span", { class: "mono" }, r.reading_id) : undefined],
    ["in block", r.block ? el("span", {}, `#${r.height} `, el("span", { class: "mono" }, r.block)) : undefined],
    ["depth", r.depth !== undefined ? `${plural(r.depth, "block")} deep as of block #${r.tip_height}` : undefined],
    ["final", r.final ? `yes, by commit of ${r.signers} of ${r.authorities} authorities` : undefined],
    ["authority set", r.final && r.set_hash ? el("span", {}, el("span", { class: "mono" }, r.set_hash),
      " (compare with your network file: anyone can make a set of their own keys)") : undefined],
    ["proof of work", r.difficulty !== undefined && !r.final ? (r.difficulty === 0
      ? "NONE (difficulty 0): anyone can make such headers; this receipt proves nothing without a trusted block"
      : `${r.difficulty} leading zero bits a header (about 2^${r.difficulty} hashes each)`) : undefined],
    ["signed by", r.author ? el("span", { class: "mono" }, r.author) : undefined],
    ["trusted block", r.trusted ? el("span", { class: "mono" }, r.trusted_hash) : "none given: compare the hashes above with ones you trust"],
  ].filter(([, v]) => v !== undefined && v !== null);
  return fields(rows);
}

// checkDrop checks a file dropped anywhere on the check page (rather than
// letting the browser open it in place of the explorer); null elsewhere.
let checkDrop = null;
window.addEventListener("dragover", (ev) => { if (checkDrop && $("drop")) ev.preventDefault(); });
window.addEventListener("drop", (ev) => {
  if (!checkDrop || !$("drop")) return;
  ev.preventDefault();
  const f = ev.dataTransfer && ev.dataTransfer.files[0];
  if (f) checkDrop(f);
});

function showCheck() {
  $("view").replaceChildren($("check").content.cloneNode(true));
  const drop = $("drop"), file = $("receipt-file"), text = $("receipt-text"), out = $("check-result");
  let last = null; // {text, name} of the last receipt given

  function verdict(ok, title, sentence, extra) {
    out.replaceChildren(el("div", { class: `verdict ${ok ? "ok" : "bad"}`, "data-ok": String(ok) },
      el("p", { class: "verdict-title" }, el("span", { class: "icon", "aria-hidden": "true" }, ok ? "✓" : "✗"), " ", title),
      el("p", { class: "sentence" }, sentence), extra || null));
  }

  async function check(src) {
    last = src;
    const trust = $("trust").value.trim().toLowerCase();
    if (trust && !/^[0-9a-f]{64}$/.test(trust)) {
      return verdict(false, "Not checked", "The trusted block hash must be 64 hex digits (or left empty).");
    }
    let receipt;
    try { receipt = JSON.parse(src.text); } catch (e) {
      return verdict(false, "Not a receipt", `${src.name} is not JSON: ${e.message}`);
    }
    if (!window.P2PReceipt || typeof window.P2PReceipt.check !== "function") {
      return verdict(false, "Cannot check", "The receipt checker (receipt-check.js) is not available in this explorer.");
    }
    out.replaceChildren(el("p", { class: "muted" }, "checking…"));
    let res;
    try {
      // The text, not the parsed object: JSON.parse would round integers
      // above 2^53 (a nonce may be one), which would then fail the hashes.
      res = await window.P2PReceipt.check(typeof receipt === "object" ? src.text : receipt, trust || undefined);
    } catch (e) {
      res = { ok: false, error: e && e.message ? e.message : String(e) };
    }
    const from = el("p", { class: "muted small" }, `${src.name}${trust ? `, against trusted block ${short(trust)}…` : ", no trusted block hash given"}`);
    if (res && res.ok) {
      // Consistent is not the same as true: without a block the user
      // trusts, a receipt may describe a chain anyone could have made.
      const title = trust ? "Receipt valid, reaching your trusted block" : "Receipt valid, chain not verified: give a trusted block hash";
      verdict(true, title, res.proves || "The receipt is valid.", el("div", {}, receiptFacts(res.result), from,
        res.result ? el("details", {}, el("summary", {}, "everything the check found"), el("pre", {}, safeJSON(res.result))) : null));
    } else if (res && res.what === "trusted block not in receipt" && trust) {
      // The trust is checked last: every other check passed.
      verdict(false, "Receipt not proven against that block",
        `The receipt is consistent in itself (every other check passed), but it does not reach the block you trust, so nothing ties it to that chain, ` +
        `and a consistent receipt can be made up: ${res.error}. ` +
        "Give the reading's block or one above it in the receipt; for a block trusted since the receipt was made, get a newer receipt from a node.", from);
    } else {
      verdict(false, "Receipt NOT valid", `This receipt does not prove anything: ${(res && res.error) || "the check failed"}.`, from);
    }
  }

  const readFile = (f) => f.text().then((t) => check({ text: t, name: f.name }));
  file.addEventListener("change", () => { if (file.files[0]) readFile(file.files[0]); });
  for (const t of ["dragenter", "dragover"]) {
    drop.addEventListener(t, (ev) => { ev.preventDefault(); drop.classList.add("over"); });
  }
  for (const t of ["dragleave", "drop"]) drop.addEventListener(t, () => drop.classList.remove("over"));
  drop.addEventListener("drop", (ev) => {
    ev.preventDefault();
    ev.stopPropagation();
    const f = ev.dataTransfer.files[0];
    if (f) readFile(f);
  });
  checkDrop = (f) => readFile(f);
  $("check-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (text.value.trim()) check({ text: text.value, name: "the pasted receipt" });
    else if (last) check(last);
    else verdict(false, "Nothing to check", "Drop a receipt file, choose one, or paste its JSON first.");
  });
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
  return el("section", {}, el("h2", {}, e.status === 404 || e.code === "not_found" ? "Not found" : "Not available"),
    el("p", { class: "error" }, e.message), link("#/", "back to the latest blocks"));
}

function markNav(page) {
  for (const a of document.querySelectorAll("nav a[data-nav]")) {
    const on = a.dataset.nav === page || (a.dataset.nav === "subjects" && page === "subject") ||
      (a.dataset.nav === "home" && page === "block");
    if (on) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
}

// searchAlso is the page a search went to and the subject the query also
// names (a subject may look like a height or a hash): that page says so.
let searchAlso = null;

// alsoSubject is the line that offers the subject a search also matched.
const alsoSubject = (q) => el("p", { class: "also", id: "also-subject" }, "also: ",
  link(subjectHref(q), `subject ${q}`), el("span", { class: "muted" }, ` (a subject of this name has readings)`));

async function route() {
  const [, page, arg] = location.hash.match(/^#\/(\w+)(?:\/(.+))?$/) || [];
  markNav(page || "home");
  const also = searchAlso && searchAlso.hash === location.hash ? searchAlso.subject : null;
  searchAlso = null;
  try {
    if (page === "block" && arg) await showBlock(decodeURIComponent(arg));
    else if (page === "reading" && arg) await showReading(decodeURIComponent(arg));
    else if (page === "subject" && arg) await showSubject(decodeURIComponent(arg));
    else if (page === "search" && arg) await showSearch(decodeURIComponent(arg));
    else if (page === "subjects") await showSubjects();
    else if (page === "check") showCheck();
    else await showHome();
    if (also !== null && location.hash === `#/${page}/${arg}`) {
      const h2 = $("view").querySelector("h2");
      if (h2) h2.after(alsoSubject(also));
    }
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

function notFound(q, why) {
  $("view").replaceChildren(el("section", {}, el("h2", {}, "Not found"),
    el("p", { class: "error" }, why || `Nothing matches ${q}: no block, reading or subject.`),
    el("p", {}, "Search takes a block height, a block hash or reading id (whole, or its first 4 or more hex digits), or a subject exactly as written (subjects are case-sensitive)."),
    link("#/", "back to the latest blocks")));
}

// subjectHasReadings tells whether q is a subject with readings on this
// node: GET /subjects/{q} answers, or, on a node without the subject
// index, its readings' first page holds one.
async function subjectHasReadings(q) {
  try {
    await get(`/subjects/${subjectPath(q)}`);
    return true;
  } catch (e) {
    if (e.code !== "not_supported") return false;
  }
  try {
    const v = await get(`/subjects/${subjectPath(q)}/readings?limit=1`);
    return v.readings.length + v.pending.length > 0 || !!v.next;
  } catch (e) {
    return false;
  }
}

// goWithSubject goes to a search's result, which says so where the query
// also names a subject with readings.
function goWithSubject(hash, q, isSubject) {
  searchAlso = isSubject ? { hash, subject: q } : null;
  location.replace(hash);
}

async function showSearch(q) {
  const height = /^(0|[1-9]\d*)$/.test(q);
  const hex = /^[0-9a-f]{4,64}$/i.test(q);
  // A query that looks like a height or a hash may also be a subject
  // (numeric pseudonyms are common): asked at once, said beside the result.
  const isSubject = height || hex ? subjectHasReadings(q) : null;
  if (height && q.length < 4) {
    const [block, subject] = await Promise.all([get(`/blocks/${q}`).then(() => true, () => false), isSubject]);
    if (!block && subject) location.replace(subjectHref(q));
    else goWithSubject(`#/block/${q}`, q, block && subject);
    return;
  }
  if (height || hex) {
    // A height, or a short hash of a block or of a reading: whichever exists.
    const found = [];
    const tries = [["block", () => get(`/blocks/${q}`).then((v) => v.block)]];
    if (hex) tries.push(["reading", () => get(`/readings/${q}`).then((v) => v.reading)]);
    for (const [kind, lookup] of tries) {
      try {
        const x = await lookup();
        if (kind === "block" && height && String(x.height) === q) { goWithSubject(`#/block/${x.hash}`, q, await isSubject); return; }
        found.push({ kind, hashes: [kind === "block" ? x.hash : x.id] });
      } catch (e) {
        if (e.code === "ambiguous") found.push({ kind, hashes: e.candidates, ambiguous: true });
      }
    }
    if (found.length === 1 && !found[0].ambiguous) {
      goWithSubject(`#/${found[0].kind}/${found[0].hashes[0]}`, q, await isSubject);
      return;
    }
    if (found.length > 0) {
      const items = found.flatMap((f) => f.hashes.map((h) =>
        el("li", { class: "mono" }, `${f.kind} `, link(`#/${f.kind}/${h}`, h))));
      if (await isSubject) items.push(el("li", { class: "also-subject" }, "subject ", link(subjectHref(q), q)));
      $("view").replaceChildren(el("section", {}, el("h2", {}, "Ambiguous"),
        el("p", {}, `More than one block, reading or subject matches ${q}; type more digits, or pick one:`),
        el("ul", { class: "candidates" }, ...items)));
      return;
    }
    if (await isSubject) { location.replace(subjectHref(q)); return; }
    return notFound(q); // isSubject asked already whether it is a subject's name
  }
  // A subject only if it has readings (a subject may look hex).
  let v;
  try {
    v = await get(`/subjects/${subjectPath(q)}/readings?limit=1`);
  } catch (e) {
    return notFound(q, e.code === "bad_subject" ? `Nothing matches ${q}: it is not a block, a reading, nor a valid subject (${e.message}).` : undefined);
  }
  if (v.readings.length + v.pending.length === 0 && !v.next) return notFound(q);
  location.replace(subjectHref(q));
}

// --- live updates --------------------------------------------------------------

// stream is the open event stream; listen opens it again (with the token
// kept now, if any) and closes the one before.
let stream = null;

function listen() {
  if (stream) stream.close();
  // EventSource cannot send headers: off loopback the token goes in the query.
  const streamToken = storedToken() || storedReadToken();
  const es = new EventSource(streamToken ? `${api}/events?access_token=${encodeURIComponent(streamToken)}` : `${api}/events`);
  stream = es;
  const live = (on) => { const l = $("live"); if (l && stream === es) l.classList.toggle("off", !on); };
  // Only a stream that never opened may be refused for want of a token: a
  // stream that dropped (the node restarting) is retried by EventSource.
  let opened = false;
  es.addEventListener("open", () => { opened = true; live(true); $("live-token-form").hidden = true; });
  es.addEventListener("error", () => { live(false); if (stream === es && !opened) askStreamToken(es, streamToken); });
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
// askStreamToken shows the read-token prompt when the node refuses the
// event stream es (opened with token, if any) for want of a token: a
// browser on another machine. EventSource does not tell why it failed, so
// one request asks; a stream it opens is closed at once.
let asking = false;
async function askStreamToken(es, token) {
  if (asking) return;
  asking = true;
  const ctl = new AbortController();
  try {
    const r = await fetch(token ? `${api}/events?access_token=${encodeURIComponent(token)}` : `${api}/events`, { signal: ctl.signal });
    if (r.status === 401 && stream === es) {
      es.close(); // EventSource would retry a refusal without end
      $("live-token-form").hidden = false;
      $("live-token-note").classList.toggle("error", !!token);
      if (token) $("live-token-note").textContent = "The node refused this token for live updates: give its read token (api.read-token) or its token.";
    }
  } catch (e) { /* the node is down: the stream retries by itself */ }
  finally { ctl.abort(); asking = false; }
}

$("live-token-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const t = $("live-token").value.trim();
  $("live-token").value = "";
  if (t) rememberReadToken(t); // opens the stream again with it
});
$("forget-read-token").addEventListener("click", () => {
  try { const s = storage("sessionStorage"); if (s) s.removeItem(READ_TOKEN_KEY); } catch (e) { /* nothing kept */ }
  $("live-token").value = "";
  showForgetRead();
  $("live-token-form").hidden = true; // shown again if the node refuses the stream
  listen(); // without it
});
showForgetRead();

// A page left for another (and perhaps kept in the back-forward cache)
// closes its stream, so that it holds none of the browser's few
// connections to the node; it opens a new one if it is shown again.
window.addEventListener("pagehide", () => { if (stream) { stream.close(); stream = null; } });
window.addEventListener("pageshow", (ev) => { if (ev.persisted) { refreshStatus(); route(); listen(); } });

$("search").addEventListener("submit", (ev) => { ev.preventDefault(); search($("q").value); });
window.addEventListener("hashchange", route);
refreshStatus();
setInterval(refreshStatus, 5000);
route();
listen();
