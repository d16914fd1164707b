/**
 * The fault rows: what goes wrong, when, and what must still succeed.
 *
 * "Should have succeeded" (a request that did not is *lost*): the fault is
 * transient and within the retry limits, and the policy may retry the request.
 * Concretely, every request must succeed except:
 *
 * - a POST without `Idempotency-Key` that met a 5xx, a dropped connection or
 *   a timeout on the API: it may have been processed, so it is not retried
 *   and its failure goes back to the caller (by design; counted as
 *   "not retried", and its attempts are checked: it reached the server once);
 * - the requests waiting for a token whose endpoint answered `200` with a
 *   malformed body: that is an answer, not an accident, and is not retried
 *   (`InvalidTokenResponseError`); the requests after it must succeed.
 *
 * `401` (any method: the request was not processed) and `429` (RFC 6585: not
 * processed) are recovered for every request, POSTs without a key included.
 *
 * Faults stay within the retry limits by construction (see `env.ts`): rate
 * faults are driven by the die (`budget` per wave on the API, `cycle` on the
 * token endpoint), `429`s are counts, latency lasts until the first request
 * it delayed is abandoned.
 *
 * Every row is `beforeWave(env, wave)` on a running environment, so the soak
 * can rotate through the same rows on long-lived sandboxes.
 */
import type { Env, GatewayAnswer } from "./env.ts"

export type RequestKind = "get" | "keyed post" | "plain post"

export interface FaultRow {
  readonly id: string
  readonly description: string
  /** needs the scripted gateway in front of the token endpoint */
  readonly gateway?: boolean
  /** sets the row's faults up for wave `wave` (from 0); every earlier wave has settled */
  readonly beforeWave?: (env: Env, wave: number) => void
  /** true when a request of this kind in this wave may fail by design (see above) */
  readonly mayFail?: (kind: RequestKind, wave: number) => boolean
  /** how many faults were injected (a row that injected nothing proves nothing) */
  readonly injected?: (env: Env) => number
  /**
   * send the requests of a wave a few milliseconds apart, in order, so that a
   * per-wave fault budget hits the first ones (by default they leave together:
   * eight requests meet a revoked token at once)
   */
  readonly staggered?: boolean
  /**
   * a row that loses requests because of a known bug (reported): its cells
   * are expected to fail until it is fixed; it is left out of the soak
   */
  readonly knownBug?: string
}

/** Faults per API wave and per token acquisition: at most this many, below `maxRetries`. */
export const FAULTS_PER_WAVE = 3
export const FAULTS_PER_ACQUISITION = 3
/** A slow answer: well past the token timeout and the attempt timeout the matrix uses. */
export const SLOW_MS = 6_000
/** A `Retry-After` past the matrix's attempt timeout (3 s), within its token maxRetryAfter (5 s). */
export const LONG_RETRY_AFTER_SECONDS = 4

const plainPostMayFail = (kind: RequestKind) => kind === "plain post"

const withFaults = (env: Env, events: "token" | "api", fault: string) =>
  env.seen[events].filter((e) => e.faults?.includes(fault as never)).length

const apiStatus = (env: Env, status: number) => env.seen.api.filter((e) => e.status === status).length

const reply = (status: number, body: string, headers?: Record<string, string>): GatewayAnswer => ({
  kind: "reply",
  status,
  body,
  ...(headers === undefined ? {} : { headers })
})

/** Error answers that are not what they claim to be: all retryable statuses, all unreadable. */
const MALFORMED_ERRORS: ReadonlyArray<GatewayAnswer> = [
  reply(503, "<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>", {
    "content-type": "text/html"
  }),
  reply(500, '{"error":"server_err', { "content-type": "application/json" }),
  reply(502, ""),
  reply(503, "null", { "content-type": "application/json" }),
  reply(500, "[1,2,3]", { "content-type": "application/json" }),
  reply(504, `{"error":"temporarily_unavailable","pad":"${"x".repeat(100 * 1024)}"}`, {
    "content-type": "application/json"
  }),
  reply(500, '{"error":42,"error_description":{"nested":true}}', { "content-type": "application/json" })
]

/** A real token answer, made unusable in ways a broken server or gateway does. */
const CORRUPTIONS: ReadonlyArray<(body: string) => { status: number; contentType: string; body: string }> = [
  (body) => ({ status: 200, contentType: "text/html", body: `<html><pre>${body}</pre></html>` }),
  (body) => ({
    status: 200,
    contentType: "application/json",
    body: body.slice(0, Math.floor(body.length / 2))
  }),
  (body) => ({
    status: 200,
    contentType: "application/json",
    body: JSON.stringify({ ...JSON.parse(body), expires_in: "soon" })
  }),
  (body) => ({
    status: 200,
    contentType: "application/json",
    body: JSON.stringify({ ...JSON.parse(body), token_type: 7, refresh_token: 12 })
  }),
  (body) => ({ status: 200, contentType: "application/json", body: `[${body}]` }),
  (body) => ({
    status: 200,
    contentType: "application/json",
    body: JSON.stringify({ ...JSON.parse(body), pad: "x".repeat(1 << 20) })
  }),
  (body) => {
    const { access_token, ...rest } = JSON.parse(body) as Record<string, unknown>
    return {
      status: 200,
      contentType: "application/json",
      body: JSON.stringify({ ...rest, token: access_token })
    }
  }
]

let corruptionNo = 0

/** A hard fault: `endpoint` answers 503 to every request from the first wave on; anything may fail. */
const downRow = (endpoint: "token" | "api", id: string, description: string): FaultRow => ({
  id,
  description,
  beforeWave: (env, wave) => {
    if (wave !== 0) return
    env.setFaults({ [endpoint]: { errorRate: 1, errorStatus: 503 } })
    env.die.budget(Number.MAX_SAFE_INTEGER)
  },
  mayFail: () => true,
  injected: (env) => withFaults(env, endpoint, "error")
})

export const ROWS: ReadonlyArray<FaultRow> = [
  { id: "none", description: "no fault: the control row" },

  // --- token endpoint ------------------------------------------------------
  ...([500, 502, 503] as const).map(
    (status): FaultRow => ({
      id: `token ${status}`,
      description: `token endpoint answers ${status}${status === 502 ? " (an HTML gateway page)" : " (OAuth error JSON)"} ${FAULTS_PER_ACQUISITION} times out of ${FAULTS_PER_ACQUISITION + 1}`,
      beforeWave: (env, wave) => {
        if (wave !== 0) return
        env.setFaults({ token: { errorRate: 1, errorStatus: status } })
        env.die.cycle(FAULTS_PER_ACQUISITION)
      },
      injected: (env) => withFaults(env, "token", "error")
    })
  ),
  {
    id: "token 429 Retry-After",
    description: "token endpoint answers 429 with Retry-After: 1 once per wave",
    beforeWave: (env) => env.setFaults({ token: { rateLimit429: { count: 1, retryAfterSeconds: 1 } } }),
    injected: (env) => withFaults(env, "token", "rate_limit")
  },
  {
    id: "token 429 long Retry-After",
    description: `token endpoint answers 429 with a Retry-After (${LONG_RETRY_AFTER_SECONDS} s) longer than the attempt timeout, within the token source's maxRetryAfter, once per row`,
    beforeWave: (env, wave) => {
      if (wave === 0)
        env.setFaults({ token: { rateLimit429: { count: 1, retryAfterSeconds: LONG_RETRY_AFTER_SECONDS } } })
    },
    injected: (env) => withFaults(env, "token", "rate_limit")
  },
  {
    id: "token 429 no Retry-After",
    description: "token endpoint answers 429 without Retry-After 2 times out of 3 (scripted gateway)",
    gateway: true,
    beforeWave: (env, wave) => {
      if (wave !== 0 || !env.gateway) return
      env.gateway.requests = 0
      env.gateway.script = (n) =>
        n % 3 === 0
          ? { kind: "forward" }
          : reply(429, '{"error":"too_many_requests"}', { "content-type": "application/json" })
    },
    injected: (env) => env.gateway?.scripted ?? 0
  },
  ...([300, -300] as const).map(
    (offset): FaultRow => ({
      id: `token 429 Retry-After date, server ${offset > 0 ? "+" : "-"}5 min`,
      description: `token endpoint (its clock ${offset > 0 ? "5 minutes ahead" : "5 minutes behind"}) answers 429 once per row with Retry-After as an HTTP-date 1 s after its own Date header (scripted gateway)`,
      gateway: true,
      beforeWave: (env, wave) => {
        if (wave !== 0 || !env.gateway) return
        env.gateway.requests = 0
        env.gateway.script = (n) => {
          if (n !== 1) return { kind: "forward" }
          const serverNow = Date.now() + offset * 1000
          return reply(429, '{"error":"too_many_requests"}', {
            "content-type": "application/json",
            date: new Date(serverNow).toUTCString(),
            "retry-after": new Date(serverNow + 1000).toUTCString()
          })
        }
      },
      injected: (env) => env.gateway?.scripted ?? 0
    })
  ),
  {
    id: "token slow",
    description: `token endpoint answers after ${SLOW_MS} ms (past the token timeout) until a client gives up, each wave`,
    beforeWave: (env) => env.transientLatency("token", SLOW_MS),
    injected: (env) => withFaults(env, "token", "latency")
  },
  {
    id: "token dropped",
    description: `token endpoint drops the connection ${FAULTS_PER_ACQUISITION} times out of ${FAULTS_PER_ACQUISITION + 1}`,
    beforeWave: (env, wave) => {
      if (wave !== 0) return
      env.setFaults({ token: { dropRate: 1 } })
      env.die.cycle(FAULTS_PER_ACQUISITION)
    },
    injected: (env) => withFaults(env, "token", "drop")
  },
  {
    id: "token malformed error",
    description:
      "token endpoint answers 5xx with HTML, truncated JSON, empty, null, an array, 100 KiB, wrong types, 3 times out of 4 (scripted gateway)",
    gateway: true,
    beforeWave: (env, wave) => {
      if (wave !== 0 || !env.gateway) return
      env.gateway.requests = 0
      env.gateway.script = (n) =>
        n % 4 === 0 ? { kind: "forward" } : MALFORMED_ERRORS[(n + corruptionNo++) % MALFORMED_ERRORS.length]!
    },
    injected: (env) => env.gateway?.scripted ?? 0
  },
  {
    id: "token malformed 200",
    description:
      "the first token answer of the row is a real token in a broken 200 (HTML, truncated, wrong types, array, 1 MiB, renamed field); wave 0 may fail, typed",
    gateway: true,
    beforeWave: (env, wave) => {
      if (wave !== 0 || !env.gateway) return
      const corrupt = CORRUPTIONS[corruptionNo++ % CORRUPTIONS.length]!
      env.gateway.requests = 0
      env.gateway.script = (n) => (n === 1 ? { kind: "corrupt", corrupt } : { kind: "forward" })
      // a cached token must not hide the fault: the next request needs a new one
      env.sandbox.revokeAll()
    },
    mayFail: (_kind, wave) => wave === 0,
    injected: (env) => env.gateway?.scripted ?? 0
  },

  // --- resource API --------------------------------------------------------
  {
    id: "api 401",
    description: "every token is revoked before each wave but the first (WEX's malformed problem+json 401)",
    beforeWave: (env, wave) => {
      if (wave > 0) env.sandbox.revokeAll()
    },
    injected: (env) => apiStatus(env, 401)
  },
  {
    id: "api 429",
    description: "the API answers 429 with Retry-After: 1 to the first 3 requests of the first wave",
    beforeWave: (env, wave) => {
      if (wave === 0) env.setFaults({ api: { rateLimit429: { count: 3, retryAfterSeconds: 1 } } })
    },
    injected: (env) => withFaults(env, "api", "rate_limit")
  },
  ...([503, 502] as const).map(
    (status): FaultRow => ({
      id: `api ${status}`,
      description: `the API answers ${status} to ${FAULTS_PER_WAVE} requests of each wave`,
      staggered: true,
      beforeWave: (env, wave) => {
        if (wave === 0) env.setFaults({ api: { errorRate: 1, errorStatus: status } })
        env.die.budget(FAULTS_PER_WAVE)
      },
      mayFail: plainPostMayFail,
      injected: (env) => withFaults(env, "api", "error")
    })
  ),
  {
    id: "api dropped",
    description: `the API drops the connection of ${FAULTS_PER_WAVE} requests of each wave`,
    staggered: true,
    beforeWave: (env, wave) => {
      if (wave === 0) env.setFaults({ api: { dropRate: 1 } })
      env.die.budget(FAULTS_PER_WAVE)
    },
    mayFail: plainPostMayFail,
    injected: (env) => withFaults(env, "api", "drop")
  },
  {
    id: "api slow",
    description: `the API answers after ${SLOW_MS} ms (past the attempt timeout) until a client gives up, each wave`,
    beforeWave: (env) => env.transientLatency("api", SLOW_MS),
    mayFail: plainPostMayFail,
    injected: (env) => withFaults(env, "api", "latency")
  },

  // --- clocks --------------------------------------------------------------
  {
    id: "clock +5 min",
    description:
      "the sandbox's clock jumps 5 minutes ahead after the first wave: every token it issued is expired",
    beforeWave: (env, wave) => {
      if (wave === 1) env.setFaults({ clockOffsetSeconds: 300 })
    },
    injected: (env) => apiStatus(env, 401)
  },
  {
    id: "clock -5 min",
    description:
      "the sandbox's clock (Date header, token times) runs 5 minutes behind, then is corrected after the first wave",
    beforeWave: (env, wave) => {
      if (wave === 0) env.setFaults({ clockOffsetSeconds: -300 })
      if (wave === 1) env.setFaults({ clockOffsetSeconds: 0 })
    },
    injected: (env) => apiStatus(env, 401)
  }
]

/**
 * Hard faults, for the leak sweep: every request fails (typed, without a
 * crash or a hang), and every failure is scanned.
 */
export const HARD_ROWS: ReadonlyArray<FaultRow> = [
  downRow(
    "token",
    "token down",
    "the token endpoint answers 503 to every request: every request fails once its retries are spent"
  ),
  {
    id: "token echoes the request",
    description:
      "the token endpoint answers invalid_client with the request body and Authorization header echoed in error_description and error_uri (scripted gateway)",
    gateway: true,
    beforeWave: (env, wave) => {
      if (wave !== 0 || !env.gateway) return
      env.gateway.script = (_n, request) =>
        reply(
          401,
          JSON.stringify({
            error: "invalid_client",
            error_description: `got ${request.body} auth=${request.authorization}`,
            error_uri: `https://errors.example/?${request.body}`
          }),
          { "content-type": "application/json" }
        )
    },
    mayFail: () => true,
    injected: (env) => env.gateway?.scripted ?? 0
  },
  downRow(
    "api",
    "api down",
    "the API answers 503 to every request: retries are spent, the 503 reaches the caller"
  )
]

/** The rows run again on the WealthCare profile (password grant, offline_access: refresh tokens). */
export const WEALTHCARE_ROWS: ReadonlyArray<FaultRow> = [...ROWS, ...HARD_ROWS].filter((row) =>
  [
    "none",
    "token 503",
    "token slow",
    "token dropped",
    "api 401",
    "api dropped",
    "clock +5 min",
    "token down",
    "token echoes the request"
  ].includes(row.id)
)

/** Undoes every fault of a row on a running environment. */
export const resetFaults = (env: Env): void => {
  env.setFaults({})
  env.die.off()
  if (env.gateway) env.gateway.script = undefined
}
