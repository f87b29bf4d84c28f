// receipt-check.js: checks a p2pchain reading receipt in the browser, with
// no node and no network, exactly as `p2pchain check-receipt` does (Go:
// internal/receipt; format: docs/RECEIPTS.md). Plain JavaScript, no build
// step, no library: SHA-256 and Ed25519 come from WebCrypto
// (crypto.subtle; Ed25519 needs a current Chromium, Firefox 129+, Safari 17+
// or Node.js 20+), 64-bit integers are BigInt.
//
//   const out = await P2PReceipt.check(receiptObjectOrJSONText, trustedBlockHashHex);
//   out.ok     -> true: out.proves is the sentence, out.result the details
//   out.ok     -> false: out.error names what did not match ("merkle proof did not match: ...")
//
// Pass the receipt's JSON text rather than the parsed object when you can:
// JSON.parse turns integers above 2^53 (a nonce may be one) into
// approximations, which then fail the header hash. Given the text, the
// checker reads such numbers exactly.
(function (root) {
  "use strict";

  const FORMAT = "p2pchain-receipt/1";
  const MAX_HEADERS = 10000;
  const HEADER_VERSION = 2;
  const MAX_READINGS_LIMIT = 4096;
  const MAX_DIFFICULTY = 64;
  const MIN_BPM = 20, MAX_BPM = 300, MAX_SUBJECT_LEN = 64;
  const CHANGE_SIZE = 41, MAX_CHANGES = 16, MAX_AUTHORITIES = 256;
  const READING_DOMAIN = "p2pchain/reading/v1";
  const BFT_DOMAIN = "p2pchain/bft/v1";
  const SET_TAG = "p2pchain/bft/set/v1";
  const KIND_PRECOMMIT = 3;
  const U64 = (1n << 64n) - 1n;

  // Author keys refused before any signature check (docs/PROTOCOL.md 4.1).
  const SMALL_ORDER = [
    "0100000000000000000000000000000000000000000000000000000000000000",
    "0100000000000000000000000000000000000000000000000000000000000080",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000000000000000000000000000000000080",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
  ];

  // CheckError is a failed check: what names what did not match.
  class CheckError extends Error {
    constructor(what, detail) {
      super(what + " did not match" + (detail ? ": " + detail : ""));
      this.what = what;
    }
  }
  class Malformed extends Error {
    constructor(detail) {
      super("malformed receipt: " + detail);
      this.what = "malformed receipt";
    }
  }
  const fail = (what, detail) => { throw new CheckError(what, detail); };

  const subtle = () => {
    const c = root.crypto || (typeof globalThis !== "undefined" && globalThis.crypto);
    if (!c || !c.subtle) throw new Error("this browser has no WebCrypto (crypto.subtle): open the page over https or localhost");
    return c.subtle;
  };

  // --- decoding: every field has one encoding -------------------------

  function field(obj, name, where) {
    if (obj === null || typeof obj !== "object" || Array.isArray(obj)) throw new Malformed(where + ": want an object");
    if (!(name in obj)) return undefined;
    return obj[name];
  }
  function onlyFields(obj, names, where) {
    if (obj === null || typeof obj !== "object" || Array.isArray(obj)) throw new Malformed(where + ": want an object");
    for (const k of Object.keys(obj)) {
      if (!names.includes(k)) throw new Malformed(where + ": unknown field " + JSON.stringify(k));
    }
  }
  // int reads an integer of [min, max] given as a number, a string of
  // digits or a BigInt; a missing field is 0, as in Go.
  function int(v, min, max, where) {
    if (v === undefined || v === null) return 0n;
    let b;
    if (typeof v === "bigint") b = v;
    else if (typeof v === "number") {
      if (!Number.isSafeInteger(v)) throw new Malformed(where + ": " + v + " is not an exact integer (pass the receipt's JSON text, not JSON.parse's result)");
      b = BigInt(v);
    } else if (typeof v === "string" && /^-?[0-9]+$/.test(v)) b = BigInt(v);
    else throw new Malformed(where + ": want an integer");
    if (b < min || b > max) throw new Malformed(where + ": " + b + " is outside " + min + " to " + max);
    return b;
  }
  function hex(v, n, where) {
    if (v === undefined || v === null) return new Uint8Array(n === undefined ? 0 : n);
    if (typeof v !== "string" || !/^([0-9a-f]{2})*$/.test(v) || (n !== undefined && v.length !== 2 * n)) {
      throw new Malformed(where + ": want " + (n === undefined ? "" : 2 * n + " ") + "lower-case hex digits");
    }
    const out = new Uint8Array(v.length / 2);
    for (let i = 0; i < out.length; i++) out[i] = parseInt(v.substr(2 * i, 2), 16);
    return out;
  }
  function array(v, where) {
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) throw new Malformed(where + ": want an array");
    return v;
  }

  function decode(r) {
    onlyFields(r, ["format", "reading", "proof", "headers", "commit"], "receipt");
    const fmt = field(r, "format", "receipt");
    if (fmt !== undefined && typeof fmt !== "string") throw new Malformed("format: want a string");
    const rd = field(r, "reading", "receipt") || {};
    onlyFields(rd, ["id", "subject", "bpm", "time", "author", "sig"], "reading");
    const subject = field(rd, "subject", "reading");
    if (subject !== undefined && typeof subject !== "string") throw new Malformed("reading.subject: want a string");
    const pf = field(r, "proof", "receipt") || {};
    onlyFields(pf, ["index", "size", "path", "changes"], "proof");
    const out = {
      format: fmt || "",
      reading: {
        id: hex(rd.id, 32, "reading.id"),
        subject: subject || "",
        bpm: int(rd.bpm, 0n, 65535n, "reading.bpm"),
        time: int(rd.time, -(1n << 63n), (1n << 63n) - 1n, "reading.time"),
        author: hex(rd.author, 32, "reading.author"),
        sig: hex(rd.sig, 64, "reading.sig"),
      },
      proof: {
        index: int(pf.index, 0n, 0xffffffffn, "proof.index"),
        size: int(pf.size, 0n, 0xffffffffn, "proof.size"),
        path: array(pf.path, "proof.path").map((p, i) => hex(p, 32, "proof.path[" + i + "]")),
        changes: hex(pf.changes, undefined, "proof.changes"),
      },
      headers: array(field(r, "headers", "receipt"), "headers").map((h, i) => {
        const w = "headers[" + i + "]";
        onlyFields(h, ["height", "hash", "parent", "time", "root", "count", "difficulty", "nonce", "version"], w);
        return {
          height: int(h.height, 0n, U64, w + ".height"),
          hash: hex(h.hash, 32, w + ".hash"),
          parent: hex(h.parent, 32, w + ".parent"),
          time: int(h.time, -(1n << 63n), (1n << 63n) - 1n, w + ".time"),
          root: hex(h.root, 32, w + ".root"),
          count: int(h.count, 0n, 0xffffffffn, w + ".count"),
          difficulty: int(h.difficulty, 0n, 0xffffffffn, w + ".difficulty"),
          nonce: int(h.nonce, 0n, U64, w + ".nonce"),
          version: int(h.version, 0n, 0xffffffffn, w + ".version"),
        };
      }),
      commit: null,
    };
    const c = field(r, "commit", "receipt");
    if (c !== undefined && c !== null) {
      onlyFields(c, ["network", "height", "round", "authorities", "signatures"], "commit");
      out.commit = {
        network: hex(c.network, 32, "commit.network"),
        height: int(c.height, 0n, U64, "commit.height"),
        round: int(c.round, -(1n << 31n), (1n << 31n) - 1n, "commit.round"),
        authorities: array(c.authorities, "commit.authorities").map((k, i) => hex(k, 32, "commit.authorities[" + i + "]")),
        signatures: array(c.signatures, "commit.signatures").map((s, i) => {
          onlyFields(s, ["index", "sig"], "commit.signatures[" + i + "]");
          return { index: int(s.index, 0n, 65535n, "commit.signatures[" + i + "].index"), sig: hex(s.sig, 64, "commit.signatures[" + i + "].sig") };
        }),
      };
    }
    return out;
  }

  // parseText parses JSON text, keeping integers above 2^53 of the
  // fields that may hold them exact (as strings).
  function parseText(text) {
    const quoted = text.replace(/"(nonce|height|time)":(-?[0-9]{16,})/g, '"$1":"$2"');
    try {
      return JSON.parse(quoted);
    } catch (e) {
      throw new Malformed(e.message);
    }
  }

  // --- bytes and hashes ----------------------------------------------

  const enc = new TextEncoder();
  function concat(...parts) {
    let n = 0;
    for (const p of parts) n += p.length;
    const out = new Uint8Array(n);
    let at = 0;
    for (const p of parts) { out.set(p, at); at += p.length; }
    return out;
  }
  function be(v, bytes) {
    const out = new Uint8Array(bytes);
    let x = BigInt.asUintN(8 * bytes, v);
    for (let i = bytes - 1; i >= 0; i--) { out[i] = Number(x & 0xffn); x >>= 8n; }
    return out;
  }
  const toHex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  const equal = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
  async function sha256(...parts) {
    return new Uint8Array(await subtle().digest("SHA-256", concat(...parts)));
  }
  async function verify(key, msg, sig) {
    try {
      const k = await subtle().importKey("raw", key, { name: "Ed25519" }, false, ["verify"]);
      return await subtle().verify({ name: "Ed25519" }, k, sig, msg);
    } catch (e) {
      if (e && e.name === "NotSupportedError") throw new Error("this browser cannot verify Ed25519 signatures (WebCrypto Ed25519)");
      return false;
    }
  }

  function headerBytes(h) {
    return concat(be(h.version, 4), be(h.height, 8), h.parent, be(h.time, 8), h.root, be(h.count, 4), be(h.difficulty, 4), be(h.nonce, 8));
  }
  function leadingZeros(hash) {
    const n = BigInt("0x" + toHex(hash));
    let z = 256;
    for (let x = n; x > 0n; x >>= 1n) z--;
    return z;
  }
  function meetsTarget(hash, difficulty) {
    // The hash as a big-endian number is below 2^(256 - difficulty).
    return BigInt("0x" + toHex(hash)) < (1n << (256n - difficulty));
  }
  function readingContent(r) {
    const s = enc.encode(r.subject);
    return concat(new Uint8Array([s.length & 0xff]), s, be(r.bpm, 2), be(r.time, 8), r.author);
  }
  function authorKeyError(k) {
    if ((k[31] & 0x7f) === 0x7f && k[0] >= 0xed && k.slice(1, 31).every((x) => x === 0xff)) return "not a canonical encoding";
    if (SMALL_ORDER.includes(toHex(k))) return "a point of small order";
    return "";
  }
  function subjectError(s) {
    const b = enc.encode(s);
    if (b.length === 0 || b.length > MAX_SUBJECT_LEN) return "subject of " + b.length + " bytes, want 1 to " + MAX_SUBJECT_LEN;
    for (const c of b) if (c <= 0x20 || c > 0x7e) return "subject is not printable ASCII without spaces";
    return "";
  }

  // rootFromPath: RFC 6962 section 2.1.1, as Go's chain.VerifyMerkleProof.
  async function rootFromPath(leaf, index, size, path) {
    let fn = index, sn = size - 1n, r = leaf;
    for (const p of path) {
      if (sn === 0n) return null;
      if (fn % 2n === 1n || fn === sn) {
        r = await sha256(new Uint8Array([1]), p, r);
        while (fn % 2n === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
      } else {
        r = await sha256(new Uint8Array([1]), r, p);
      }
      fn >>= 1n; sn >>= 1n;
    }
    return sn === 0n ? r : null;
  }

  // --- the checks, in the order of docs/RECEIPTS.md ------------------

  async function checkHeaders(hs) {
    if (hs.length === 0 || hs.length > MAX_HEADERS) fail("headers", hs.length + " headers, want 1 to " + MAX_HEADERS);
    const hashes = [];
    for (let i = 0; i < hs.length; i++) {
      const h = hs[i], name = "header " + h.height;
      const hash = await sha256(headerBytes(h));
      hashes.push(hash);
      if (!equal(h.hash, hash)) fail(name + " hash", toHex(h.hash) + ", but the header hashes to " + toHex(hash));
      if (h.version !== BigInt(HEADER_VERSION)) fail(name + " version", h.version + ", want " + HEADER_VERSION);
      if (h.count > BigInt(MAX_READINGS_LIMIT)) fail(name + " count", h.count + " readings");
      if (h.difficulty > BigInt(MAX_DIFFICULTY)) fail(name + " difficulty", h.difficulty + ", at most " + MAX_DIFFICULTY);
      if (h.difficulty !== hs[0].difficulty) fail(name + " difficulty", h.difficulty + ", but the reading's block has " + hs[0].difficulty);
      if (!meetsTarget(hash, h.difficulty)) fail(name + " proof of work", "hash " + toHex(hash) + " has " + leadingZeros(hash) + " leading zero bits, difficulty " + h.difficulty);
      if (i === 0) continue;
      if (h.height !== hs[i - 1].height + 1n) fail(name + " height", "follows height " + hs[i - 1].height);
      if (!equal(h.parent, hashes[i - 1])) fail(name + " prev hash", "parent " + toHex(h.parent) + ", but header " + hs[i - 1].height + " hashes to " + toHex(hashes[i - 1]));
      if (h.time < hs[i - 1].time) fail(name + " time", h.time + " is before its parent's " + hs[i - 1].time);
    }
    return hashes;
  }

  async function checkProof(p, id, sig, h, authority) {
    if (p.size !== h.count) fail("merkle proof size", p.size + ", but the block holds " + h.count + " readings");
    if (p.index >= p.size) fail("merkle proof index", p.index + " in a block of " + p.size + " readings");
    if (p.path.length > 32) fail("merkle proof", "a path of " + p.path.length + " hashes");
    const ch = p.changes;
    if (ch.length > 0 && !authority) fail("merkle proof changes", "membership changes in a receipt without a commit");
    if (ch.length > MAX_CHANGES * CHANGE_SIZE) fail("merkle proof changes", ch.length + " bytes");
    if (ch.length % CHANGE_SIZE !== 0) fail("merkle proof changes", ch.length + " bytes is not a whole number of changes");
    for (let i = 0; i < ch.length; i += CHANGE_SIZE) {
      if (ch[i] !== 1 && ch[i] !== 2) fail("merkle proof changes", "unknown change op " + ch[i]);
    }
    const leaf = await sha256(new Uint8Array([0]), be(p.index, 4), be(p.size, 4), id, sig);
    let root = await rootFromPath(leaf, p.index, p.size, p.path);
    if (root && ch.length > 0) root = await sha256(new Uint8Array([2]), root, ch);
    if (!root || !equal(root, h.root)) fail("merkle proof", "reading " + p.index + " of " + p.size + " does not lead to the root " + toHex(h.root) + " of block " + h.height);
  }

  async function checkCommit(c, hs, hashes, res) {
    const first = hs[0].height, last = hs[hs.length - 1].height;
    if (c.height < first || c.height > last) fail("commit height", c.height + ", but the receipt holds heights " + first + " to " + last);
    if (c.round < 0n) fail("commit round", String(c.round));
    const keys = c.authorities, n = keys.length;
    if (n === 0 || n > MAX_AUTHORITIES) fail("commit authorities", n + " keys, want 1 to " + MAX_AUTHORITIES);
    const seen = new Set();
    keys.forEach((k, i) => {
      const e = authorKeyError(k);
      if (e) fail("commit authorities", "authority " + i + ": " + e);
      if (seen.has(toHex(k))) fail("commit authorities", "a key twice");
      seen.add(toHex(k));
    });
    const sigs = c.signatures;
    if (sigs.length > n) fail("commit signatures", sigs.length + " signatures from " + n + " authorities");
    sigs.forEach((s, i) => {
      if (s.index >= BigInt(n) || (i > 0 && s.index <= sigs[i - 1].index)) fail("commit signature " + i + " index", "authority " + s.index);
    });
    const quorum = Math.floor((2 * n) / 3) + 1;
    if (sigs.length < quorum) fail("commit quorum", sigs.length + " of " + n + " authorities signed, more than two thirds is " + quorum);
    const hash = hashes[Number(c.height - first)];
    const msg = concat(enc.encode(BFT_DOMAIN), c.network, new Uint8Array([KIND_PRECOMMIT]), be(c.height, 8), be(c.round, 4), hash);
    for (let i = 0; i < sigs.length; i++) {
      if (!(await verify(keys[Number(sigs[i].index)], msg, sigs[i].sig))) {
        fail("commit signature " + i, "authority " + sigs[i].index + " did not sign block " + c.height + " " + toHex(hash));
      }
    }
    const setHash = await sha256(enc.encode(SET_TAG), be(BigInt(n), 2), ...keys);
    Object.assign(res, {
      final: true, commit_height: Number(c.height), signers: sigs.length, authorities: n,
      set_hash: toHex(setHash), network: toHex(c.network), keys: keys.map(toHex),
    });
  }

  function proves(res) {
    let s = "reading " + res.reading_id + " of subject " + res.subject + ": " + res.bpm + " bpm at " + res.time +
      ", in block #" + res.height + " " + res.block + ", " + res.depth + (res.depth === 1 ? " block" : " blocks") +
      " deep as of " + (res.capped ? "block" : "tip") + " #" + res.tip_height + " " + res.tip;
    if (res.final) s += ", final by commit of " + res.signers + "/" + res.authorities + " authorities";
    if (res.trusted) s += ", reaching trusted block " + res.trusted_hash;
    return s;
  }

  function isoTime(ms) {
    const d = new Date(Number(ms));
    if (isNaN(d.getTime())) return String(ms);
    return d.toISOString();
  }

  async function checkDecoded(r, trustHex) {
    if (r.format !== FORMAT) fail("format", JSON.stringify(r.format) + ", want " + JSON.stringify(FORMAT));
    const hashes = await checkHeaders(r.headers);
    const block = r.headers[0], last = r.headers[r.headers.length - 1];
    const rd = r.reading;
    const content = readingContent(rd);
    const id = await sha256(content);
    if (!equal(rd.id, id)) fail("reading id", toHex(rd.id) + ", but the reading's content hashes to " + toHex(id));
    let e = subjectError(rd.subject);
    if (!e && (rd.bpm < BigInt(MIN_BPM) || rd.bpm > BigInt(MAX_BPM))) e = rd.bpm + " bpm is outside " + MIN_BPM + "-" + MAX_BPM;
    if (!e && authorKeyError(rd.author)) e = "author key is " + authorKeyError(rd.author);
    if (e) fail("reading", e);
    await checkProof(r.proof, id, rd.sig, block, r.commit !== null);
    if (!(await verify(rd.author, concat(enc.encode(READING_DOMAIN), content), rd.sig))) {
      fail("reading signature", "the author's key did not sign this reading");
    }
    const res = {
      reading_id: toHex(id), subject: rd.subject, bpm: Number(rd.bpm), time: isoTime(rd.time), author: toHex(rd.author),
      height: Number(block.height), block: toHex(hashes[0]), depth: Number(last.height - block.height + 1n),
      tip_height: Number(last.height), tip: toHex(hashes[hashes.length - 1]), difficulty: Number(block.difficulty),
      capped: r.headers.length === MAX_HEADERS,
      final: false, commit_height: 0, signers: 0, authorities: 0, set_hash: "", network: "",
      trusted: false, trusted_hash: "", trusted_height: 0,
    };
    if (r.commit) await checkCommit(r.commit, r.headers, hashes, res);
    if (trustHex !== undefined && trustHex !== null && trustHex !== "") {
      const t = String(trustHex).trim().toLowerCase();
      if (!/^[0-9a-f]{64}$/.test(t)) fail("trusted block not in receipt", "the trusted hash must be 64 hex digits");
      const i = hashes.findIndex((h) => toHex(h) === t);
      if (i < 0) fail("trusted block not in receipt", t + " is none of the " + hashes.length + " headers from height " + block.height + " to " + last.height);
      Object.assign(res, { trusted: true, trusted_hash: t, trusted_height: Number(r.headers[i].height) });
    }
    return res;
  }

  // check verifies a receipt (an object, or its JSON text) and returns
  // {ok: true, proves, result} or {ok: false, error, what}.
  async function check(receipt, trustHex) {
    try {
      const obj = typeof receipt === "string" ? parseText(receipt) : receipt;
      const res = await checkDecoded(decode(obj), trustHex);
      return { ok: true, proves: proves(res), result: res };
    } catch (e) {
      if (e instanceof CheckError || e instanceof Malformed) return { ok: false, error: e.message, what: e.what };
      return { ok: false, error: "could not check the receipt: " + (e && e.message ? e.message : String(e)), what: "" };
    }
  }

  const api = Object.freeze({ check, FORMAT, MAX_HEADERS });
  root.P2PReceipt = api;
  if (typeof module === "object" && module && module.exports) module.exports = api;
})(typeof window !== "undefined" ? window : globalThis);
