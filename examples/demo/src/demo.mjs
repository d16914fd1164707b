/**
 * @authfetch/core end to end, against a real OAuth 2.0 server, in about 13 seconds.
 *
 * The authorization server is panva's oidc-provider, started in this process on
 * 127.0.0.1 and issuing client-credentials tokens that live 3 seconds; the
 * "benefits API" accepts only its live tokens (see ./servers.mjs). The client
 * side is what an application writes: `createTokenSource(...)`, `getToken()`
 * before each call, and `invalidate(token)` when the API answers 401. Four
 * scenes, printed as a timeline:
 *
 *   A. steady traffic over ~4 token lifetimes: tokens are refreshed ahead, in
 *      the background, so no call waits for one;
 *   B. 200 concurrent calls on a cold token source: exactly one token request;
 *   C. the server revokes the token in use: 401, invalidate, new token, one
 *      retry, success;
 *   D. a wrong client secret: `OAuthError` invalid_client after one request,
 *      and the secret is nowhere in the error.
 *
 * Exits 0 if no API call was lost and every check held, 1 otherwise. Tokens and
 * secrets are never printed: a token shows as `token #id`.
 *
 * Run from the repository root: npx -y pnpm@12 demo
 */
import { randomBytes } from "node:crypto"
import { setTimeout as sleep } from "node:timers/promises"
import { inspect } from "node:util"
import { createTokenSource, OAuthError } from "@authfetch/core"
import { startAuthorizationServer, startBenefitsApi, TOKEN_TTL_SECONDS } from "./servers.mjs"

// ---------------------------------------------------------------------------
// Timeline, counters, checks

const startedAt = performance.now()
/** everything printed, to check at the end that no token or secret is in it */
const printed = []
const say = (text = "") => {
  printed.push(text)
  console.log(text)
}
const elapsed = () => `${((performance.now() - startedAt) / 1000).toFixed(3)}s`
const line = (who, text) => say(`${elapsed().padStart(8)}  ${who.padEnd(10)} ${text}`)
const scene = (title) => say(`\n── ${title} ${"─".repeat(Math.max(0, 76 - title.length))}`)

const totals = { calls: 0, succeeded: 0, tokenRequests: 0, refreshesAhead: 0, retriesAfter401: 0, lost: 0 }
const checks = []
const check = (ok, text) => checks.push({ ok: Boolean(ok), text })

const REASONS = {
  initial: "first use",
  refresh_ahead: "refresh ahead, in the background",
  expired: "token expired",
  invalidated: "the API rejected the previous token"
}

/** Prints a token source's events (they never carry a token or a secret) and counts its token requests. */
const timelineFor = (source) => (event) => {
  const { who } = source
  switch (event.type) {
    case "token_requested":
      source.requests.push(event.reason)
      totals.tokenRequests++
      if (event.reason === "refresh_ahead") totals.refreshesAhead++
      return line(who, `token requested (${REASONS[event.reason] ?? event.reason})`)
    case "token_acquired":
      return line(
        who,
        `token #${event.tokenId} acquired in ${event.durationMillis} ms, valid ${event.expiresInSeconds} s`
      )
    case "token_request_failed":
      return line(
        who,
        `token request failed: ${event.code ?? event.error}, HTTP ${event.status}, retry: ${event.willRetry}`
      )
    case "token_invalidated":
      return line(who, `token #${event.tokenId} invalidated`)
    default:
      return line(who, event.type)
  }
}

// ---------------------------------------------------------------------------
// The client side, as an application writes it

const clientId = "benefits-partner"
const clientSecret = randomBytes(24).toString("base64url")
const wrongSecret = `wrong-${randomBytes(24).toString("base64url")}`

/** A token source, labelled for the timeline. */
const tokenSource = (auth, who, secret = clientSecret) => {
  const source = { who, requests: [] }
  source.tokens = createTokenSource({
    tokenUrl: auth.tokenUrl,
    clientId,
    clientSecret: secret,
    onEvent: timelineFor(source)
  })
  return source
}

let nextConsumerId = 1000

/**
 * One call to the benefits API: a token from the source (normally from cache,
 * at once), the request, and on 401 one retry with a new token. A call that
 * does not end in 2xx, or throws, is lost.
 */
const callApi = async (api, { who, tokens }, { quiet = false } = {}) => {
  const path = `/consumers/${++nextConsumerId}`
  const get = (token) => fetch(`${api.url}${path}`, { headers: { authorization: token.authorization() } })
  totals.calls++
  try {
    const before = performance.now()
    let token = await tokens.getToken()
    const waitedMillis = performance.now() - before
    let response = await get(token)
    let retried = false
    if (response.status === 401) {
      const problem = await response.json() // RFC 7807 problem details
      line(who, `GET ${path} → 401 with token #${token.id}: ${problem.detail}`)
      await tokens.invalidate(token) // exactly this token, never a newer one
      token = await tokens.getToken()
      response = await get(token)
      retried = true
      totals.retriesAfter401++
    }
    await response.arrayBuffer()
    if (response.ok) totals.succeeded++
    else totals.lost++
    if (!quiet) {
      const ready = `token ready in ${waitedMillis.toFixed(1)} ms`
      line(
        who,
        `GET ${path} → ${response.status} with token #${token.id}${retried ? " (retry)" : ""}, ${ready}`
      )
    }
    return {
      ok: response.ok,
      retried,
      tokenId: token.id,
      waitedMillis,
      failure: response.ok ? undefined : `HTTP ${response.status}`
    }
  } catch (error) {
    totals.lost++
    const failure = String(error?.message ?? error)
    if (!quiet) line(who, `GET ${path} lost: ${failure}`)
    return { ok: false, failure }
  }
}

// ---------------------------------------------------------------------------
// The scenes

/** A. One call every 400 ms over ~4 token lifetimes: refresh-ahead keeps a fresh token ready. */
const steadyTraffic = async (api, partner) => {
  scene("A. Steady traffic: 30 calls, one every 400 ms, over ~4 token lifetimes")
  const calls = []
  const start = performance.now()
  for (let i = 0; i < 30; i++) {
    await sleep(Math.max(0, start + i * 400 - performance.now()))
    calls.push(await callApi(api, partner))
  }
  const lifetimes = (performance.now() - start) / 1000 / TOKEN_TTL_SECONDS
  const requests = [...partner.requests]
  const firstTry = calls.filter((call) => call.ok && !call.retried).length
  const waited = calls.slice(1).filter((call) => call.waitedMillis > 50).length
  const refreshed = requests.filter((reason) => reason === "refresh_ahead").length
  check(firstTry === 30, `A: ${firstTry} of 30 calls succeeded at the first attempt`)
  check(waited === 0, `A: calls after the first that waited > 50 ms for a token: ${waited}`)
  check(
    refreshed > 0 && refreshed === requests.length - 1,
    `A: tokens after the first that were refreshed ahead: ${refreshed} of ${requests.length - 1}`
  )
  check(
    requests.length <= 2 * lifetimes,
    `A: ${requests.length} token requests in ${lifetimes.toFixed(1)} token lifetimes (at most 2 per lifetime)`
  )
}

/** B. 200 concurrent calls on a token source with nothing cached: single-flight. */
const concurrentBurst = async (api, cold) => {
  scene("B. 200 concurrent calls on a cold token source")
  const start = performance.now()
  const calls = await Promise.all(Array.from({ length: 200 }, () => callApi(api, cold, { quiet: true })))
  const took = `${Math.round(performance.now() - start)} ms`
  const succeeded = calls.filter((call) => call.ok).length
  const tokens = [...new Set(calls.map((call) => `#${call.tokenId}`))].join(", ")
  line(cold.who, `200 calls done in ${took}: ${succeeded} succeeded, all with token ${tokens}`)
  const failure = calls.find((call) => !call.ok)?.failure
  if (failure !== undefined) line(cold.who, `first failure: ${failure}`)
  check(succeeded === 200, `B: ${succeeded} of 200 concurrent calls succeeded`)
  check(
    cold.requests.length === 1,
    `B: token requests for 200 concurrent calls: ${cold.requests.length} (expected 1)`
  )
}

/** C. The token in use is revoked at the server: the API says 401, the caller invalidates it and retries once. */
const revocation = async (auth, api, partner) => {
  scene("C. The authorization server revokes the token in use")
  // A token with at least a second before its refresh-ahead, so that a refresh
  // cannot replace it between the revocation and the next call.
  let token = await partner.tokens.getToken()
  while (token.refreshAt - Date.now() < 1000) {
    await sleep(100)
    token = await partner.tokens.getToken()
  }
  await auth.revoke(token.reveal())
  line("server", `token #${token.id} revoked at the authorization server (RFC 7009)`)
  const call = await callApi(api, partner)
  check(
    call.ok && call.retried && partner.requests.at(-1) === "invalidated",
    "C: revoked token → 401 → invalidate → new token → one retry → 200"
  )
}

/** D. A wrong client secret fails fast with invalid_client, and the error does not reveal it. */
const wrongClientSecret = async (misconfigured) => {
  scene("D. A wrong client secret")
  try {
    await misconfigured.tokens.getToken()
    check(false, "D: getToken() with a wrong secret rejects")
  } catch (error) {
    line(misconfigured.who, `getToken() rejected with ${error?._tag}: ${error?.message}`)
    check(
      error instanceof OAuthError && error.code === "invalid_client",
      "D: rejected with OAuthError invalid_client"
    )
    check(
      misconfigured.requests.length === 1,
      `D: token requests before giving up: ${misconfigured.requests.length} (expected 1)`
    )
    const shown = [error?.message, inspect(error), JSON.stringify(error)].join("\n")
    check(!shown.includes(wrongSecret), "D: neither the message nor the error object contains the secret")
  }
}

// ---------------------------------------------------------------------------
// Run

const summary = () => {
  scene("Summary")
  const rows = [
    ["API calls", totals.calls],
    ["succeeded", totals.succeeded],
    ["token requests", totals.tokenRequests],
    ["refreshes ahead", totals.refreshesAhead],
    ["retries after 401", totals.retriesAfter401],
    ["lost", totals.lost]
  ]
  for (const [label, value] of rows) say(`  ${label.padEnd(20)}${String(value).padStart(6)}`)
  say()
  for (const { ok, text } of checks) say(`  ${ok ? "✓" : "✗"} ${text}`)
  const failed = checks.filter(({ ok }) => !ok).length
  const passed = totals.lost === 0 && failed === 0
  say()
  say(
    passed
      ? `PASS in ${elapsed()}: nothing lost, every check held`
      : `FAIL in ${elapsed()}: ${totals.lost} lost, ${failed} check(s) failed`
  )
  return passed
}

const auth = await startAuthorizationServer({ clientId, clientSecret })
const api = await startBenefitsApi()
const partner = tokenSource(auth, "partner")
const cold = tokenSource(auth, "cold")
const misconfigured = tokenSource(auth, "bad-secret", wrongSecret)

say("@authfetch/core demo")
say(`authorization server  ${auth.issuer} (oidc-provider), client "${clientId}" (secret not shown)`)
say(`token lifetime        ${TOKEN_TTL_SECONDS} s (client credentials grant)`)
say(`benefits API          ${api.url}/consumers/:id`)

try {
  await steadyTraffic(api, partner)
  await concurrentBurst(api, cold)
  await revocation(auth, api, partner)
  await wrongClientSecret(misconfigured)
} catch (error) {
  line("demo", `aborted: ${error?.message ?? error}`)
  check(false, "the demo ran to the end")
} finally {
  await Promise.all([partner, cold, misconfigured].map((source) => source.tokens.dispose()))
  await Promise.all([auth.close(), api.close()])
}
const issued = auth.issuedTokens()
check(
  !printed.some((text) => [clientSecret, wrongSecret, ...issued].some((secret) => text.includes(secret))),
  `no secret and none of the ${issued.length} issued tokens appears in the output`
)
process.exitCode = summary() ? 0 : 1
