/**
 * authfetch end to end: every integration against the WEX sandbox, in about 15 seconds.
 *
 * `@authfetch/sandbox` runs in this process with the WEX profile and tokens
 * that live 3 seconds. Four clients call its API, each the way an application
 * writes it and each with its own token source and its own sandbox client (so
 * every token count below belongs to one integration):
 *
 *   core    authFetch(tokens, { baseUrl })
 *   effect  AuthHttpClient.layer(...) over TokenSource.layerDefault(...)
 *   ky      ky.create(authKyOptions(tokens, { prefix }))
 *   axios   attachAuth(axios.create({ baseURL }), tokens)
 *
 * Six scenes, printed as a timeline:
 *
 *   A. cold start: 50 concurrent calls per integration share one token request;
 *   B. steady traffic over 4 token lifetimes: tokens are refreshed ahead, in the
 *      background, so no call waits for one;
 *   C. the sandbox revokes every token: each client gets a 401, drops exactly
 *      that token, makes one token request and replays the call once;
 *   D. a 429 storm: the calls wait out `Retry-After: 1` and succeed;
 *   E. a 503 burst: GETs and a POST with an `Idempotency-Key` are retried and
 *      succeed; the claim is created once;
 *   F. a POST without `Idempotency-Key` meets a 503: it is NOT retried (it may
 *      have been processed), the 503 goes back to the caller. Expected, shown,
 *      not counted as lost.
 *
 * The faults are scripted so that no run depends on luck: the 429 storm is a
 * count (`rateLimit429: { count }`), and the 503s come from the sandbox's
 * `random` option, which the demo drives ("the next 2 requests fail").
 *
 * Exits 0 if no call was lost and every check held, 1 otherwise. Tokens and
 * secrets are never printed: a token shows as `#id` (the client's own numbering).
 *
 * Run from the repository root: npx -y pnpm@12 demo
 */
import { createHash, randomBytes, randomUUID } from "node:crypto"
import { setTimeout as sleep } from "node:timers/promises"
import { wex } from "@authfetch/core/providers"
import { startSandbox } from "@authfetch/sandbox"
import {
  axiosAttachAuth,
  coreAuthFetch,
  effectAuthHttpClient,
  expressProxy,
  kyAuthOptions,
  nextProxyRoute
} from "./integrations.mjs"

const TOKEN_TTL_SECONDS = 3

// ---------------------------------------------------------------------------
// Timeline, checks

const startedAt = performance.now()
/** everything printed, to check at the end that no token or secret is in it */
const printed = []
const say = (text = "") => {
  printed.push(text)
  console.log(text)
}
const seconds = (millis) => `${(millis / 1000).toFixed(3)}s`
const elapsed = () => seconds(performance.now() - startedAt)
const line = (who, text) => say(`${elapsed().padStart(8)}  ${who.padEnd(8)} ${text}`)
const scene = (title) => say(`\n── ${title} ${"─".repeat(Math.max(0, 94 - title.length))}`)

const checks = []
const check = (ok, text) => checks.push({ ok: Boolean(ok), text })

const plural = (n, one, many = `${one}s`) => `${n} ${n === 1 ? one : many}`
const fingerprint = (value) => createHash("sha256").update(value).digest("hex").slice(0, 8)

// ---------------------------------------------------------------------------
// The sandbox: WEX profile, 3-second tokens, one client per integration

const INTEGRATIONS = [
  { who: "core", name: "authFetch", make: coreAuthFetch },
  { who: "effect", name: "AuthHttpClient", make: effectAuthHttpClient },
  { who: "ky", name: "authKyOptions", make: kyAuthOptions },
  { who: "axios", name: "attachAuth", make: axiosAttachAuth },
  // the proxies answer an upstream 5xx with a 502 of their own (no upstream body reaches a browser)
  { who: "express", name: "createProxy", make: expressProxy, upstream5xx: 502 },
  { who: "next", name: "createProxyRoute", make: nextProxyRoute, upstream5xx: 502 }
]
for (const it of INTEGRATIONS) {
  it.clientId = `demo-${it.who}`
  it.clientSecret = randomBytes(24).toString("base64url")
}

/**
 * The sandbox's fault rates roll this die. Outside a burst it never hits (1 is
 * above every rate); `failNext(n)` makes exactly the next n rolls hit, so with
 * `errorRate: 1` "the next n API requests answer 503", whatever the timing.
 */
const die = {
  pending: 0,
  failNext(n) {
    die.pending = n
  },
  roll: () => {
    if (die.pending === 0) return 1
    die.pending--
    return 0
  }
}

/** every token any client received: by fingerprint, to name it `#id`; by value, to check the output */
const tokenIds = new Map()
const issuedTokens = []

/** What the sandbox saw, per client: its own account of every request (no secrets in it). */
const seen = new Map(INTEGRATIONS.map((it) => [it.clientId, { api: [], tokens: 0 }]))
const sandbox = await startSandbox({
  profile: "wex",
  tokenTtl: TOKEN_TTL_SECONDS,
  clients: INTEGRATIONS.map(({ clientId, clientSecret }) => ({ clientId, clientSecret })),
  random: die.roll,
  onEvent: (event) => {
    const client = seen.get(event.clientId)
    if (client === undefined) return
    if (event.kind === "api") client.api.push(event)
    if (event.kind === "api" && event.status === 401) {
      // the sandbox's side of a refused token, as it happens
      const token = tokenIds.get(event.tokenFingerprint)
      line(
        "sandbox",
        `${event.method} ${event.path.replace(/^\/api/, "")} → 401: token #${token} is ${event.error}`
      )
    }
    if (event.kind === "token" && event.status === 200) client.tokens++
  }
})
const shortPath = (url) => url.replace(sandbox.baseUrl, "")

// ---------------------------------------------------------------------------
// The integrations, and what their events draw on the timeline

const REASONS = {
  initial: "first use: the calls wait for this one request",
  refresh_ahead: "refresh ahead, in the background: nobody waits",
  expired: "the token had expired: a call waits",
  invalidated: "the API rejected the previous one"
}

const onTokenEvent = (it) => (event) => {
  switch (event.type) {
    case "token_requested":
      it.count.tokenRequests++
      it.tokenReasons.push(event.reason)
      return
    case "token_acquired":
      return line(
        it.who,
        `token #${event.tokenId} acquired in ${event.durationMillis} ms (${REASONS[event.reason] ?? event.reason})`
      )
    case "token_invalidated":
      return line(it.who, `token #${event.tokenId} invalidated (exactly that one)`)
    case "token_request_failed":
      return line(
        it.who,
        `token request failed: ${event.code ?? event.error}, HTTP ${event.status}, retry: ${event.willRetry}`
      )
    default:
      return line(it.who, event.type)
  }
}

const onRequestEvent = (it) => (event) => {
  const path = shortPath(event.url ?? "")
  const bump = (counts) => counts.set(path, (counts.get(path) ?? 0) + 1)
  switch (event.type) {
    case "request_retried": {
      it.count.retries++
      bump(it.retriesByPath)
      const answer = event.status === undefined ? event.error : String(event.status)
      const wait = event.status === 429 ? "Retry-After" : "backoff"
      return line(
        it.who,
        `${event.method} ${path} → ${answer}, retry ${event.attempt} in ${event.delayMillis} ms (${wait})`
      )
    }
    case "unauthorized_retry":
      it.count.replays++
      bump(it.replaysByPath)
      return line(it.who, `${event.method} ${path} replayed once, with the new token`)
    case "request_gave_up":
      return line(
        it.who,
        `${event.method} ${path}: gave up after ${event.attempts} attempts (${event.reason})`
      )
    default:
      return line(it.who, `${event.type} ${event.method ?? ""} ${path}`)
  }
}

for (const it of INTEGRATIONS) {
  it.count = {
    calls: 0,
    succeeded: 0,
    notRetried: 0,
    lost: 0,
    tokenRequests: 0,
    retries: 0,
    replays: 0
  }
  it.tokenReasons = []
  it.retriesByPath = new Map()
  it.replaysByPath = new Map()
  it.nextConsumer = 1000 * (INTEGRATIONS.indexOf(it) + 1)
  const config = wex({
    environment: "uat",
    clientId: it.clientId,
    clientSecret: it.clientSecret,
    tokenUrl: sandbox.tokenUrl,
    baseUrl: sandbox.baseUrl,
    onEvent: onTokenEvent(it),
    // demo instrumentation: to name each token by its client-side id in the sandbox's account
    onTokenChange: (token) => {
      issuedTokens.push(token.reveal())
      tokenIds.set(fingerprint(token.reveal()), token.id)
    }
  })
  it.client = await it.make({ config, onRequestEvent: onRequestEvent(it) })
}

/** The id of the token on the last API request the sandbox saw from this client. */
const lastTokenOf = (it) => tokenIds.get(seen.get(it.clientId).api.at(-1)?.tokenFingerprint)

// ---------------------------------------------------------------------------
// One call

const pathKey = (path) => path.split("?")[0]
const nextConsumer = (it) => `/v1/consumers/${++it.nextConsumer}`

/**
 * One call through an integration. It succeeds with a 2xx; `expect` names a
 * non-2xx status that is the right outcome (scene F), counted apart; anything
 * else, or a rejection, is lost.
 */
const call = async (it, method, path, { json, headers, expect, quiet = false } = {}) => {
  const key = pathKey(path)
  const retriesBefore = it.retriesByPath.get(key) ?? 0
  const replaysBefore = it.replaysByPath.get(key) ?? 0
  it.count.calls++
  const started = performance.now()
  let result
  try {
    const { status, body } = await it.client.call(method, path, { json, headers })
    result = { status, body, ok: status >= 200 && status < 300 }
  } catch (error) {
    result = { status: undefined, ok: false, error: `${error?.name}: ${error?.message ?? error}` }
  }
  result.millis = performance.now() - started
  result.retries = (it.retriesByPath.get(key) ?? 0) - retriesBefore
  result.replays = (it.replaysByPath.get(key) ?? 0) - replaysBefore
  result.expected = !result.ok && result.status !== undefined && result.status === expect
  if (result.ok) it.count.succeeded++
  else if (result.expected) it.count.notRetried++
  else it.count.lost++
  if (!quiet) {
    const after = [
      result.replays > 0 ? "a 401 replay" : "",
      result.retries > 0 ? plural(result.retries, "retry", "retries") : ""
    ].filter(Boolean)
    const outcome = result.status === undefined ? `lost: ${result.error}` : String(result.status)
    const how = after.length > 0 ? ` after ${after.join(" and ")}` : ""
    const note = result.expected ? "  (expected: not retried)" : result.ok ? "" : "  LOST"
    line(it.who, `${method} ${path} → ${outcome}${how}, ${Math.round(result.millis)} ms${note}`)
  }
  return result
}

const all = (fn) => Promise.all(INTEGRATIONS.map(fn))

// ---------------------------------------------------------------------------
// The scenes

/** A. Many concurrent calls on a token source with nothing cached: one token request (single-flight). */
const coldStart = async () => {
  const concurrent = 50
  scene(`A. Cold start: ${concurrent} concurrent calls per integration, nothing cached yet`)
  const counts = await all(async (it) => {
    const consumer = nextConsumer(it)
    const started = performance.now()
    const results = await Promise.all(
      Array.from({ length: concurrent }, (_, i) =>
        call(it, "GET", i % 2 === 0 ? consumer : `${consumer}/accounts?page=1&pageSize=5`, { quiet: true })
      )
    )
    const ok = results.filter((r) => r.ok).length
    const used = [...new Set(seen.get(it.clientId).api.map((e) => `#${tokenIds.get(e.tokenFingerprint)}`))]
    line(
      it.who,
      `${concurrent} calls → ${ok} × 200 in ${Math.round(performance.now() - started)} ms, ` +
        `all with token ${used.join(", ")}: ${plural(it.count.tokenRequests, "token request")}`
    )
    return { ok, tokenRequests: it.count.tokenRequests, used: used.length }
  })
  const ok = counts.reduce((sum, c) => sum + c.ok, 0)
  check(
    ok === concurrent * INTEGRATIONS.length,
    `A: ${ok} of ${concurrent * INTEGRATIONS.length} concurrent calls succeeded`
  )
  check(
    counts.every((c) => c.tokenRequests === 1 && c.used === 1),
    `A: ${concurrent} concurrent calls on a cold source made 1 token request, in every integration`
  )
}

/** B. One call every 400 ms per integration, over 4 token lifetimes. */
const steadyTraffic = async () => {
  const interval = 400
  const lifetimes = 4
  const count = Math.round((TOKEN_TTL_SECONDS * lifetimes * 1000) / interval)
  scene(`B. Steady traffic: one call every ${interval} ms per integration, over ${lifetimes} token lifetimes`)
  const start = performance.now()
  const results = await all(async (it, index) => {
    const calls = []
    const consumer = nextConsumer(it)
    const tokensBefore = it.count.tokenRequests
    let lastToken = lastTokenOf(it)
    for (let i = 0; i < count; i++) {
      await sleep(Math.max(0, start + index * 50 + i * interval - performance.now()))
      const path = i % 2 === 0 ? consumer : `${consumer}/accounts?page=${1 + (i % 3)}&pageSize=5`
      const result = await call(it, "GET", path, { quiet: true })
      calls.push(result)
      const token = lastTokenOf(it)
      if (token !== lastToken || !result.ok) {
        const which = token !== lastToken ? `new token #${token} (no wait)` : `token #${token}`
        line(it.who, `GET ${path} → ${result.status} with ${which}, ${Math.round(result.millis)} ms`)
      }
      lastToken = token
    }
    const requested = it.tokenReasons.slice(tokensBefore)
    const ahead = requested.filter((r) => r === "refresh_ahead").length
    const slowest = Math.max(...calls.map((c) => c.millis))
    line(
      it.who,
      `${calls.filter((c) => c.ok).length} of ${count} calls 200; ${plural(requested.length, "token request")}, ` +
        `${ahead === requested.length ? "all" : ahead} refreshes ahead; slowest call ${Math.round(slowest)} ms`
    )
    return { calls, reasons: [...it.tokenReasons], requested: requested.length }
  })
  const spent = (performance.now() - start) / 1000 / TOKEN_TTL_SECONDS
  const calls = results.flatMap((r) => r.calls)
  const firstTry = calls.filter((c) => c.ok && c.retries === 0 && c.replays === 0).length
  check(firstTry === calls.length, `B: ${firstTry} of ${calls.length} calls succeeded at the first attempt`)
  const later = results.flatMap((r) => r.reasons.slice(1))
  const ahead = later.filter((reason) => reason === "refresh_ahead").length
  check(
    results.every((r) => r.reasons[0] === "initial") && ahead > 0 && ahead === later.length,
    `B: every token after each source's first came from a refresh ahead (${ahead} of ${later.length}): no call waited for one`
  )
  const most = Math.max(...results.map((r) => r.requested))
  check(
    most <= 2 * spent,
    `B: at most ${most} token requests per source in ${spent.toFixed(1)} token lifetimes (at most 2 per lifetime)`
  )
}

/**
 * Waits until no source is about to refresh (so that a refresh cannot slip a
 * new token in between the revocation and the next call).
 */
const quietMoment = async () => {
  for (let waited = 0; waited < 5000; waited += 20) {
    const now = Date.now()
    if (INTEGRATIONS.every((it) => (it.client.peek()?.refreshAt ?? 0) - now > 500)) return
    await sleep(20)
  }
}

/** C. The sandbox revokes every token it issued: each client gets a 401 and recovers with one token request. */
const revocation = async () => {
  scene("C. The sandbox revokes every token (sandbox.revokeAll())")
  await quietMoment()
  const before = INTEGRATIONS.map((it) => it.tokenReasons.length)
  const tokens = INTEGRATIONS.map((it) => `#${it.client.peek()?.id}`).join(", ")
  const revokedBefore = sandbox.stats().tokensRevoked
  sandbox.revokeAll()
  const revoked = sandbox.stats().tokensRevoked - revokedBefore
  line("sandbox", `${plural(revoked, "token")} revoked, among them the ones in use (${tokens})`)
  const results = await all((it) => call(it, "GET", nextConsumer(it)))
  for (const [index, it] of INTEGRATIONS.entries()) {
    const requested = it.tokenReasons.slice(before[index])
    const result = results[index]
    check(
      result.ok && result.replays === 1 && requested.length === 1 && requested[0] === "invalidated",
      `C: ${it.who}: 401 → that token invalidated → 1 token request → one replay → ${result.status}`
    )
  }
}

/** D. The API answers 429 with Retry-After: 1 to the next 8 requests; the calls wait and succeed. */
const rateLimitStorm = async () => {
  const perIntegration = 2
  const count = perIntegration * INTEGRATIONS.length
  scene(`D. A 429 storm: the API throttles the next ${count} requests (Retry-After: 1)`)
  sandbox.setFaults({ api: { rateLimit429: { count, retryAfterSeconds: 1 } } })
  line("sandbox", `fault: the next ${count} API requests get 429 with Retry-After: 1`)
  const results = (
    await all((it) =>
      Promise.all(Array.from({ length: perIntegration }, () => call(it, "GET", nextConsumer(it))))
    )
  ).flat()
  sandbox.setFaults({})
  const ok = results.filter((r) => r.ok).length
  const waited = results.filter((r) => r.retries >= 1 && r.millis >= 950).length
  check(ok === count, `D: ${ok} of ${count} throttled calls succeeded`)
  check(waited === count, `D: ${waited} of ${count} waited the 1 s of Retry-After before their retry`)
}

/**
 * E. A 503 burst, one integration at a time: a GET meets two 503s (the core's
 * default is 2 retries) and a POST with an Idempotency-Key meets one. Both are
 * retried and succeed; the claim is created once.
 */
const serviceUnavailable = async () => {
  scene("E. A 503 burst: GETs and keyed POSTs are retried with backoff")
  sandbox.setFaults({ api: { errorRate: 1 } }) // every roll of the die that hits is a 503
  const createdBefore = sandbox.stats().claims.created
  const results = []
  for (const it of INTEGRATIONS) {
    die.failNext(2)
    line("sandbox", "fault: the next 2 API requests answer 503")
    results.push(await call(it, "GET", nextConsumer(it)))
    die.failNext(1)
    line("sandbox", "fault: the next API request answers 503")
    const claim = { consumerId: "12345", accountType: "HSA", amount: 42.5, description: `demo via ${it.who}` }
    results.push(
      await call(it, "POST", "/v1/claims", { json: claim, headers: { "idempotency-key": randomUUID() } })
    )
  }
  sandbox.setFaults({})
  const ok = results.filter((r) => r.ok).length
  check(ok === results.length, `E: ${ok} of ${results.length} calls met 503s and succeeded`)
  const retries = results.reduce((sum, r) => sum + r.retries, 0)
  check(retries === 3 * INTEGRATIONS.length, `E: ${retries} retries (2 per GET, 1 per POST)`)
  const { created, duplicates } = sandbox.stats().claims
  check(
    created - createdBefore === INTEGRATIONS.length && duplicates === 0,
    `E: ${created - createdBefore} claims created by ${INTEGRATIONS.length} keyed POSTs, ${duplicates} duplicates`
  )
}

/**
 * F. A POST without Idempotency-Key meets a 503: not retried, the 503 is the caller's to handle
 * (through a proxy, the proxy's own 502: an upstream 5xx body never reaches the browser).
 */
const unsafePost = async () => {
  scene("F. A POST without Idempotency-Key meets a 503: not retried (it may have been processed)")
  sandbox.setFaults({ api: { errorRate: 1 } })
  const results = []
  for (const it of INTEGRATIONS) {
    die.failNext(1)
    line("sandbox", "fault: the next API request answers 503")
    const claim = {
      consumerId: "12345",
      accountType: "FSA",
      amount: 17,
      description: `unkeyed via ${it.who}`
    }
    const sentBefore = seen.get(it.clientId).api.length
    const expect = it.upstream5xx ?? 503
    const result = await call(it, "POST", "/v1/claims", { json: claim, expect })
    results.push({ ...result, expect, sent: seen.get(it.clientId).api.length - sentBefore })
  }
  sandbox.setFaults({})
  const once = results.filter((r) => r.status === r.expect && r.retries === 0 && r.sent === 1).length
  check(
    once === results.length,
    `F: ${once} of ${results.length} unkeyed POSTs were sent once and handed back (503; the proxies' own 502)`
  )
}

// ---------------------------------------------------------------------------
// Run

const summary = () => {
  scene("Summary")
  const columns = [
    ["calls", (c) => c.calls],
    ["succeeded", (c) => c.succeeded],
    ["not retried¹", (c) => c.notRetried],
    ["lost", (c) => c.lost],
    ["token requests", (c) => c.tokenRequests],
    ["retries", (c) => c.retries],
    ["401 replays", (c) => c.replays],
    ["sent²", (c) => c.sent]
  ]
  for (const it of INTEGRATIONS) it.count.sent = seen.get(it.clientId).api.length
  const total = Object.fromEntries(
    Object.keys(INTEGRATIONS[0].count).map((k) => [k, INTEGRATIONS.reduce((sum, it) => sum + it.count[k], 0)])
  )
  const row = (label, counts) =>
    say(
      `  ${label.padEnd(24)}${columns.map(([title, get]) => String(get(counts)).padStart(title.length + 2)).join("")}`
    )
  say(`  ${"integration".padEnd(24)}${columns.map(([title]) => `  ${title}`).join("")}`)
  for (const it of INTEGRATIONS) row(`${it.who.padEnd(8)}${it.name}`, it.count)
  row("total", total)
  say()
  say("  ¹ the POST without Idempotency-Key that met a 503 (scene F): handed back, by design")
  say("  ² API requests the sandbox received from that client: calls + retries + 401 replays")
  say()
  const stats = sandbox.stats()
  check(
    INTEGRATIONS.every((it) => seen.get(it.clientId).tokens === it.count.tokenRequests),
    `the sandbox issued exactly the tokens each client requested (${INTEGRATIONS.map((it) => `${it.who} ${seen.get(it.clientId).tokens}`).join(", ")})`
  )
  check(
    INTEGRATIONS.every((it) => it.count.sent === it.count.calls + it.count.retries + it.count.replays),
    `the sandbox received calls + retries + 401 replays from each client (${stats.apiRequests.total} in all)`
  )
  const waited = INTEGRATIONS.flatMap((it) => it.tokenReasons.filter((r) => r === "expired"))
  check(waited.length === 0, `no token request in the whole run was for an expired token (${waited.length})`)
  check(
    !printed.some((text) =>
      [...INTEGRATIONS.map((it) => it.clientSecret), ...issuedTokens].some((secret) => text.includes(secret))
    ),
    `no client secret and none of the ${issuedTokens.length} issued tokens appears in the output`
  )
  for (const { ok, text } of checks) say(`  ${ok ? "✓" : "✗"} ${text}`)
  const failed = checks.filter(({ ok }) => !ok).length
  const passed = total.lost === 0 && failed === 0
  say()
  say(
    passed
      ? `PASS in ${elapsed()}: ${total.calls} calls, nothing lost, every check held`
      : `FAIL in ${elapsed()}: ${total.lost} lost, ${failed} check(s) failed`
  )
  return passed
}

say("authfetch demo: four integrations against the WEX sandbox")
say(`sandbox        ${sandbox.url} (@authfetch/sandbox, WEX profile, in this process)`)
say(`token URL      ${sandbox.tokenUrl}   tokens live ${TOKEN_TTL_SECONDS} s (client credentials)`)
say(`API            ${sandbox.baseUrl}/v1/...`)
say("integrations   each with its own token source and its own sandbox client (secrets not shown):")
for (const it of INTEGRATIONS)
  say(`               ${it.who.padEnd(7)} ${it.name.padEnd(15)} client "${it.clientId}"`)

let passed = false
try {
  await coldStart()
  await steadyTraffic()
  await revocation()
  await rateLimitStorm()
  await serviceUnavailable()
  await unsafePost()
} catch (error) {
  line("demo", `aborted: ${error?.stack ?? error}`)
  check(false, "the demo ran to the end")
} finally {
  passed = summary()
  await Promise.all(INTEGRATIONS.map((it) => it.client.dispose()))
  await sandbox.close()
}
process.exitCode = passed ? 0 : 1
// Everything above is closed; should anything still hold the process, do not hang.
setTimeout(() => process.exit(), 2000).unref()
