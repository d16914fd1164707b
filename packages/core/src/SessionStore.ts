/**
 * Where signed-in users' sessions live: a small key-value store with expiry,
 * single-use reads and a lock, behind one interface so that a fleet can keep
 * sessions in Redis (`@authfetch/redis`) and a single process in memory (the
 * default).
 *
 * What it holds is plain JSON-able data (a session: the user's claims and
 * token set; a sign-in transaction: `state`, PKCE verifier, nonce), under keys
 * that are digests of the random values in the browser's cookies, never the
 * values themselves. A store shared by several processes seals what it holds
 * (tokens stay encrypted at rest); the memory store keeps the data as given.
 *
 * - `take` reads and deletes in one step: a sign-in transaction can complete
 *   once (a replayed callback finds nothing);
 * - `withLock` serialises the refreshes of one session, so that two requests
 *   (or two instances) never send the same refresh token twice, which a
 *   server that detects reuse answers by revoking the whole grant (RFC 9700
 *   section 4.14.2).
 *
 * The memory store is one per process (on `globalThis`), like the token
 * budget: Next.js bundles each route with its own copy of this module, and
 * the sign-in route, the proxy route and a server component must all see the
 * same sessions and the same locks.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { SessionStore } from "@authfetch/core"
 *
 * const program = Effect.gen(function* () {
 *   const store = yield* SessionStore.SessionStore
 *   yield* store.set("ss_abc", { hello: "world" }, { ttlMillis: 60_000 })
 *   return yield* store.get("ss_abc")
 * }).pipe(Effect.provide(SessionStore.layerMemory))
 * ```
 *
 * @since 0.2.0
 */
import { Clock, Context, Effect, Layer } from "effect"
import type { TokenStoreError } from "./Errors.ts"

/**
 * What a store holds under a key: plain JSON-able data.
 *
 * @since 0.2.0
 */
export type Entry = Readonly<Record<string, unknown>>

/**
 * Options of `set`.
 *
 * @since 0.2.0
 */
export interface SetOptions {
  /** how long the entry lives; it is gone (`get` finds nothing) after that */
  readonly ttlMillis: number
}

/**
 * Options of `withLock`.
 *
 * @since 0.2.0
 */
export interface LockOptions {
  /** how long a shared lock outlives a holder that stopped renewing it (the token-request timeout) */
  readonly ttlMillis: number
}

/**
 * @since 0.2.0
 */
export interface Shape {
  /** the live entry under `key`, if any */
  readonly get: (key: string) => Effect.Effect<Entry | undefined, TokenStoreError>
  /** writes (or replaces) the entry under `key` */
  readonly set: (key: string, entry: Entry, options: SetOptions) => Effect.Effect<void, TokenStoreError>
  readonly delete: (key: string) => Effect.Effect<void, TokenStoreError>
  /** the live entry under `key`, deleted in the same step: two takes never both find it */
  readonly take: (key: string) => Effect.Effect<Entry | undefined, TokenStoreError>
  /** runs `effect` while holding the lock of `key` (across processes for a shared store) */
  readonly withLock: <A, E, R>(
    key: string,
    effect: Effect.Effect<A, E, R>,
    options: LockOptions
  ) => Effect.Effect<A, E | TokenStoreError, R>
}

/**
 * The session store service.
 *
 * @example
 * ```ts
 * const store = yield* SessionStore.SessionStore
 * const session = yield* store.get(key)
 * ```
 *
 * @since 0.2.0
 */
export class SessionStore extends Context.Service<SessionStore, Shape>()("@authfetch/core/SessionStore") {}

/**
 * Options of the memory store.
 *
 * @since 0.2.0
 */
export interface MemoryOptions {
  /**
   * entries kept at most; past it the entries that expire first are dropped
   * (a flood of sign-in attempts cannot grow the process without bound).
   * Default 10,000.
   */
  readonly maxEntries?: number | undefined
}

/** Entries a memory store keeps by default. */
export const DEFAULT_MAX_ENTRIES = 10_000

interface MemoryState {
  readonly entries: Map<string, { readonly entry: Entry; readonly expiresAt: number }>
  /**
   * The lock of each key someone holds or waits for: the queue of waiters to wake, in order.
   * Plain functions, no Effect objects: copies of this module (one per Next.js bundle, each with
   * its own copy of `effect`) share the state.
   */
  readonly locks: Map<string, Array<() => void>>
  /** writes since the last sweep of expired entries */
  writes: number
}

/**
 * A memory store over its own state (`makeMemory` shares the process's).
 *
 * @example
 * ```ts
 * const isolated = SessionStore.makeMemoryIsolated({ maxEntries: 100 })
 * ```
 *
 * @since 0.2.0
 */
export const makeMemoryIsolated = (options?: MemoryOptions): Shape =>
  makeWith({ entries: new Map(), locks: new Map(), writes: 0 }, options)

const makeWith = (state: MemoryState, options?: MemoryOptions): Shape => {
  const maxEntries = Math.max(1, options?.maxEntries ?? DEFAULT_MAX_ENTRIES)
  const live = (key: string, now: number): Entry | undefined => {
    const found = state.entries.get(key)
    if (found === undefined) return undefined
    if (found.expiresAt <= now) {
      state.entries.delete(key)
      return undefined
    }
    return found.entry
  }
  // No timer: expired entries go when read, and in a sweep every so many writes.
  const sweep = (now: number) => {
    for (const [key, value] of state.entries) if (value.expiresAt <= now) state.entries.delete(key)
    if (state.entries.size <= maxEntries) return
    const byExpiry = [...state.entries].sort(([, a], [, b]) => a.expiresAt - b.expiresAt)
    for (const [key] of byExpiry.slice(0, state.entries.size - maxEntries)) state.entries.delete(key)
  }
  return SessionStore.of({
    get: (key) => Effect.map(Clock.currentTimeMillis, (now) => live(key, now)),
    set: (key, entry, { ttlMillis }) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        state.entries.delete(key) // re-inserted: insertion order stays close to expiry order
        state.entries.set(key, { entry, expiresAt: now + Math.max(0, ttlMillis) })
        if (++state.writes >= 100 || state.entries.size > maxEntries) {
          state.writes = 0
          sweep(now)
        }
      }),
    delete: (key) =>
      Effect.sync(() => {
        state.entries.delete(key)
      }),
    take: (key) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const found = live(key, now)
        state.entries.delete(key)
        return found
      }),
    withLock: (key, effect) => {
      const release = () => {
        const queue = state.locks.get(key)
        const next = queue?.shift()
        if (next === undefined) state.locks.delete(key)
        else next()
      }
      const acquire = Effect.callback<void>((resume) => {
        const queue = state.locks.get(key)
        if (queue === undefined) {
          state.locks.set(key, [])
          resume(Effect.void)
          return
        }
        let handed = false
        const wake = () => {
          handed = true
          resume(Effect.void)
        }
        queue.push(wake)
        return Effect.sync(() => {
          // A waiter that gives up leaves the queue; one given the lock as it gave up passes it on.
          if (handed) release()
          else {
            const at = queue.indexOf(wake)
            if (at !== -1) queue.splice(at, 1)
          }
        })
      })
      return Effect.uninterruptibleMask((restore) =>
        Effect.flatMap(restore(acquire), () => Effect.ensuring(restore(effect), Effect.sync(release)))
      )
    }
  })
}

const PROCESS_STORE = Symbol.for("@authfetch/core/SessionStore/memory")

/**
 * The process's memory store: one per process whichever copy of this module
 * asks (Next.js bundles each route separately), so that every route sees the
 * same sessions and locks. `maxEntries` is taken from the first caller.
 *
 * @example
 * ```ts
 * const store = SessionStore.makeMemory()
 * ```
 *
 * @since 0.2.0
 */
export const makeMemory = (options?: MemoryOptions): Shape => {
  const holder = globalThis as { [PROCESS_STORE]?: { state: MemoryState; options?: MemoryOptions } }
  holder[PROCESS_STORE] ??= {
    state: { entries: new Map(), locks: new Map(), writes: 0 },
    ...(options === undefined ? {} : { options })
  }
  return makeWith(holder[PROCESS_STORE].state, holder[PROCESS_STORE].options)
}

/**
 * The process's memory store as a layer (the default of `createUserSessions`).
 *
 * @example
 * ```ts
 * Effect.provide(program, SessionStore.layerMemory)
 * ```
 *
 * @since 0.2.0
 */
export const layerMemory: Layer.Layer<SessionStore> = Layer.sync(SessionStore, () => makeMemory())
