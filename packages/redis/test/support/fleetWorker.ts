/**
 * One instance of a fleet (`fleet.ts`), in its own OS process: its own
 * `redisStore`, `createTokenSource` and `authFetch`, driven over IPC.
 *
 * Started by `fork` with its configuration (`WorkerConfig`, JSON) as the only
 * argument. It says `{ type: "ready" }` once its store is built, streams every
 * store and token event as it happens (`{ type: "event" }`), and answers each
 * `Command` (`{ id, ...command }`) with `{ type: "reply", id, value }` or
 * `{ type: "reply", id, error }`. It exits when its parent goes away (the IPC
 * channel disconnects), so it never outlives the test.
 */
import { createHash } from "node:crypto"
import { monitorEventLoopDelay } from "node:perf_hooks"
import {
  type AccessToken,
  authFetch,
  createTokenSource,
  Grant,
  type TokenEvent,
  type TokenSourceConfig
} from "@authfetch/core"
import { redisStore, type StoreEvent } from "../../src/index.ts"
import { type CallStats, newCallStats } from "./callStats.ts"

export interface WorkerConfig {
  readonly redisUrl: string
  readonly encryptionKey: string
  readonly prefix: string
  readonly commandTimeoutMillis?: number
  readonly pollIntervalMillis?: number
  readonly tokenUrl: string
  readonly baseUrl: string
  readonly clientId: string
  readonly clientSecret: string
  readonly scope?: string
  /** the password grant instead of client credentials */
  readonly user?: { readonly username: string; readonly password: string }
  /** another client of the sandbox, for `warmup` only */
  readonly warmupClient?: { readonly clientId: string; readonly clientSecret: string }
  readonly tokenRequestTimeoutMillis?: number
  readonly attemptTimeoutMillis?: number
}

export type Command =
  /**
   * `count` concurrent calls as `warmupClient` (its own token, same store): this process's
   * code paths run once before a test's own calls, which then meet a warm process
   */
  | { readonly op: "warmup"; readonly count: number }
  /** `count` concurrent API calls; answers their `CallStats` */
  | { readonly op: "burst"; readonly count: number }
  /** starts `loops` loops of one call after another, `pauseMs` apart; answers at once */
  | { readonly op: "traffic"; readonly loops: number; readonly pauseMs: number }
  /** starts a loop of `getToken({ maxWait })` then `invalidate`; answers at once */
  | { readonly op: "churn"; readonly maxWaitMs: number }
  /** stops the loops; answers `{ calls: CallStats, churn: ChurnStats }` since they started */
  | { readonly op: "halt" }
  /** every access and refresh token value this instance received or sent (`Secrets`) */
  | { readonly op: "secrets" }
  /** whether the store runs on Redis (not on its local fallback) */
  | { readonly op: "available" }
  /** disposes the source, closes the store, exits */
  | { readonly op: "close" }

export type { CallStats }

export interface ChurnStats {
  admitted: number
  /** `RateLimitedError` with `source: "client"` */
  refused: number
  /** anything else, by error tag */
  errors: Record<string, number>
}

export interface Secrets {
  readonly accessTokens: ReadonlyArray<string>
  readonly refreshTokens: ReadonlyArray<string>
}

export type WorkerMessage =
  | { readonly type: "ready" }
  | { readonly type: "event"; readonly source: "store"; readonly event: StoreEvent }
  | { readonly type: "event"; readonly source: "token"; readonly event: TokenEvent }
  /** the first failure (call or churn) of a kind, as an example */
  | { readonly type: "failure"; readonly tag: string; readonly example: string }
  | { readonly type: "reply"; readonly id: number; readonly value?: unknown; readonly error?: string }

const fingerprint = (token: string): string => createHash("sha256").update(token).digest("hex").slice(0, 8)

const PATH = "/v1/consumers/12345"
const CALL_HEADER = "x-fleet-call"

const send = (message: WorkerMessage) => {
  if (process.connected) process.send?.(message)
}
// The parent is gone (finished, crashed, killed): so is this instance.
process.on("disconnect", () => process.exit(0))

const config = JSON.parse(process.argv[2] ?? "{}") as WorkerConfig

const seen = { access: new Set<string>(), refresh: new Set<string>() }
const remember = (token: AccessToken) => {
  seen.access.add(token.reveal())
  const refresh = token.revealRefreshToken()
  if (refresh !== undefined) seen.refresh.add(refresh)
}

const store = redisStore({
  url: config.redisUrl,
  encryptionKeys: [config.encryptionKey],
  prefix: config.prefix,
  commandTimeoutMillis: config.commandTimeoutMillis,
  pollIntervalMillis: config.pollIntervalMillis,
  onEvent: (event) => send({ type: "event", source: "store", event })
})
const sourceConfig: TokenSourceConfig = {
  tokenUrl: config.tokenUrl,
  clientId: config.clientId,
  clientSecret: config.clientSecret,
  scope: config.scope,
  grant: config.user === undefined ? undefined : Grant.password(config.user),
  tokenRequestTimeout: config.tokenRequestTimeoutMillis,
  onEvent: (event) => send({ type: "event", source: "token", event }),
  onTokenChange: remember
}
const tokens = createTokenSource(sourceConfig, { store })

// The calls in flight by id: the wire below learns from the call's header which call it sends.
const calls = new Map<string, { readonly started: number; sent?: number; readonly stats: CallStats }>()
let callNo = 0

/**
 * At most this many requests on the wire per process, like an HTTP agent's connection pool:
 * 8 × 500 sockets opened at once would overrun the sandbox (one process, in the test's own
 * process), whose resets are not what these tests are about. Calls still run concurrently:
 * they queue here after their token is in hand.
 */
const CONNECTIONS = 64
let onWire = 0
const queued: Array<() => void> = []
const connection = (): Promise<void> | undefined => {
  if (onWire < CONNECTIONS) {
    onWire++
    return undefined
  }
  return new Promise((resolve) => queued.push(resolve))
}
const release = () => {
  const next = queued.shift()
  if (next === undefined) onWire--
  else next()
}

const wire: typeof fetch = async (input, init) => {
  const headers = new Headers(init?.headers ?? (input instanceof Request ? input.headers : undefined))
  const call = calls.get(headers.get(CALL_HEADER) ?? "")
  const bearer = /^Bearer (.+)$/i.exec(headers.get("authorization") ?? "")?.[1]
  if (call !== undefined) {
    call.sent ??= Date.now()
    if (bearer !== undefined) {
      seen.access.add(bearer)
      const print = fingerprint(bearer)
      call.stats.firstUse[print] = Math.min(call.stats.firstUse[print] ?? Infinity, call.started)
    }
  }
  await connection()
  try {
    return await fetch(input, init)
  } finally {
    release()
  }
}
const api = authFetch(tokens, {
  baseUrl: config.baseUrl,
  fetch: wire,
  ...(config.attemptTimeoutMillis === undefined ? {} : { attemptTimeout: config.attemptTimeoutMillis })
})

/** An error's tag and reason (`TokenEndpointError:timeout`): what failures are counted by. */
const tagOf = (error: unknown): string => {
  if (typeof error !== "object" || error === null) return typeof error
  const { _tag, name, reason } = error as { _tag?: unknown; name?: unknown; reason?: unknown }
  return `${String(_tag ?? name ?? "unknown")}${typeof reason === "string" ? `:${reason}` : ""}`
}
/** Tags already reported: the first error of each goes to the parent, for a failing test's reader. */
const reported = new Set<string>()
const fail = (failures: Record<string, number>, error: unknown) => {
  const tag = typeof error === "string" ? error : tagOf(error)
  failures[tag] = (failures[tag] ?? 0) + 1
  if (reported.has(tag)) return
  reported.add(tag)
  // core's error messages carry no secrets (origin and path, codes, causes)
  send({ type: "failure", tag, example: String(error).slice(0, 300) })
}

const loopDelay = monitorEventLoopDelay({ resolution: 10 })
loopDelay.enable()
/** The event loop's longest delay since the last reading. */
const loopDelayMs = () => {
  const max = Math.round(loopDelay.max / 1e6)
  loopDelay.reset()
  return max
}

/** One API call; never rejects. */
const call = async (stats: CallStats): Promise<void> => {
  const id = String(++callNo)
  const record: { started: number; sent?: number; stats: CallStats } = { started: Date.now(), stats }
  calls.set(id, record)
  stats.calls++
  try {
    const response = await api(PATH, { headers: { [CALL_HEADER]: id } })
    await response.arrayBuffer()
    if (response.status === 200) stats.ok++
    else fail(stats.failures, `status_${response.status}`)
  } catch (error) {
    fail(stats.failures, error)
  } finally {
    calls.delete(id)
    const ended = Date.now()
    stats.maxLatencyMs = Math.max(stats.maxLatencyMs, ended - record.started)
    stats.maxTokenWaitMs = Math.max(stats.maxTokenWaitMs, (record.sent ?? ended) - record.started)
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** The loops started by `traffic` and `churn`, until `halt`. */
let running = false
let loops: Array<Promise<void>> = []
let callStats = newCallStats()
let churnStats: ChurnStats = { admitted: 0, refused: 0, errors: {} }

const churn = async (maxWaitMs: number) => {
  while (running) {
    try {
      const token = await tokens.getToken({ maxWait: maxWaitMs })
      churnStats.admitted++
      remember(token)
      await tokens.invalidate(token)
    } catch (error) {
      const limited = error as { _tag?: string; source?: string; retryAfterMillis?: number }
      if (limited._tag === "RateLimitedError" && limited.source === "client") {
        churnStats.refused++
        // Back soon, so that the window's boundary is met with callers at the door.
        await sleep(Math.min(limited.retryAfterMillis ?? 100, 250))
      } else {
        fail(churnStats.errors, error)
        await sleep(100)
      }
    }
  }
}

const run = async (command: Command): Promise<unknown> => {
  switch (command.op) {
    case "warmup": {
      const client = config.warmupClient
      if (client === undefined) throw new Error("no warmupClient configured")
      const warm = createTokenSource({ tokenUrl: config.tokenUrl, ...client }, { store })
      const warmApi = authFetch(warm, { baseUrl: config.baseUrl })
      await Promise.all(
        Array.from({ length: command.count }, () => warmApi(PATH).then((response) => response.arrayBuffer()))
      )
      await warm.dispose()
      return null
    }
    case "burst": {
      const stats = newCallStats()
      loopDelayMs()
      await Promise.all(Array.from({ length: command.count }, () => call(stats)))
      stats.maxLoopDelayMs = loopDelayMs()
      return stats
    }
    case "traffic": {
      running = true
      loopDelayMs()
      for (let i = 0; i < command.loops; i++) {
        loops.push(
          (async () => {
            while (running) {
              await call(callStats)
              await sleep(command.pauseMs)
            }
          })()
        )
      }
      return null
    }
    case "churn": {
      running = true
      loops.push(churn(command.maxWaitMs))
      return null
    }
    case "halt": {
      running = false
      await Promise.all(loops)
      callStats.maxLoopDelayMs = loopDelayMs()
      const result = { calls: callStats, churn: churnStats }
      loops = []
      callStats = newCallStats()
      churnStats = { admitted: 0, refused: 0, errors: {} }
      return result
    }
    case "secrets":
      return { accessTokens: [...seen.access], refreshTokens: [...seen.refresh] } satisfies Secrets
    case "available":
      return store.isAvailable()
    case "close":
      running = false
      await Promise.all(loops)
      await tokens.dispose()
      await store.close()
      setImmediate(() => process.exit(0))
      return null
  }
}

process.on("message", (message: { readonly id: number } & Command) => {
  run(message).then(
    (value) => send({ type: "reply", id: message.id, value }),
    (error: unknown) => send({ type: "reply", id: message.id, error: `${tagOf(error)}: ${String(error)}` })
  )
})

// The store connects at creation; one command through it before saying ready.
await store.isAvailable()
send({ type: "ready" })
