/**
 * The client-side budget of token requests. Providers limit token requests
 * per client, not per configuration (WEX: 100 a minute per client, then
 * `429`), so the budget is keyed by token URL and client id (`budgetKey`) and
 * shared by every source of that client: three sources that differ only in
 * scope spend one budget.
 *
 * The rule is a sliding window: at most `limit` requests in any `window`
 * (a fixed window would allow twice the limit across its boundary). `take`
 * either admits a request now or says how long until one would be admitted,
 * without reserving anything, so a caller that cannot wait that long fails
 * fast and spends nothing.
 *
 * The memory budget is one per process (on `globalThis`, so two copies of this
 * module still share it), holds no timer (a process never stays alive for it)
 * and forgets clients idle for a window. A budget shared by a fleet of
 * processes implements the same service over a shared store.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { TokenBudget } from "@authfetch/core"
 *
 * const program = Effect.gen(function* () {
 *   const budget = yield* TokenBudget.TokenBudget
 *   const waitMillis = yield* budget.take("cl_...", { limit: 100, windowMillis: 60_000 })
 *   if (waitMillis > 0) console.log(`budget spent: next request in ${waitMillis} ms`)
 * }).pipe(Effect.provide(TokenBudget.layerMemory))
 * ```
 *
 * @since 0.1.0
 */
import { Clock, Context, Effect, Layer } from "effect"

/**
 * A limit: at most `limit` token requests in any `windowMillis`.
 *
 * @since 0.1.0
 */
export interface Limit {
  readonly limit: number
  readonly windowMillis: number
}

/**
 * @since 0.1.0
 */
export interface Shape {
  /**
   * Admits one token request for `key` now (returns 0 and counts it), or
   * returns the milliseconds until one would be admitted (and counts nothing).
   */
  readonly take: (key: string, limit: Limit) => Effect.Effect<number>
  /** milliseconds until `take` would admit a request for `key`; 0 if now */
  readonly waitFor: (key: string, limit: Limit) => Effect.Effect<number>
  /**
   * A request `take` admitted is over (answered, failed or abandoned): its
   * admission now counts from this moment. The server counted it when it
   * arrived, some time after the admission (a new connection, a TLS
   * handshake); the end of the exchange is never earlier than that, so the
   * window then never admits a request the server would count as one too many.
   */
  readonly settle: (key: string) => Effect.Effect<void>
}

/**
 * The token budget service.
 *
 * @example
 * ```ts
 * const budget = yield* TokenBudget.TokenBudget
 * ```
 *
 * @since 0.1.0
 */
export class TokenBudget extends Context.Service<TokenBudget, Shape>()("@authfetch/core/TokenBudget") {}

/** Clients remembered at most; the least recently used are forgotten first. */
const MAX_CLIENTS = 10_000

/** Admission times of one client, oldest first. */
type Log = Array<number>

/**
 * Drops admissions older than the window, and any in the future (a clock set
 * back, or a test clock beside the live one); returns how many remain.
 */
const prune = (log: Log, now: number, windowMillis: number): number => {
  while (log.length > 0 && (log[log.length - 1] as number) > now) log.pop()
  let drop = 0
  while (drop < log.length && (log[drop] as number) <= now - windowMillis) drop++
  if (drop > 0) log.splice(0, drop)
  return log.length
}

const waitOf = (log: Log, now: number, limit: Limit): number =>
  prune(log, now, limit.windowMillis) < limit.limit
    ? 0
    : (log[log.length - limit.limit] as number) + limit.windowMillis - now

/**
 * A budget over a map of admission logs (the memory budget's state).
 *
 * @example
 * ```ts
 * const budget = TokenBudget.makeWith(new Map())
 * ```
 *
 * @since 0.1.0
 */
export const makeWith = (logs: Map<string, Log>): Shape => {
  /** per client, the admission times of requests not yet settled, oldest first */
  const pending = new Map<string, Array<number>>()
  const logOf = (key: string): Log => {
    let log = logs.get(key)
    if (log === undefined) {
      if (logs.size >= MAX_CLIENTS) {
        const oldest = logs.keys().next()
        if (!oldest.done) logs.delete(oldest.value)
      }
      log = []
    } else {
      logs.delete(key) // re-inserted below: Map order is recency
    }
    logs.set(key, log)
    return log
  }
  return TokenBudget.of({
    take: (key, limit) =>
      Clock.clockWith((clock) =>
        Effect.sync(() => {
          const now = clock.currentTimeMillisUnsafe()
          const log = logOf(key)
          const wait = waitOf(log, now, limit)
          if (wait <= 0) {
            log.push(now)
            const open = pending.get(key)
            if (open === undefined) pending.set(key, [now])
            else open.push(now)
            return 0
          }
          return wait
        })
      ),
    waitFor: (key, limit) =>
      Clock.clockWith((clock) =>
        Effect.sync(() => {
          const log = logs.get(key)
          return log === undefined ? 0 : Math.max(0, waitOf(log, clock.currentTimeMillisUnsafe(), limit))
        })
      ),
    settle: (key) =>
      Clock.clockWith((clock) =>
        Effect.sync(() => {
          // Any open admission of the client will do: each settle moves one to the end of
          // one exchange, so once all are settled the log holds the exchanges' end times.
          const admittedAt = pending.get(key)?.shift()
          if (pending.get(key)?.length === 0) pending.delete(key)
          const log = logs.get(key)
          if (admittedAt === undefined || log === undefined) return
          const index = log.indexOf(admittedAt)
          if (index < 0) return
          log.splice(index, 1)
          const now = Math.max(clock.currentTimeMillisUnsafe(), admittedAt)
          let at = log.length
          while (at > 0 && (log[at - 1] as number) > now) at--
          log.splice(at, 0, now)
        })
      )
  })
}

const PROCESS_BUDGET = Symbol.for("@authfetch/core/TokenBudget/process")

/**
 * The process's memory budget: one for every token source in the process.
 *
 * @example
 * ```ts
 * const budget = TokenBudget.processBudget()
 * ```
 *
 * @since 0.1.0
 */
export const processBudget = (): Shape => {
  const holder = globalThis as { [PROCESS_BUDGET]?: Shape }
  holder[PROCESS_BUDGET] ??= makeWith(new Map())
  return holder[PROCESS_BUDGET]
}

/**
 * The process's memory budget as a layer (the default).
 *
 * @example
 * ```ts
 * Effect.provide(program, TokenBudget.layerMemory)
 * ```
 *
 * @since 0.1.0
 */
export const layerMemory: Layer.Layer<TokenBudget> = Layer.sync(TokenBudget, processBudget)

/**
 * A budget of its own (not the process's): for tests, and for programs that
 * want sources kept apart on purpose.
 *
 * @example
 * ```ts
 * Effect.provide(program, TokenBudget.layerIsolated)
 * ```
 *
 * @since 0.1.0
 */
export const layerIsolated: Layer.Layer<TokenBudget> = Layer.sync(TokenBudget, () => makeWith(new Map()))
