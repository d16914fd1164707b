/**
 * The live page at `GET /`: what a partner keeps open while debugging. It
 * polls the admin API every 500 ms and shows the tokens issued (by
 * fingerprint), their expiry counting down, which are revoked, the recent
 * requests with method, path, status, client and duration, and (wealthcare)
 * the revocation requests.
 *
 * Self-contained (no external asset), under a strict Content Security Policy
 * with a per-response nonce; every value from the server is written with
 * `textContent`, never as HTML, since request paths are whatever a client sent.
 *
 * @internal
 */
import { randomBytes } from "node:crypto"
import type { ServerResponse } from "node:http"

export interface PageConfig {
  readonly profile: "wex" | "wealthcare"
  readonly url: string
  readonly tokenUrl: string
  readonly authorizeUrl: string | undefined
  readonly discoveryUrl: string | undefined
  readonly revocationUrl: string | undefined
  readonly baseUrl: string
  readonly adminUrl: string
}

/** JSON safe to embed in a `<script>` element. */
const embed = (value: unknown): string =>
  JSON.stringify(value).replace(/</g, "\\u003c").replace(/>/g, "\\u003e").replace(/&/g, "\\u0026")

const STYLE = `
:root { --fg:#1d2330; --muted:#667085; --line:#e4e7ec; --bg:#f7f8fa; --card:#fff; --ok:#067647; --warn:#b54708; --bad:#b42318; --accent:#2e5aac; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif; color:var(--fg); background:var(--bg); }
header { padding:20px 28px 12px; background:var(--card); border-bottom:1px solid var(--line); }
h1 { margin:0 0 2px; font-size:20px; font-weight:650; }
h1 .profile { font-size:13px; font-weight:600; color:#fff; background:var(--accent); border-radius:10px; padding:2px 9px; vertical-align:3px; margin-left:6px; }
.sub { margin:0 0 12px; color:var(--muted); }
dl.urls { display:grid; grid-template-columns:max-content 1fr; gap:2px 14px; margin:0 0 14px; }
dl.urls dt { color:var(--muted); } dl.urls dd { margin:0; font-family:ui-monospace,SFMono-Regular,Menlo,monospace; font-size:13px; }
.cards { display:flex; flex-wrap:wrap; gap:10px; }
.card { background:var(--bg); border:1px solid var(--line); border-radius:8px; padding:6px 12px; min-width:120px; }
.card b { display:block; font-size:18px; } .card span { color:var(--muted); font-size:12px; }
#faults { margin:10px 0 0; color:var(--muted); } #faults.on { color:var(--warn); font-weight:600; }
main { padding:16px 28px 40px; display:grid; gap:22px; }
h2 { font-size:15px; margin:0 0 8px; }
table { width:100%; border-collapse:collapse; background:var(--card); border:1px solid var(--line); border-radius:8px; overflow:hidden; }
th, td { text-align:left; padding:6px 10px; border-bottom:1px solid var(--line); white-space:nowrap; }
th { font-size:12px; font-weight:600; color:var(--muted); background:#fbfbfc; }
td.path { white-space:normal; word-break:break-all; }
tr:last-child td { border-bottom:0; }
.mono { font-family:ui-monospace,SFMono-Regular,Menlo,monospace; font-size:13px; }
.badge { display:inline-block; border-radius:9px; padding:0 8px; font-size:12px; font-weight:600; }
.badge.active { background:#ecfdf3; color:var(--ok); } .badge.expired { background:#f2f4f7; color:var(--muted); } .badge.revoked { background:#fef3f2; color:var(--bad); }
.s2 { color:var(--ok); font-weight:600; } .s3 { color:var(--accent); font-weight:600; } .s4 { color:var(--warn); font-weight:600; } .s5, .s0 { color:var(--bad); font-weight:600; }
tr.revoked td { color:var(--muted); } tr.revoked td.fp { text-decoration:line-through; }
.empty { color:var(--muted); padding:8px 2px; margin:0; }
footer { position:fixed; right:14px; bottom:10px; font-size:12px; color:var(--muted); background:var(--card); border:1px solid var(--line); border-radius:12px; padding:2px 10px; }
footer.down { color:var(--bad); border-color:var(--bad); }
`

const SCRIPT = `
"use strict";
const cfg = JSON.parse(document.getElementById("config").textContent);
const $ = (id) => document.getElementById(id);
const el = (tag, attrs, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v; else if (k === "dataset") Object.assign(node.dataset, v); else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child instanceof Node ? child : child === undefined || child === null ? "" : String(child));
  return node;
};
let since = 0;
let skew = 0;
let tokens = [];
const MAX_ROWS = 300;

const seconds = (ms) => Math.max(0, Math.floor(ms / 1000));
const fmtLeft = (ms) => { const s = seconds(ms); return s >= 60 ? Math.floor(s / 60) + "m " + String(s % 60).padStart(2, "0") + "s" : s + "s"; };
const timeOf = (iso) => iso.slice(11, 23);

function stateOf(t, now) { return t.revoked ? "revoked" : now >= t.expiresAtMs ? "expired" : "active"; }

const row = (attrs, cells) => {
  const tr = el("tr", attrs);
  for (const [value, cls] of cells) {
    const td = el("td", cls ? { class: cls } : {});
    if (value instanceof Node) td.append(value); else td.textContent = value === undefined || value === null ? "" : String(value);
    tr.append(td);
  }
  return tr;
};

function renderTokens() {
  const now = Date.now() + skew;
  $("token-rows").replaceChildren(...tokens.map((t) => {
    const state = stateOf(t, now);
    return row({ class: state, dataset: { fingerprint: t.fingerprint, state } }, [
      [t.fingerprint, "mono fp"], [t.clientId], [t.grantType], [t.scope || "\u2014"], [timeOf(t.issuedAt), "mono"],
      [state === "active" ? fmtLeft(t.expiresAtMs - now) : "\u2014", "left mono"],
      [el("span", { class: "badge " + state }, state)]]);
  }));
  $("tokens-empty").hidden = tokens.length > 0;
}

function addEvents(events) {
  const body = $("request-rows");
  for (const e of events) {
    const note = [e.error, (e.faults || []).map((f) => "fault:" + f).join(" ")].filter(Boolean).join(" ");
    body.prepend(row({ dataset: { seq: String(e.seq), status: String(e.status) } }, [
      [timeOf(e.time), "mono"], [e.method], [e.path, "path mono"],
      [e.status === 0 ? "dropped" : e.status, "s" + String(e.status).charAt(0)],
      [e.clientId || "\u2014"], [e.tokenFingerprint || "\u2014", "mono"], [e.durationMs + " ms"], [note]]));
  }
  while (body.rows.length > MAX_ROWS) body.deleteRow(body.rows.length - 1);
  $("requests-empty").hidden = body.rows.length > 0;
}

function renderStats(s) {
  const cards = [["token requests", s.tokenRequests.total], ["API requests", s.apiRequests.total],
    ["active tokens", s.activeTokens], ["issued", s.tokensIssued], ["revoked", s.tokensRevoked],
    ["claims (duplicates)", s.claims.created + " (" + s.claims.duplicates + ")"]];
  if (cfg.profile === "wealthcare") cards.push(["revocation requests (revoked)", s.revocations.total + " (" + s.revocations.revoked + ")"]);
  $("stats").replaceChildren(...cards.map(([label, value]) => el("div", { class: "card", dataset: { stat: label } }, el("b", {}, value), el("span", {}, label))));
}

function renderFaults(f) {
  const parts = [];
  for (const name of ["token", "api"]) {
    const e = f[name]; if (!e) continue;
    const bits = [];
    if (e.latencyMs) bits.push("latency " + e.latencyMs + " ms");
    if (e.errorRate) bits.push("errors " + Math.round(e.errorRate * 100) + "% (" + (e.errorStatus || 503) + ")");
    if (e.rateLimit429) bits.push("429 " + (e.rateLimit429.count ? "x" + e.rateLimit429.count : "") + (e.rateLimit429.rate ? " " + Math.round(e.rateLimit429.rate * 100) + "%" : ""));
    if (e.dropRate) bits.push("drops " + Math.round(e.dropRate * 100) + "%");
    if (e.invalidGrant) bits.push("invalid_grant " + (e.invalidGrant.count ? "x" + e.invalidGrant.count : "") + (e.invalidGrant.rate ? " " + Math.round(e.invalidGrant.rate * 100) + "%" : "") + " (" + (e.invalidGrant.grants || ["refresh_token"]).join(", ") + ")");
    if (bits.length) parts.push(name + ": " + bits.join(", "));
  }
  if (f.authorize && f.authorize.latencyMs) parts.push("sign-in: latency " + f.authorize.latencyMs + " ms");
  if (f.clockOffsetSeconds) parts.push("clock offset " + f.clockOffsetSeconds + " s");
  $("faults").textContent = parts.length ? "Faults: " + parts.join(" \\u00b7 ") : "Faults: none";
  $("faults").className = parts.length ? "on" : "";
}

async function getJson(path) {
  const res = await fetch(path, { cache: "no-store" });
  if (!res.ok) throw new Error(path + ": HTTP " + res.status);
  return res.json();
}

async function tick() {
  try {
    const [ev, tk, st, fl] = await Promise.all([
      getJson("/admin/events?since=" + since), getJson("/admin/tokens"), getJson("/admin/stats"), getJson("/admin/faults")]);
    if (ev.events.length) { addEvents(ev.events); since = ev.lastSeq; }
    skew = tk.nowMs - Date.now();
    tokens = tk.tokens;
    renderTokens(); renderStats(st); renderFaults(fl);
    $("status").textContent = "live \\u00b7 polling every 500 ms"; $("status").className = "";
  } catch (err) {
    $("status").textContent = "disconnected: " + err.message; $("status").className = "down";
  }
  setTimeout(tick, 500);
}

const urls = [["token URL", cfg.tokenUrl], ["authorize URL", cfg.authorizeUrl], ["discovery", cfg.discoveryUrl], ["revocation URL", cfg.revocationUrl], ["API base", cfg.baseUrl], ["admin", cfg.adminUrl]];
$("urls").replaceChildren(...urls.filter(([, v]) => v).flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
setInterval(renderTokens, 250);
tick();
`

/** Writes the page. */
export const sendPage = (res: ServerResponse, config: PageConfig): void => {
  const nonce = randomBytes(16).toString("base64")
  const name = config.profile === "wex" ? "WEX Health" : "WealthCare"
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>authfetch sandbox \u00b7 ${name}</title>
<link rel="icon" href="data:,">
<style nonce="${nonce}">${STYLE}</style>
</head>
<body>
<header>
<h1>authfetch sandbox <span class="profile">${name}</span></h1>
<p class="sub">A local emulator. Tokens appear as fingerprints (first 8 hex characters of their SHA-256), never as values.</p>
<dl class="urls" id="urls"></dl>
<div class="cards" id="stats"></div>
<p id="faults">Faults: none</p>
</header>
<main>
<section>
<h2>Tokens</h2>
<table id="tokens"><thead><tr><th>Fingerprint</th><th>Client</th><th>Grant</th><th>Scope</th><th>Issued</th><th>Expires in</th><th>State</th></tr></thead><tbody id="token-rows"></tbody></table>
<p class="empty" id="tokens-empty">No token issued yet.</p>
</section>
<section>
<h2>Requests</h2>
<table id="requests"><thead><tr><th>Time</th><th>Method</th><th>Path</th><th>Status</th><th>Client</th><th>Token</th><th>Duration</th><th>Note</th></tr></thead><tbody id="request-rows"></tbody></table>
<p class="empty" id="requests-empty">No request yet.</p>
</section>
</main>
<footer id="status">connecting\u2026</footer>
<script type="application/json" id="config">${embed(config)}</script>
<script nonce="${nonce}">${SCRIPT}</script>
</body>
</html>
`
  res.writeHead(200, {
    "Content-Type": "text/html; charset=utf-8",
    "Content-Length": String(Buffer.byteLength(html)),
    "Cache-Control": "no-store",
    "Content-Security-Policy": `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'nonce-${nonce}'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer"
  })
  res.end(html)
}
