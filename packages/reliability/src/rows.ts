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
 * Some rows allow more by design, and say so in `mayFail`: the requests a row
 * sends to a path that always answers `401` (`pathOf`), the requests that find
 * the client's token budget spent, and every request of a hard row.
 *
 * Faults stay within the retry limits by construction (see `env.ts`): rate
 * faults are driven by the die (`budget` per wave on the API, `cycle` on the
 * token endpoint), `429`s are counts, latency lasts until the first request
 * it delayed is abandoned.
 *
 * Most rows are `beforeWave(env, wave)` on a running environment, so the soak
 * can rotate through the same rows on long-lived sandboxes. A row with a
 * `setup` needs an environment of its own (a token lifetime, the API gateway,
 * several clients, a quiet time): the matrix builds it per cell, the soak
 * leaves such rows out. `violations` states what must hold beyond the counts
 * (a bound on token requests, an event that must have happened).
 */
import type { RequestEvent, TokenEvent } from "@authfetch/core"
import type { ApiGatewayAnswer, Env, GatewayAnswer } from "./env.ts"

export type RequestKind = "get" | "keyed post" | "plain post"

/**
 * Who the clients of a cell are. By default one client, built from the cell's
 * token configuration; otherwise `count` clients of one integration, each
 * with its own token source, and the requests of a wave go to them in turn
 * (request `i` to client `i % count`).
 *
 * - `users`: WealthCare password grants of `count` users; their sources share
 *   one token store (as a fleet shares Redis), so identities that shared a
 *   cache key would share tokens;
 * - `codes`: WealthCare authorization codes (PKCE), one per client, all from
 *   the sandbox's auto-approved flow; one shared store as above;
 * - `sources`: one client id, `count` sources that differ only in `params`,
 *   each configured with a budget of `rateLimit` token requests a minute.
 */
export type Identities =
  | { readonly kind: "users"; readonly count: number }
  | { readonly kind: "codes"; readonly count: number }
  | { readonly kind: "sources"; readonly count: number; readonly rateLimit: number }

/** What a cell saw, for a row's `violations`. */
export interface Observed {
  /** token requests that reached the token endpoint (the gateway's count when there is one) */
  readonly tokenRequests: number
  /** token requests that reached it during each wave (from the start of the wave to its end) */
  readonly tokenRequestsByWave: ReadonlyArray<number>
  /** token requests during the quiet time after the last wave (`setup.idleAfterMs`) */
  readonly idleTokenRequests: number
  readonly tokenEvents: ReadonlyArray<TokenEvent>
  readonly requestEvents: ReadonlyArray<RequestEvent>
  /** the outcome of every request that did not succeed: `wave kind path: outcome` */
  readonly failures: ReadonlyArray<string>
  readonly sent: number
  readonly ok: number
  /** from the first wave to the end of the last (time-scaled bounds use it) */
  readonly elapsedMs: number
}

export interface FaultRow {
  readonly id: string
  readonly description: string
  /** needs the scripted gateway in front of the token endpoint */
  readonly gateway?: boolean
  /** sets the row's faults up for wave `wave` (from 0); every earlier wave has settled */
  readonly beforeWave?: (env: Env, wave: number) => void
  /** the pause between waves when the row needs a longer one than the tuning's (tokens must age past their lifetime) */
  readonly pauseMs?: number
  /** true when a request of this kind in this wave, to this path, may fail by design (see above) */
  readonly mayFail?: (kind: RequestKind, wave: number, path: string) => boolean
  /**
   * another path (below the API base) for request `index` of wave `wave`, or
   * `undefined` for the usual one: how a row sends some requests where its
   * fault is
   */
  readonly pathOf?: (kind: RequestKind, index: number, wave: number) => string | undefined
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
  /**
   * the fault outlives the row's waves (a token request sleeping out a long
   * `Retry-After`), and requests that meet it may fail by design: the soak,
   * which runs rows back to back on one environment, leaves such a row out
   */
  readonly lingers?: boolean
  /** what the row needs from its environment; such rows are left out of the soak */
  readonly setup?: {
    /** the sandbox's token lifetime for this row, seconds (default: the tuning's) */
    readonly tokenTtl?: number
    /** the scripted gateway in front of the API */
    readonly apiGateway?: boolean
    readonly identities?: Identities
    /** a quiet time after the last wave, whose token requests are counted (`idleTokenRequests`) */
    readonly idleAfterMs?: number
  }
  /** what must hold beyond the counts; each string a violation (target: none) */
  readonly violations?: (env: Env, observed: Observed) => ReadonlyArray<string>
  /**
   * integrations known (and reported) to hand an access token to the caller in
   * this row, with the reason: in their cells, access tokens found in the
   * captures named by `where` are expected (and must still be seen: a fix shows
   * up as a failure, to remove this); any other leak fails as usual (the
   * `ProblemDetailsError` on ky's and axios's errors is captured apart, as
   * `ky error.problem` and `axios error.problem`, and stays checked)
   */
  readonly knownLeak?: {
    readonly integrations: ReadonlyArray<string>
    readonly where: ReadonlyArray<string>
    readonly reason: string
  }
  /**
   * violations that are a known (reported) bug: tolerated in each cell, and
   * expected in at least one cell of the row (a fix shows up as a failure of
   * the summary, to remove this)
   */
  readonly knownViolation?: { readonly pattern: RegExp; readonly reason: string }
}

/** Faults per API wave and per token acquisition: at most this many, below `maxRetries`. */
export const FAULTS_PER_WAVE = 3
export const FAULTS_PER_ACQUISITION = 3
/** A slow answer: well past the token timeout and the attempt timeout the matrix uses. */
export const SLOW_MS = 6_000
/** A `Retry-After` past the matrix's attempt timeout (3 s), within its token maxRetryAfter (5 s). */
export const LONG_RETRY_AFTER_SECONDS = 4
/** A route the client may not call: the sandbox answers it 401 whatever the token. */
export const UNAUTHORIZED_PATH = "/v1/admin"
/** The core's default `unauthorizedCooldown`. */
const COOLDOWN_MS = 10_000
/** The token budget of the budget row, per minute: low, so that three sources spend it at once. */
const BUDGET = 5
/** How a request refused by a spent budget ends: the error, or the proxy's 503 for it. */
const BUDGET_REFUSAL = /RateLimitedError|token request limit|rate limit|HTTP 503/i
/** The quiet time after the last wave of the lifetime rows. */
const IDLE_MS = 2_500

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

type Corruption = (body: string) => { status: number; contentType: string; body: string }

/** A real token answer with some fields replaced (`patch` sees the answer). */
const patched =
  (patch: (answer: Record<string, unknown>) => Record<string, unknown>): Corruption =>
  (body) => {
    const answer = JSON.parse(body) as Record<string, unknown>
    return {
      status: 200,
      contentType: "application/json",
      body: JSON.stringify({ ...answer, ...patch(answer) })
    }
  }

/** A real token answer, made unusable in ways a broken server or gateway does. */
const CORRUPTIONS: ReadonlyArray<Corruption> = [
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
  },
  // values that cannot go into a header (undici's TypeError would quote the header, token included)
  patched(() => ({ token_type: "Bearer\u0000" })),
  patched((token) => ({ access_token: `${token.access_token}\u0001` })),
  // a lifetime too short to use
  patched(() => ({ expires_in: 1e-9 }))
]

let corruptionNo = 0

/** Token answers whose values cannot go into an `Authorization` header. */
const HEADER_BREAKERS: ReadonlyArray<Corruption> = [
  patched(() => ({ token_type: "Bearer\u0000" })),
  patched((answer) => ({ access_token: `${answer.access_token}\u0001` })),
  patched((answer) =>
    typeof answer.refresh_token === "string"
      ? { refresh_token: `${answer.refresh_token}\u0000` }
      : { access_token: `${answer.access_token}\r\nx-injected: 1` }
  ),
  patched(() => ({ token_type: "Bearer x" })),
  patched((answer) => ({ access_token: `${answer.access_token}\r\nx-injected: 1` }))
]

/**
 * Every token request failed with `tag` (and `matches`), and none was retried:
 * the answer was refused as it came.
 */
const refusedAnswers = (
  seen: Observed,
  tag: string,
  matches: (event: Extract<TokenEvent, { type: "token_request_failed" }>) => boolean = () => true
): Array<string> => {
  const failed = seen.tokenEvents.filter(
    (e): e is Extract<TokenEvent, { type: "token_request_failed" }> => e.type === "token_request_failed"
  )
  const out: Array<string> = []
  if (failed.length === 0) out.push("no token request failed")
  const other = failed.filter((e) => e.error !== tag || !matches(e))
  if (other.length > 0)
    out.push(
      `token requests that failed otherwise: ${other.map((e) => `${e.error} ${e.status ?? ""}`).join(", ")}`
    )
  const retried = failed.filter((e) => e.willRetry)
  if (retried.length > 0) out.push(`${retried.length} refused token answers retried`)
  if (seen.tokenEvents.some((e) => e.type === "token_acquired")) out.push("a token was acquired")
  return out
}

/**
 * An API error answer that echoes the bearer token it was sent, in one of the
 * places an API puts it (by request number): 400, 403 or 500.
 */
const echoToken = (
  n: number,
  request: { readonly path: string; readonly authorization: string | undefined }
) => {
  const authorization = request.authorization ?? ""
  const token = authorization.replace(/^Bearer /i, "")
  const answers: ReadonlyArray<ApiGatewayAnswer> = [
    {
      kind: "reply",
      status: 400,
      headers: { "content-type": "application/problem+json" },
      body: JSON.stringify({
        type: "https://errors.example/invalid-request",
        title: `Bad Request for ${authorization}`,
        status: 400,
        detail: `The token ${token} may not call ${request.path}`,
        instance: `${request.path}?access_token=${encodeURIComponent(token)}`,
        debug: { authorization, token }
      })
    },
    {
      kind: "reply",
      status: 403,
      headers: {
        "content-type": "application/json",
        "www-authenticate": `Bearer error="insufficient_scope", error_description="token ${token} lacks a scope"`
      },
      body: JSON.stringify({ error: "insufficient_scope", error_description: `token ${token} lacks a scope` })
    },
    {
      kind: "reply",
      status: 500,
      headers: { "content-type": "text/plain" },
      body: `internal error\nrequest headers:\nauthorization: ${authorization}\n`
    },
    {
      kind: "reply",
      status: 400,
      headers: { "content-type": "text/html" },
      body: `<p>Invalid token.</p><a href="/retry?t=${encodeURIComponent(token)}&f=${new URLSearchParams({ t: token }).toString().slice(2)}">retry</a>`
    }
  ]
  return answers[(n - 1) % answers.length]!
}

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
    description: `token endpoint answers 429 with a Retry-After (${LONG_RETRY_AFTER_SECONDS} s) longer than the attempt timeout, within the token source's maxRetryAfter, once per row: the requests of wave 0 wait for their token no longer than their timeout and fail, typed (TokenEndpointError timeout; 502 from the proxies); the token arrives for wave 1`,
    beforeWave: (env, wave) => {
      if (wave === 0)
        env.setFaults({ token: { rateLimit429: { count: 1, retryAfterSeconds: LONG_RETRY_AFTER_SECONDS } } })
    },
    // the wait for a token is bounded by the request's timeout (issue #11)
    mayFail: (_kind, wave) => wave === 0,
    lingers: true,
    injected: (env) => withFaults(env, "token", "rate_limit"),
    violations: (_env, seen) => {
      const other = seen.failures.filter((f) => !/waiting for a token|HTTP 502/.test(f))
      return other.length === 0 ? [] : [`failures other than a bounded token wait:\n${other.join("\n")}`]
    }
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
      "the first token answer of the row is a real token in a broken 200 (HTML, truncated, wrong types, array, 1 MiB, renamed field, token_type Bearer\\u0000, a control character in access_token, expires_in 1e-9); wave 0 may fail, typed",
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
  },

  // --- token economy (issue #11) ----------------------------------------------
  {
    id: "api 401 storm",
    description: `3 requests of each wave (one of each kind over the row) go to ${UNAUTHORIZED_PATH}, which the API answers 401 whatever the token: their 401 reaches the caller, the others succeed; 30-second tokens, so after the first failed replay no token request is due until the 401 cooldown (${COOLDOWN_MS / 1000} s after the token's minting) ends`,
    setup: { tokenTtl: 30 },
    beforeWave: (env, wave) => {
      if (wave === 0) env.setFaults({ api: { unauthorizedPaths: [UNAUTHORIZED_PATH] } })
    },
    pathOf: (kind, index) =>
      index % 3 !== 0
        ? undefined
        : kind === "get"
          ? `${UNAUTHORIZED_PATH}/users?page=1`
          : `${UNAUTHORIZED_PATH}/claims`,
    mayFail: (_kind, _wave, path) => path.startsWith(UNAUTHORIZED_PATH),
    injected: (env) =>
      env.seen.api.filter((e) => e.status === 401 && e.path.includes(UNAUTHORIZED_PATH)).length,
    violations: (_env, seen) => {
      const out: Array<string> = []
      // at most two token requests per cooldown: the initial one and the replay's; none after
      // the first wave unless a cooldown ran out (a loaded machine), whatever the wave count
      const later = seen.tokenRequestsByWave.slice(1).reduce((a, b) => a + b, 0)
      const cooldownsOver = Math.floor(seen.elapsedMs / COOLDOWN_MS)
      if (later > cooldownsOver)
        out.push(
          `${later} token requests after the first wave (by wave: ${seen.tokenRequestsByWave.join(", ")}); the cooldown allows ${cooldownsOver}`
        )
      if (seen.tokenRequests > 2 + seen.tokenRequestsByWave.length)
        out.push(
          `${seen.tokenRequests} token requests for a 401 storm over ${seen.tokenRequestsByWave.length} waves`
        )
      for (const type of ["unauthorized_after_replay", "unauthorized_token_kept"] as const)
        if (!seen.requestEvents.some((e) => e.type === type)) out.push(`no ${type} event`)
      return out
    }
  },
  {
    id: "token budget shared by 3 sources",
    description: `three sources of one client that differ in params, each configured with a budget of ${BUDGET} token requests a minute; 30-second tokens, all revoked before waves 1 and 2: 9 acquisitions wanted, the client's one budget admits ${BUDGET}, the others fail at once (RateLimitedError, source client); waves 1 and 2 may fail`,
    setup: { tokenTtl: 30, identities: { kind: "sources", count: 3, rateLimit: BUDGET } },
    beforeWave: (env, wave) => {
      if (wave > 0) env.sandbox.revokeAll()
    },
    mayFail: (_kind, wave) => wave > 0,
    injected: (env) => apiStatus(env, 401),
    violations: (env, seen) => {
      const out: Array<string> = []
      const reached = env.sandbox.stats().tokenRequests.total
      if (reached > BUDGET)
        out.push(`the sandbox saw ${reached} token requests of one client (budget ${BUDGET})`)
      if (seen.ok === seen.sent) out.push("no request met the spent budget: the row proves nothing")
      // the requests that failed met the budget (typed), not something else
      const other = seen.failures.filter((f) => !BUDGET_REFUSAL.test(f))
      if (other.length > 0) out.push(`failures that are not the budget's:\n${other.join("\n")}`)
      // every caller here has a deadline (the attempt timeout) and no token is refreshed ahead
      // (30-second tokens): an acquisition waiting for the budget is one its callers started and
      // then waited for until their timeout, instead of failing fast
      const waited = seen.tokenEvents.filter((e) => e.type === "rate_limited" && e.source === "client").length
      if (waited > 0)
        out.push(
          `${waited} token acquisitions waited for the budget in the background although every caller had a deadline`
        )
      return out
    }
  },
  {
    id: "token lifetime 1 s",
    description: `every token answer says expires_in 1 (scripted gateway; the sandbox's tokens live 30 s): every request succeeds; background refreshes are 1 s apart at least and only for a token that was handed out, so the ${IDLE_MS / 1000} s of quiet after the last wave see at most one token request`,
    gateway: true,
    setup: { tokenTtl: 30, idleAfterMs: IDLE_MS },
    beforeWave: (env, wave) => {
      if (wave !== 0 || !env.gateway) return
      env.gateway.script = () => ({ kind: "corrupt", corrupt: patched(() => ({ expires_in: 1 })) })
    },
    injected: (env) => env.gateway?.scripted ?? 0,
    violations: (_env, seen) => {
      const out: Array<string> = []
      if (seen.idleTokenRequests > 1)
        out.push(`${seen.idleTokenRequests} token requests in ${IDLE_MS} ms with nobody asking for a token`)
      // a renewal per second at most, the request path's and the refresh's: a spin is hundreds
      const bound = 2 + 2 * Math.ceil(seen.elapsedMs / 1000)
      if (seen.tokenRequests - seen.idleTokenRequests > bound)
        out.push(
          `${seen.tokenRequests - seen.idleTokenRequests} token requests in ${Math.round(seen.elapsedMs)} ms of 1-second tokens`
        )
      return out
    }
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
      "the token endpoint echoes the request body (client secret, password, client_assertion) and Authorization header: invalid_client with them in error_description and error_uri, a problem+json 400 with them in title and detail, a 503 JSON with them in message (scripted gateway)",
    gateway: true,
    beforeWave: (env, wave) => {
      if (wave !== 0 || !env.gateway) return
      env.gateway.script = (n, request) => {
        const echo = `got ${request.body} auth=${request.authorization}`
        return [
          reply(
            401,
            JSON.stringify({
              error: "invalid_client",
              error_description: echo,
              error_uri: `https://errors.example/?${request.body}`
            }),
            { "content-type": "application/json" }
          ),
          reply(
            400,
            JSON.stringify({ type: "about:blank", title: `Bad Request: ${request.body}`, detail: echo }),
            {
              "content-type": "application/problem+json"
            }
          ),
          reply(503, JSON.stringify({ message: echo }), { "content-type": "application/json" })
        ][n % 3]!
      }
    },
    mayFail: () => true,
    injected: (env) => env.gateway?.scripted ?? 0
  },
  {
    id: "token redirects",
    description:
      "the token endpoint answers 302 or 307 to another origin (the sandbox's own token endpoint) with the request's form body and Authorization in the query and in an HTML body (scripted gateway): TokenEndpointError (redirect), not retried, not followed",
    gateway: true,
    beforeWave: (env, wave) => {
      if (wave !== 0 || !env.gateway) return
      const elsewhere = env.sandbox.tokenUrl
      env.gateway.script = (n, request) => {
        const location = `${elsewhere}?${request.body}&authorization=${encodeURIComponent(request.authorization ?? "")}`
        return reply(n % 2 === 1 ? 302 : 307, `<a href="${location}">moved</a>`, {
          location,
          "content-type": "text/html"
        })
      }
    },
    mayFail: () => true,
    injected: (env) => env.gateway?.scripted ?? 0,
    violations: (env, seen) => [
      ...(env.seen.token.length > 0
        ? [`a redirect was followed: the target saw ${env.seen.token.length} token requests`]
        : []),
      ...refusedAnswers(seen, "TokenEndpointError", (e) => e.status === 302 || e.status === 307)
    ]
  },
  {
    id: "token 200 unusable in a header",
    description:
      "every token answer is a real token in a 200 whose token_type is Bearer\\u0000 or Bearer x, whose access_token carries \\u0001 or CR LF, or whose refresh_token carries \\u0000 (scripted gateway): InvalidTokenResponseError naming the field, no value, nothing sent with it",
    gateway: true,
    beforeWave: (env, wave) => {
      if (wave !== 0 || !env.gateway) return
      env.gateway.script = (n) => ({
        kind: "corrupt",
        corrupt: HEADER_BREAKERS[(n - 1) % HEADER_BREAKERS.length]!
      })
    },
    mayFail: () => true,
    injected: (env) => env.gateway?.scripted ?? 0,
    violations: (env, seen) => [
      ...(env.seen.api.length > 0 ? [`${env.seen.api.length} API requests carried a refused token`] : []),
      ...refusedAnswers(seen, "InvalidTokenResponseError")
    ]
  },
  {
    id: "token lifetime below 1 s",
    description:
      "every token answer is a real token with expires_in 1e-9, 0.5 or 0.999 (scripted gateway): InvalidTokenResponseError, not retried, nothing sent with it, no spin: at most one token request per request sent, none in the second of quiet after the last wave",
    gateway: true,
    setup: { idleAfterMs: 1_000 },
    beforeWave: (env, wave) => {
      if (wave !== 0 || !env.gateway) return
      env.gateway.script = (n) => ({
        kind: "corrupt",
        corrupt: patched(() => ({ expires_in: [1e-9, 0.5, 0.999][(n - 1) % 3] }))
      })
    },
    mayFail: () => true,
    injected: (env) => env.gateway?.scripted ?? 0,
    violations: (env, seen) => [
      ...(seen.tokenRequests > seen.sent
        ? [`${seen.tokenRequests} token requests for ${seen.sent} requests`]
        : []),
      ...(seen.idleTokenRequests > 0 ? [`${seen.idleTokenRequests} token requests after the last wave`] : []),
      ...(env.seen.api.length > 0 ? [`${env.seen.api.length} API requests carried a refused token`] : []),
      ...refusedAnswers(seen, "InvalidTokenResponseError")
    ]
  },
  {
    id: "api echoes the token",
    description:
      "the API answers every request 400, 403 or 500 with the bearer token it was sent in the body (problem+json title, detail, instance and an extension; OAuth error JSON and WWW-Authenticate; a plain-text header dump; percent- and form-encoded in a link) (scripted API gateway)",
    setup: { apiGateway: true },
    beforeWave: (env, wave) => {
      if (wave !== 0 || !env.apiGateway) return
      env.apiGateway.script = (n, request) => echoToken(n, request)
    },
    mayFail: () => true,
    injected: (env) => env.apiGateway?.scripted ?? 0
  },
  downRow(
    "api",
    "api down",
    "the API answers 503 to every request: retries are spent, the 503 reaches the caller"
  )
]

/**
 * Rows of several identities on the WealthCare profile (run there only): no
 * token crosses from one identity to another, checked on the wire (see
 * `runner.ts`), and no identity's token reaches anything another produced.
 */
export const IDENTITY_ROWS: ReadonlyArray<FaultRow> = [
  {
    id: "two users",
    description:
      "two users' password grants of one client, their sources sharing one token store; requests alternate between them; every token revoked before wave 2 (both re-acquire at once): every bearer on the wire was issued to the sender's source, for the sender (JWT sub)",
    // 30-second tokens: with 1-second ones a refresh ahead can be in flight when every token is
    // revoked, and the token it brings (minted just before) is revoked already: its replay fails
    // and the 401 cooldown starts, which is the rule working, not the row's subject
    setup: { identities: { kind: "users", count: 2 }, tokenTtl: 30 },
    beforeWave: (env, wave) => {
      if (wave === 2) env.sandbox.revokeAll()
    },
    injected: (env) => apiStatus(env, 401)
  },
  {
    id: "two codes",
    description:
      "two authorization codes (PKCE; one client, one redirect URI, one user), one source each, sharing one token store; requests alternate; the 1-second tokens are renewed with each source's refresh token: every bearer on the wire was issued to the sender's source",
    setup: { identities: { kind: "codes", count: 2 } },
    // longer than the 1-second lifetime: later waves must renew, however fast the first ones ran
    // (with the tuning's 350 ms, a quick machine finished all three waves on the first tokens)
    pauseMs: 1_100,
    injected: (env) =>
      env.seen.token.filter((e) => e.grantType === "refresh_token" && e.status === 200).length
  }
]

/** The rows run again on the WealthCare profile (password grant, offline_access: refresh tokens). */
export const WEALTHCARE_ROWS: ReadonlyArray<FaultRow> = [
  ...[...ROWS, ...HARD_ROWS].filter((row) =>
    [
      "none",
      "token 503",
      "token slow",
      "token dropped",
      "api 401",
      "api dropped",
      "clock +5 min",
      "token down",
      "token echoes the request",
      "token redirects",
      "token 200 unusable in a header",
      "api echoes the token"
    ].includes(row.id)
  ),
  ...IDENTITY_ROWS
]

/** Undoes every fault of a row on a running environment. */
export const resetFaults = (env: Env): void => {
  env.setFaults({})
  env.die.off()
  if (env.gateway) env.gateway.script = undefined
  if (env.apiGateway) env.apiGateway.script = undefined
}
