/**
 * The minimal token + API server, run in its own process (`fork`): the least
 * work per request a server can do, so that the client's cost is what the
 * numbers show.
 *
 * - `POST /token`: client credentials (`client_secret_post` or Basic, secret
 *   `bench-secret`, any client id), after `tokenLatencyMs`; answers
 *   `{ access_token, token_type, expires_in: ttl }`.
 * - `POST /api/...` with the same token: the request body streamed back as it
 *   arrives (case 6's large bodies).
 * - `GET /api/...`: a bearer token issued here, not expired, not revoked →
 *   `200` with a small JSON body and `x-token-issued-at` (when that token's
 *   response was written, `process.hrtime` nanoseconds: the monotonic clock
 *   is shared by every process of the machine, so a client can tell whether a
 *   request waited on a token request). Otherwise `401` with
 *   `WWW-Authenticate: Bearer error="invalid_token"`.
 *
 * Control over IPC: `stats`, `reset`, `revokeAll`, `config`, `cpu`.
 */
import { randomBytes } from "node:crypto"
import { createServer } from "node:http"

const SECRET = "bench-secret"
let ttlSeconds = 3600
let tokenLatencyMs = 0

/** token value → { clientId, issuedAtNs, expiresAtMs, revoked } */
const tokens = new Map()
let counters = fresh()
function fresh() {
  return { tokenRequests: {}, tokenTotal: 0, api: {}, apiTotal: 0, api401: 0, connections: 0 }
}
let seq = 0
const body = JSON.stringify({ id: "12345", name: "Ada Lovelace", plan: "HSA", balance: 1234.56 })

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

const readBody = (req) =>
  new Promise((resolve, reject) => {
    const chunks = []
    req.on("data", (chunk) => chunks.push(chunk))
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")))
    req.on("error", reject)
  })

const unauthorized = (res, error) => {
  res.writeHead(401, {
    "content-type": "application/json",
    "www-authenticate": `Bearer error="invalid_token"`
  })
  res.end(JSON.stringify({ error: "invalid_token", error_description: error }))
}

async function token(req, res) {
  const form = new URLSearchParams(await readBody(req))
  let clientId = form.get("client_id")
  let secret = form.get("client_secret")
  const basic = req.headers.authorization
  if (basic?.startsWith("Basic ")) {
    const [id, pass] = Buffer.from(basic.slice(6), "base64").toString("utf8").split(":")
    clientId = decodeURIComponent(id)
    secret = decodeURIComponent(pass ?? "")
  }
  clientId ??= "(none)"
  counters.tokenTotal++
  counters.tokenRequests[clientId] = (counters.tokenRequests[clientId] ?? 0) + 1
  if (tokenLatencyMs > 0) await sleep(tokenLatencyMs)
  if (form.get("grant_type") !== "client_credentials" || secret !== SECRET) {
    res.writeHead(401, { "content-type": "application/json" })
    res.end(JSON.stringify({ error: "invalid_client" }))
    return
  }
  const value = `t${++seq}.${randomBytes(12).toString("base64url")}`
  tokens.set(value, {
    clientId,
    issuedAtNs: process.hrtime.bigint(),
    expiresAtMs: Date.now() + ttlSeconds * 1000,
    revoked: false
  })
  res.writeHead(200, {
    "content-type": "application/json",
    "cache-control": "no-store",
    pragma: "no-cache"
  })
  res.end(JSON.stringify({ access_token: value, token_type: "Bearer", expires_in: ttlSeconds }))
}

function api(req, res) {
  const header = req.headers.authorization
  const entry = header?.startsWith("Bearer ") ? tokens.get(header.slice(7)) : undefined
  counters.apiTotal++
  if (entry === undefined || entry.revoked || Date.now() >= entry.expiresAtMs) {
    counters.api401++
    req.resume()
    return unauthorized(res, entry === undefined ? "unknown" : entry.revoked ? "revoked" : "expired")
  }
  counters.api[entry.clientId] = (counters.api[entry.clientId] ?? 0) + 1
  if (req.method === "POST") {
    // case 6's large bodies: the request body streamed back as it arrives (no length: chunked)
    res.writeHead(200, {
      "content-type": "application/octet-stream",
      "x-token-issued-at": String(entry.issuedAtNs)
    })
    req.pipe(res)
    return
  }
  req.resume()
  res.writeHead(200, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
    "x-token-issued-at": String(entry.issuedAtNs)
  })
  res.end(body)
}

const server = createServer((req, res) => {
  if (req.method === "POST" && req.url === "/token") {
    token(req, res).catch(() => {
      res.writeHead(500)
      res.end()
    })
  } else if (req.url.startsWith("/api/")) {
    api(req, res)
  } else {
    res.writeHead(404)
    res.end()
  }
})
server.on("connection", () => counters.connections++)
server.keepAliveTimeout = 120_000
server.headersTimeout = 130_000
server.requestTimeout = 0
server.maxRequestsPerSocket = 0

// Expired tokens are forgotten now and then (a 10,000-token burst must not pile up).
setInterval(() => {
  const now = Date.now()
  for (const [value, entry] of tokens) if (entry.expiresAtMs + 60_000 < now) tokens.delete(value)
}, 5_000).unref()

process.on("message", (message) => {
  const reply = (value) => process.send({ id: message.id, value })
  switch (message.cmd) {
    case "stats":
      return reply(counters)
    case "reset":
      counters = fresh()
      return reply(true)
    case "revokeAll":
      for (const entry of tokens.values()) entry.revoked = true
      return reply(true)
    case "config":
      if (message.ttlSeconds !== undefined) ttlSeconds = message.ttlSeconds
      if (message.tokenLatencyMs !== undefined) tokenLatencyMs = message.tokenLatencyMs
      return reply({ ttlSeconds, tokenLatencyMs })
    case "cpu":
      return reply(process.cpuUsage())
    case "close":
      server.close()
      server.closeAllConnections()
      reply(true)
      return process.disconnect()
  }
})

server.listen(0, "127.0.0.1", () => {
  process.send({ ready: true, url: `http://127.0.0.1:${server.address().port}` })
})
