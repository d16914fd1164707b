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
  type TokenSourceConfig
} from "@authfetch/core"
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
  readonly tokenRetry: NonNullable<TokenSourceConfig["retry"]>
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
    clientId: `reliability-${label.replace(/[^a-z0-9]+/gi, "-").toLowerCase()}`,
    clientSecret: `SECRET-${tag}:+ ü%/do-not-leak`,
    user: { username: "reliability-user", password: `PASSWORD-${tag} w%rd+ü` }
  }
}

/** Everything a run of one integration needs, on a running environment. */
export interface Harness {
  readonly env: Env
  readonly client: Client
  readonly capture: Capture
  readonly wire: Wire
  close(): Promise<void>
}

export const startHarness = async (options: {
  readonly profile: "wex" | "wealthcare"
  readonly integration: Integration
  readonly integrationNo: number
  readonly gateway: boolean
  readonly tuning: Tuning
  readonly label: string
}): Promise<Harness> => {
  const { profile, integration, tuning } = options
  const capture = new Capture(options.label)
  const credentials = makeCredentials(`${integration.name}-${profile}`)
  capture.secret(credentials.clientSecret, "client secret")
  const clientAuth = options.integrationNo % 2 === 1 ? "client_secret_basic" : "client_secret_post"
  const form = (value: string) => new URLSearchParams({ v: value }).toString().slice(2)
  capture.secret(
    Buffer.from(`${form(credentials.clientId)}:${form(credentials.clientSecret)}`).toString("base64"),
    "client secret (Basic)"
  )
  if (profile === "wealthcare") capture.secret(credentials.user.password, "password")

  const env = await startEnv({
    profile,
    tokenTtl: tuning.tokenTtl,
    clientId: credentials.clientId,
    clientSecret: credentials.clientSecret,
    user: credentials.user,
    gateway: options.gateway,
    onSandboxEvent: (event) => capture.event("sandbox event", event)
  })

  // The token requests' transport: records the Basic credentials as sent, and every token as it is issued.
  const recordingFetch: typeof globalThis.fetch = async (input, init) => {
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
          if (typeof body.access_token === "string") capture.token(body.access_token, "access token")
          if (typeof body.refresh_token === "string") capture.secret(body.refresh_token, "refresh token")
        } catch {
          // not a token answer
        }
      })
      .catch(() => {})
    return response
  }

  const tokenConfig: TokenSourceConfig = {
    tokenUrl: env.tokenUrl,
    clientId: credentials.clientId,
    clientSecret: credentials.clientSecret,
    clientAuth,
    ...(profile === "wealthcare"
      ? {
          grant: Grant.password({ username: credentials.user.username, password: credentials.user.password }),
          scope: ["bensoft_api", "mbi_api", "offline_access"]
        }
      : {}),
    retry: tuning.tokenRetry,
    timeout: `${tuning.tokenTimeoutMs} millis`,
    fetch: recordingFetch,
    onEvent: (event: TokenEvent) => capture.event("token event", event)
  }
  const wire = new Wire(capture)
  const client = await integration.make({
    tokenConfig,
    apiBaseUrl: env.apiBaseUrl,
    retry: tuning.retry,
    attemptTimeoutMs: tuning.attemptTimeoutMs,
    onRequestEvent: (event: RequestEvent) => capture.event("request event", event),
    wire,
    capture
  })
  return {
    env,
    client,
    capture,
    wire,
    close: async () => {
      await client.dispose()
      for (const token of env.gateway?.corruptedTokens ?? [])
        capture.token(token, "access token (corrupted answer)")
      await env.close()
    }
  }
}

/** Runs one wave through a harness and classifies each request. */
export const runWave = async (
  harness: Harness,
  row: FaultRow,
  wave: number
): Promise<{ counts: Counts; lostDetails: Array<string>; resentDetails: Array<string> }> => {
  const counts = emptyCounts()
  const lostDetails: Array<string> = []
  const resentDetails: Array<string> = []
  row.beforeWave?.(harness.env, wave)
  const batch = waveRequests(wave)
  // staggered rows: sent a moment apart, so that they reach the server in this order and a per-wave
  // budget hits the first ones; otherwise all at once
  const outcomes = await Promise.all(
    batch.map(({ request }, i) =>
      (row.staggered && i > 0 ? sleep(i * STAGGER_MS) : Promise.resolve()).then(() =>
        harness.client.send(request)
      )
    )
  )
  batch.forEach(({ kind, request }, i) => {
    const outcome = outcomes[i]!
    counts.sent++
    const attempts = harness.wire.attempts.get(request.id) ?? []
    counts.wire += attempts.length
    if (isOk(outcome)) {
      counts.ok++
    } else if (row.mayFail?.(kind, wave)) {
      counts.notRetried++
    } else {
      counts.lost++
      lostDetails.push(
        `wave ${wave} ${kind} ${request.method} ${request.path.split("?")[0]}: ${describe(outcome)}; wire attempts [${attempts.join(", ")}]`
      )
    }
    if (kind === "plain post" && resendIn(attempts)) {
      counts.resent++
      resentDetails.push(`wave ${wave} plain post: wire attempts [${attempts.join(", ")}]`)
    }
    harness.wire.attempts.delete(request.id)
  })
  counts.forwarded = harness.wire.forwardedBrowserCredentials
  harness.wire.forwardedBrowserCredentials = 0
  return { counts, lostDetails, resentDetails }
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
  const started = performance.now()
  const label = `${options.profile} · ${options.row.id} · ${options.integration.name}`
  const harness = await startHarness({
    profile: options.profile,
    integration: options.integration,
    integrationNo: options.integrationNo,
    gateway: options.row.gateway === true,
    tuning,
    label
  })
  const counts = emptyCounts()
  const lostDetails: Array<string> = []
  const resentDetails: Array<string> = []
  try {
    for (let wave = 0; wave < tuning.waves; wave++) {
      if (wave > 0) await sleep(tuning.pauseMs)
      const result = await runWave(harness, options.row, wave)
      addCounts(counts, result.counts)
      lostDetails.push(...result.lostDetails)
      resentDetails.push(...result.resentDetails)
    }
    counts.duplicated = harness.env.sandbox.stats().claims.duplicates
    counts.injected = options.row.injected?.(harness.env) ?? 0
    counts.tokenRequests = harness.env.gateway?.requests ?? harness.env.seen.token.length
  } finally {
    resetFaults(harness.env)
    await harness.close()
  }
  const capture = harness.capture
  const leaks = capture.scan()
  return {
    ...counts,
    profile: options.profile,
    row: options.row.id,
    integration: options.integration.name,
    durationMs: Math.round(performance.now() - started),
    lostDetails,
    resentDetails,
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
