/**
 * Runs integrations against fault rows and counts what happened.
 *
 * A batch is a few waves of requests sent together (GETs, POSTs with an
 * `Idempotency-Key`, POSTs without one); a wave starts when the previous one
 * has settled, after the row's `beforeWave`. Each request is classified:
 *
 * - ok: a 2xx reached the caller;
 * - lost: not ok, and it should have succeeded (see `rows.ts`);
 * - not retried: not ok, and allowed to fail by design (a POST without a key
 *   meeting a 5xx, a drop or a timeout; the wave after a malformed token);
 * - duplicated: the sandbox's `claims.duplicates` (a claim body processed
 *   twice: every body is unique, so any duplicate is a POST sent again);
 * - resent: a POST without a key that went over the wire again after an
 *   attempt that was not a `401` or a `429` (the only answers that prove the
 *   first attempt was not processed), seen by the `Wire`.
 */
import { randomBytes, randomUUID } from "node:crypto"
import { setTimeout as sleep } from "node:timers/promises"
import {
  Grant,
  type RequestEvent,
  type RetryPolicy,
  type TokenEvent,
  type TokenSourceConfig,
  TokenStore
} from "@authfetch/core"
import { Effect, Layer } from "effect"
import { Capture, type Leak } from "./capture.ts"
import { type Env, startEnv } from "./env.ts"
import type { BatchRequest, Client, Integration, Outcome } from "./integrations.ts"
import { Wire } from "./integrations.ts"
import { type FaultRow, type RequestKind, resetFaults } from "./rows.ts"

export interface Tuning {
  readonly waves: number
  /** pause between waves (tokens age, refresh ahead runs) */
  readonly pauseMs: number
  /** sandbox token lifetime, seconds */
  readonly tokenTtl: number
  readonly tokenTimeoutMs: number
  readonly attemptTimeoutMs: number
  readonly retry: RetryPolicy.RequestRetryOptions
  readonly tokenRetry: NonNullable<TokenSourceConfig["tokenRequestRetry"]>
}

export const DEFAULT_TUNING: Tuning = {
  waves: 3,
  pauseMs: 350,
  tokenTtl: 1,
  // generous for a loaded 2-core machine: a spurious timeout of a POST without a key would count as lost
  tokenTimeoutMs: 1_000,
  attemptTimeoutMs: 3_000,
  retry: { maxRetries: 4, baseDelay: "5 millis", maxDelay: "50 millis", maxElapsed: "30 seconds" },
  tokenRetry: { maxRetries: 4, baseDelay: "5 millis", maxDelay: "50 millis", maxRetryAfter: "5 seconds" }
}

export interface Counts {
  sent: number
  ok: number
  lost: number
  notRetried: number
  duplicated: number
  resent: number
  injected: number
  /** token requests that reached the token endpoint (the gateway, when there is one) */
  tokenRequests: number
  /** attempts of the batch's requests seen on the wire */
  wire: number
  /** upstream requests that carried the browser's Cookie or Authorization (proxies; target 0) */
  forwarded: number
}

export const emptyCounts = (): Counts => ({
  sent: 0,
  ok: 0,
  lost: 0,
  notRetried: 0,
  duplicated: 0,
  resent: 0,
  injected: 0,
  tokenRequests: 0,
  wire: 0,
  forwarded: 0
})

export const addCounts = (into: Counts, from: Counts): Counts => {
  for (const key of Object.keys(into) as Array<keyof Counts>) into[key] += from[key]
  return into
}

export interface CellResult extends Counts {
  readonly profile: "wex" | "wealthcare"
  readonly row: string
  readonly integration: string
  readonly durationMs: number
  /** what each lost request came to, for the report */
  readonly lostDetails: Array<string>
  readonly resentDetails: Array<string>
  /** what the row (or the identities check) says went wrong beyond the counts; target none */
  readonly violations: Array<string>
  readonly leaks: Array<Leak>
  readonly scanned: {
    texts: number
    chars: number
    secrets: number
    events: number
    errors: number
    responses: number
    logLines: number
  }
  /** the secrets of this cell, for scanning what was printed outside it */
  readonly needles: ReadonlyMap<string, string>
}

/**
 * The kinds of one wave, in sending order. The order rotates so that the first
 * requests to arrive, those a per-wave fault budget hits, are POSTs without a
 * key in wave 1 and keyed POSTs in wave 2 (wave 0 waits for the first token,
 * which reorders it).
 */
const ORDERS: ReadonlyArray<ReadonlyArray<RequestKind>> = [
  ["get", "get", "get", "keyed post", "keyed post", "keyed post", "plain post", "plain post"],
  ["plain post", "plain post", "get", "get", "get", "keyed post", "keyed post", "keyed post"],
  ["keyed post", "keyed post", "keyed post", "plain post", "plain post", "get", "get", "get"]
]

let consumerNo = 10_000

/** between the requests of a wave, in sending order */
const STAGGER_MS = 3

/** One wave: 3 GETs, 3 POSTs with an Idempotency-Key, 2 POSTs without. Every body is unique. */
export const waveRequests = (wave = 0): Array<{ kind: RequestKind; request: BatchRequest }> =>
  ORDERS[wave % ORDERS.length]!.map((kind, i) => {
    const id = randomUUID()
    const headers: Record<string, string> = { accept: "application/json", "x-request-id": id }
    if (kind === "get") {
      const consumer = String(consumerNo++)
      const path = [
        `/v1/consumers/${consumer}`,
        "/v1/claims?page=1&pageSize=5",
        `/v1/consumers/${consumer}/accounts?page=1&pageSize=5`
      ][i % 3]!
      return { kind, request: { method: "GET", path, headers, id } }
    }
    headers["content-type"] = "application/json"
    if (kind === "keyed post") headers["idempotency-key"] = randomUUID()
    const body = JSON.stringify({
      consumerId: "12345",
      accountType: "HSA",
      amount: 10 + i,
      currency: "USD",
      memo: `reliability ${id}`
    })
    return { kind, request: { method: "POST", path: "/v1/claims", body, headers, id } }
  })

const describe = (outcome: Outcome): string =>
  outcome.kind === "response"
    ? `HTTP ${outcome.status}`
    : `${(outcome.error as Error)?.name ?? "error"}: ${String((outcome.error as Error)?.message ?? outcome.error).slice(0, 160)}`

const isOk = (outcome: Outcome) =>
  outcome.kind === "response" && outcome.status >= 200 && outcome.status < 300

/** A plain POST's attempts that prove a resend: an attempt after one that may have been processed. */
const resendIn = (attempts: ReadonlyArray<string>): boolean =>
  attempts.some((_, i) => i > 0 && attempts[i - 1] !== "401" && attempts[i - 1] !== "429")

/** The secrets of one run, recognisable, with characters whose encodings differ. */
export const makeCredentials = (label: string) => {
  const tag = randomBytes(6).toString("hex")
  return {
    tag,
    // unique per run: the process's token budget is per token URL and client id, and a later
    // sandbox may get an earlier one's port
    clientId: `reliability-${label.replace(/[^a-z0-9]+/gi, "-").toLowerCase()}-${tag}`,
    clientSecret: `SECRET-${tag}:+ ü%/do-not-leak`,
    user: { username: "reliability-user", password: `PASSWORD-${tag} w%rd+ü` },
    /**
     * a credential in `params` (RFC 7523 `client_assertion`, JWT-shaped): an
     * extra parameter the engine must treat as a secret
     */
    clientAssertion: [
      "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9",
      Buffer.from(JSON.stringify({ iss: `reliability-${tag}`, note: "ASSERTION do-not-leak" })).toString(
        "base64url"
      ),
      `ASSERTION-SIG-${tag}-${randomBytes(12).toString("base64url")}`
    ].join(".")
  }
}

/** The users of a cell whose identities are `users`: user `k`, each with a password of its own. */
const userOf = (tag: string, k: number) => ({
  username: `reliability-user-${k}`,
  password: `PASSWORD-${tag}-${k} w%rd+ü`
})

/** The `sub` claim of a JWT-shaped token (the sandbox's), if it has one. */
export const subjectOf = (token: string): string | undefined => {
  try {
    const payload = JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString("utf8")) as {
      sub?: unknown
    }
    return typeof payload.sub === "string" ? payload.sub : undefined
  } catch {
    return undefined
  }
}

/** The redirect URI of the authorization codes the harness obtains (registered by default). */
const REDIRECT_URI = "http://127.0.0.1/callback"

/**
 * An authorization code of the sandbox's authorization code flow (WealthCare),
 * with PKCE: what an application holds after its user signed in on the
 * sandbox's sign-in page and came back to its callback. The page's form is
 * driven as a browser would: the authorization request, then the form's
 * hidden `request` field posted back with the user's credentials.
 */
const obtainCode = async (
  authorizeUrl: string,
  clientId: string,
  user: { readonly username: string; readonly password: string }
): Promise<{ code: string; codeVerifier: string }> => {
  const codeVerifier = Grant.generateCodeVerifier()
  const url = new URL(authorizeUrl)
  url.search = new URLSearchParams({
    response_type: "code",
    client_id: clientId,
    redirect_uri: REDIRECT_URI,
    scope: "bensoft_api mbi_api offline_access",
    code_challenge: await Grant.codeChallengeS256(codeVerifier),
    code_challenge_method: "S256",
    state: randomUUID()
  }).toString()
  const page = await fetch(url, { redirect: "manual" })
  const request = /name="request" value="([^"]+)"/.exec(await page.text())?.[1]
  if (request === undefined)
    throw new Error(`the sandbox's authorization endpoint showed no sign-in form (HTTP ${page.status})`)
  const response = await fetch(url.origin + url.pathname, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      request,
      username: user.username,
      password: user.password,
      action: "approve"
    }).toString(),
    redirect: "manual"
  })
  const code = new URL(response.headers.get("location") ?? "http://invalid/").searchParams.get("code")
  if (code === null) throw new Error(`the sandbox's sign-in gave no code (HTTP ${response.status})`)
  return { code, codeVerifier }
}

/** One client of a cell: who it is, and every access token its token source was issued. */
export interface Identity {
  readonly label: string
  /** the user its tokens must be for (`sub`), when the identities are users */
  readonly subject?: string | undefined
  readonly issued: Set<string>
}

/** Everything a run of one integration needs, on a running environment. */
export interface Harness {
  readonly env: Env
  /** one client per identity (one by default); request `i` of a wave goes to client `i % length` */
  readonly clients: ReadonlyArray<Client>
  readonly identities: ReadonlyArray<Identity>
  readonly capture: Capture
  readonly wire: Wire
  /** every token and request event of the run */
  readonly tokenEvents: Array<TokenEvent>
  readonly requestEvents: Array<RequestEvent>
  close(): Promise<void>
}

export const startHarness = async (options: {
  readonly profile: "wex" | "wealthcare"
  readonly integration: Integration
  readonly integrationNo: number
  readonly gateway: boolean
  readonly tuning: Tuning
  readonly label: string
  readonly setup?: FaultRow["setup"] | undefined
}): Promise<Harness> => {
  const { profile, integration, tuning, setup } = options
  const identities = setup?.identities
  const capture = new Capture(options.label)
  const credentials = makeCredentials(`${integration.name}-${profile}`)
  const tag = credentials.tag
  capture.secret(credentials.clientSecret, "client secret")
  capture.token(credentials.clientAssertion, "client assertion")
  const clientAuth = options.integrationNo % 2 === 1 ? "client_secret_basic" : "client_secret_post"
  const form = (value: string) => new URLSearchParams({ v: value }).toString().slice(2)
  capture.secret(
    Buffer.from(`${form(credentials.clientId)}:${form(credentials.clientSecret)}`).toString("base64"),
    "client secret (Basic)"
  )
  const users =
    identities?.kind === "users"
      ? Array.from({ length: identities.count }, (_, k) => userOf(tag, k))
      : [credentials.user]
  if (profile === "wealthcare") for (const user of users) capture.secret(user.password, "password")

  const tokenEvents: Array<TokenEvent> = []
  const requestEvents: Array<RequestEvent> = []
  const env = await startEnv({
    profile,
    tokenTtl: setup?.tokenTtl ?? tuning.tokenTtl,
    clientId: credentials.clientId,
    clientSecret: credentials.clientSecret,
    users,
    gateway: options.gateway,
    apiGateway: setup?.apiGateway === true,
    onSandboxEvent: (event) => capture.event("sandbox event", event)
  })

  // The token requests' transport: records the Basic credentials as sent, and every token as it is issued.
  const recordingFetch =
    (issued: Set<string>): typeof globalThis.fetch =>
    async (input, init) => {
      const basic = new Headers(init?.headers ?? (input instanceof Request ? input.headers : undefined))
        .get("authorization")
        ?.match(/^Basic (.+)$/)?.[1]
      capture.secret(basic, "client secret (Basic, as sent)")
      const response = await globalThis.fetch(input, init)
      response
        .clone()
        .text()
        .then((text) => {
          try {
            const body = JSON.parse(text) as { access_token?: unknown; refresh_token?: unknown }
            if (typeof body.access_token === "string") {
              issued.add(body.access_token)
              capture.token(body.access_token, "access token")
            }
            if (typeof body.refresh_token === "string") capture.secret(body.refresh_token, "refresh token")
          } catch {
            // not a token answer
          }
        })
        .catch(() => {})
      return response
    }

  const base: TokenSourceConfig = {
    tokenUrl: env.tokenUrl,
    clientId: credentials.clientId,
    clientSecret: credentials.clientSecret,
    clientAuth,
    ...(profile === "wealthcare"
      ? {
          grant: Grant.password({ username: users[0]!.username, password: users[0]!.password }),
          scope: ["bensoft_api", "mbi_api", "offline_access"]
        }
      : {}),
    params: {
      client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
      client_assertion: credentials.clientAssertion
    },
    tokenRequestRetry: tuning.tokenRetry,
    tokenRequestTimeout: `${tuning.tokenTimeoutMs} millis`
  }

  // the configuration of each identity
  const configs: Array<{ config: TokenSourceConfig; identity: Identity }> = []
  const count = identities?.count ?? 1
  for (let k = 0; k < count; k++) {
    const issued = new Set<string>()
    const common = {
      fetch: recordingFetch(issued),
      onEvent: (event: TokenEvent) => {
        tokenEvents.push(event)
        capture.event("token event", event)
      }
    }
    if (identities?.kind === "users") {
      const user = users[k]!
      configs.push({
        config: { ...base, ...common, grant: Grant.password(user) },
        identity: { label: user.username, subject: user.username, issued }
      })
    } else if (identities?.kind === "codes") {
      const authorizeUrl = env.sandbox.authorizeUrl
      if (authorizeUrl === undefined) throw new Error("authorization codes need the WealthCare profile")
      const { code, codeVerifier } = await obtainCode(authorizeUrl, credentials.clientId, users[0]!)
      capture.secret(code, "authorization code")
      capture.secret(codeVerifier, "code verifier")
      configs.push({
        config: {
          ...base,
          ...common,
          grant: Grant.authorizationCode({ code, redirectUri: REDIRECT_URI, codeVerifier })
        },
        identity: { label: `code ${k}`, issued }
      })
    } else if (identities?.kind === "sources") {
      configs.push({
        config: {
          ...base,
          ...common,
          params: { ...base.params, partner_tenant: `tenant-${k}` },
          rateLimit: { limit: identities.rateLimit, window: "1 minute" }
        },
        identity: { label: `source ${k}`, issued }
      })
    } else {
      configs.push({ config: { ...base, ...common }, identity: { label: "client", issued } })
    }
  }
  // users and codes: one store for every source, as a fleet shares one (a shared cache key shares tokens)
  const tokenStore =
    identities?.kind === "users" || identities?.kind === "codes"
      ? Layer.succeed(TokenStore.TokenStore, Effect.runSync(TokenStore.makeMemory))
      : undefined

  const wire = new Wire(capture)
  const clients: Array<Client> = []
  try {
    for (const { config } of configs) {
      clients.push(
        await integration.make({
          tokenConfig: config,
          tokenStore,
          baseUrl: env.baseUrl,
          retry: tuning.retry,
          attemptTimeoutMs: tuning.attemptTimeoutMs,
          onRequestEvent: (event: RequestEvent) => {
            requestEvents.push(event)
            capture.event("request event", event)
          },
          wire,
          capture
        })
      )
    }
  } catch (error) {
    await Promise.all(clients.map((client) => client.dispose()))
    await env.close()
    throw error
  }
  return {
    env,
    clients,
    identities: configs.map(({ identity }) => identity),
    capture,
    wire,
    tokenEvents,
    requestEvents,
    close: async () => {
      await Promise.all(clients.map((client) => client.dispose()))
      for (const token of env.gateway?.corruptedTokens ?? [])
        capture.token(token, "access token (corrupted answer)")
      for (const token of env.gateway?.corruptedRefreshTokens ?? [])
        capture.secret(token, "refresh token (corrupted answer)")
      await env.close()
    }
  }
}

/** What one wave came to. */
export interface WaveResult {
  readonly counts: Counts
  readonly lostDetails: Array<string>
  readonly resentDetails: Array<string>
  /** every request that did not succeed: `wave kind path: outcome` */
  readonly failures: Array<string>
  /** the bearer tokens each request carried on the wire, and the identity that sent it */
  readonly bearers: Array<{ readonly identity: number; readonly request: string; readonly tokens: string[] }>
}

/** Runs one wave through a harness and classifies each request. */
export const runWave = async (harness: Harness, row: FaultRow, wave: number): Promise<WaveResult> => {
  const counts = emptyCounts()
  const lostDetails: Array<string> = []
  const resentDetails: Array<string> = []
  const failures: Array<string> = []
  const bearers: WaveResult["bearers"] = []
  row.beforeWave?.(harness.env, wave)
  const batch = waveRequests(wave).map(({ kind, request }, i) => {
    const path = row.pathOf?.(kind, i, wave)
    return { kind, request: path === undefined ? request : { ...request, path } }
  })
  const clients = harness.clients
  // staggered rows: sent a moment apart, so that they reach the server in this order and a per-wave
  // budget hits the first ones; otherwise all at once
  const outcomes = await Promise.all(
    batch.map(({ request }, i) =>
      (row.staggered && i > 0 ? sleep(i * STAGGER_MS) : Promise.resolve()).then(() =>
        clients[i % clients.length]!.send(request)
      )
    )
  )
  batch.forEach(({ kind, request }, i) => {
    const outcome = outcomes[i]!
    counts.sent++
    const attempts = harness.wire.attempts.get(request.id) ?? []
    counts.wire += attempts.length
    const where = `wave ${wave} ${kind} ${request.method} ${request.path.split("?")[0]}`
    if (isOk(outcome)) {
      counts.ok++
    } else {
      failures.push(`${where}: ${describe(outcome)}`)
      if (row.mayFail?.(kind, wave, request.path)) {
        counts.notRetried++
      } else {
        counts.lost++
        lostDetails.push(`${where}: ${describe(outcome)}; wire attempts [${attempts.join(", ")}]`)
      }
    }
    if (kind === "plain post" && resendIn(attempts)) {
      counts.resent++
      resentDetails.push(`wave ${wave} plain post: wire attempts [${attempts.join(", ")}]`)
    }
    bearers.push({
      identity: i % clients.length,
      request: where,
      tokens: harness.wire.bearers.get(request.id) ?? []
    })
    harness.wire.attempts.delete(request.id)
    harness.wire.bearers.delete(request.id)
  })
  counts.forwarded = harness.wire.forwardedBrowserCredentials
  harness.wire.forwardedBrowserCredentials = 0
  return { counts, lostDetails, resentDetails, failures, bearers }
}

/**
 * Tokens that crossed identities: a bearer a client sent that its own token
 * source was not issued, or (users) that was issued for another user.
 */
const crossings = (harness: Harness, uses: WaveResult["bearers"]): Array<string> => {
  if (harness.identities.length < 2) return []
  const out: Array<string> = []
  for (const { identity, request, tokens } of uses) {
    const own = harness.identities[identity]!
    for (const token of tokens) {
      const owner = harness.identities.findIndex((other) => other.issued.has(token))
      if (!own.issued.has(token)) {
        out.push(
          `${request} by ${own.label} carried a token issued to ${owner === -1 ? "no source of this cell" : harness.identities[owner]!.label}`
        )
      } else if (own.subject !== undefined && subjectOf(token) !== own.subject) {
        out.push(`${request} by ${own.label} carried a token for ${subjectOf(token) ?? "nobody"}`)
      }
    }
  }
  return out
}

/** One matrix cell: a fresh environment, one integration, one row, a few waves. */
export const runCell = async (options: {
  readonly profile: "wex" | "wealthcare"
  readonly row: FaultRow
  readonly integration: Integration
  readonly integrationNo: number
  readonly tuning?: Tuning
}): Promise<CellResult> => {
  const tuning = options.tuning ?? DEFAULT_TUNING
  const { row } = options
  const started = performance.now()
  const label = `${options.profile} · ${row.id} · ${options.integration.name}`
  const harness = await startHarness({
    profile: options.profile,
    integration: options.integration,
    integrationNo: options.integrationNo,
    gateway: row.gateway === true,
    tuning,
    label,
    setup: row.setup
  })
  const env = harness.env
  const tokenRequestsNow = () => env.gateway?.requests ?? env.seen.token.length
  const counts = emptyCounts()
  const lostDetails: Array<string> = []
  const resentDetails: Array<string> = []
  const failures: Array<string> = []
  const uses: WaveResult["bearers"] = []
  const tokenRequestsByWave: Array<number> = []
  let idleTokenRequests = 0
  let elapsedMs = 0
  const violations: Array<string> = []
  try {
    const wavesStarted = performance.now()
    for (let wave = 0; wave < tuning.waves; wave++) {
      if (wave > 0) await sleep(row.pauseMs ?? tuning.pauseMs)
      const before = tokenRequestsNow()
      const result = await runWave(harness, row, wave)
      tokenRequestsByWave.push(tokenRequestsNow() - before)
      addCounts(counts, result.counts)
      lostDetails.push(...result.lostDetails)
      resentDetails.push(...result.resentDetails)
      failures.push(...result.failures)
      uses.push(...result.bearers)
    }
    elapsedMs = performance.now() - wavesStarted
    if (row.setup?.idleAfterMs !== undefined) {
      const before = tokenRequestsNow()
      await sleep(row.setup.idleAfterMs)
      idleTokenRequests = tokenRequestsNow() - before
    }
    counts.duplicated = env.sandbox.stats().claims.duplicates
    counts.injected = row.injected?.(env) ?? 0
    counts.tokenRequests = tokenRequestsNow()
    violations.push(
      ...(row.violations?.(env, {
        tokenRequests: counts.tokenRequests,
        tokenRequestsByWave,
        idleTokenRequests,
        tokenEvents: harness.tokenEvents,
        requestEvents: harness.requestEvents,
        failures,
        sent: counts.sent,
        ok: counts.ok,
        elapsedMs
      }) ?? [])
    )
  } finally {
    resetFaults(env)
    await harness.close()
  }
  // after close: every token answer has been read, so each source's issued tokens are known
  violations.push(...crossings(harness, uses))
  const capture = harness.capture
  const leaks = capture.scan()
  return {
    ...counts,
    profile: options.profile,
    row: row.id,
    integration: options.integration.name,
    durationMs: Math.round(performance.now() - started),
    lostDetails,
    resentDetails,
    violations,
    leaks,
    scanned: {
      texts: capture.scannedTexts,
      chars: capture.scannedChars,
      secrets: capture.needles.size,
      ...capture.counts
    },
    needles: new Map(capture.needles)
  }
}

/** The count columns of the summary table and of the soak's progress, in order. */
export const COUNT_COLUMNS: ReadonlyArray<string> = [
  "sent",
  "ok",
  "lost",
  "dup",
  "resent",
  "not retried",
  "faults"
]

/** The cells under `COUNT_COLUMNS`. */
export const countCells = (counts: Counts): Array<string> => [
  String(counts.sent),
  String(counts.ok),
  String(counts.lost),
  String(counts.duplicated),
  String(counts.resent),
  String(counts.notRetried),
  String(counts.injected)
]

/** The summary table: integration × fault, sent / ok / lost / duplicated (and the rest). */
export const formatTable = (results: ReadonlyArray<CellResult>): string => {
  const header = ["profile", "fault", "integration", ...COUNT_COLUMNS, "tokens", "ms"]
  const rows = results.map((r) => [
    r.profile,
    r.row,
    r.integration,
    ...countCells(r),
    String(r.tokenRequests),
    String(r.durationMs)
  ])
  const total = results.reduce((sum, r) => addCounts(sum, r), emptyCounts())
  rows.push([
    "all",
    `${new Set(results.map((r) => `${r.profile} ${r.row}`)).size} faults`,
    `${new Set(results.map((r) => r.integration)).size} integrations`,
    ...countCells(total),
    String(total.tokenRequests),
    String(results.reduce((sum, r) => sum + r.durationMs, 0))
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)))
  const line = (cells: ReadonlyArray<string>) =>
    cells.map((cell, i) => (i < 3 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join("  ")
  return [
    line(header),
    widths.map((w) => "-".repeat(w)).join("  "),
    ...rows.slice(0, -1).map(line),
    widths.map((w) => "-".repeat(w)).join("  "),
    line(rows.at(-1)!)
  ].join("\n")
}
