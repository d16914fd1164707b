/**
 * Where tokens are kept between requests, and the lock that makes token
 * acquisition single-flight.
 *
 * The default store is process memory (WEX: "store tokens in memory, not in
 * persistent storage"). The interface is shaped for a store shared by many
 * instances (Redis, later): `withLock` spans the whole acquisition so that one
 * instance requests a token while the others wait and then read it, and
 * `invalidate` is a compare-and-expire on the token value so that a 401 seen
 * late never throws away a newer token written by another instance.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { TokenStore } from "@authfetch/core"
 *
 * const layer = TokenStore.layerMemory // the default
 * ```
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer, type Scope, Semaphore } from "effect"
import type { TokenStoreError } from "./Errors.ts"
import { type AccessToken, expire, sameToken } from "./Token.ts"

/**
 * @since 0.1.0
 */
export interface Shape {
  /** the stored token for a cache key, if any (fresh or not) */
  readonly get: (key: string) => Effect.Effect<AccessToken | undefined, TokenStoreError>
  readonly set: (key: string, token: AccessToken) => Effect.Effect<void, TokenStoreError>
  /**
   * Marks the stored token expired if, and only if, it is `token` (same value).
   * Keeps it (and its refresh token) in the store. Returns whether it did.
   */
  readonly invalidate: (
    key: string,
    token: AccessToken,
    now: number
  ) => Effect.Effect<boolean, TokenStoreError>
  /**
   * Runs `effect` while holding the acquisition lock of `key`. A lock shared
   * by several processes expires `ttlMillis` after its holder stops renewing
   * it (a holder that died releases it by expiry); a memory lock ignores it.
   */
  readonly withLock: <A, E, R>(
    key: string,
    effect: Effect.Effect<A, E, R>,
    options?: LockOptions
  ) => Effect.Effect<A, E | TokenStoreError, R>
  /**
   * Tells `onChange` of every token written or invalidated under `key` by
   * another instance (a shared store's notification), for as long as the
   * scope is open. A store only one process uses has nothing to tell and
   * leaves this out. `onChange` receives the stored token as it now is (an
   * invalidated one is expired).
   */
  readonly changes?: (
    key: string,
    onChange: (token: AccessToken) => Effect.Effect<void>
  ) => Effect.Effect<void, never, Scope.Scope>
}

/**
 * Options of `withLock`.
 *
 * @since 0.1.0
 */
export interface LockOptions {
  /** how long a shared lock outlives a holder that stopped renewing it (the token-request timeout) */
  readonly ttlMillis: number
}

/**
 * The token store service.
 *
 * @example
 * ```ts
 * const store = yield* TokenStore.TokenStore
 * const token = yield* store.get(key)
 * ```
 *
 * @since 0.1.0
 */
export class TokenStore extends Context.Service<TokenStore, Shape>()("@authfetch/core/TokenStore") {}

/**
 * A fresh in-memory store.
 *
 * @example
 * ```ts
 * const store = yield* TokenStore.makeMemory
 * ```
 *
 * @since 0.1.0
 */
export const makeMemory: Effect.Effect<Shape> = Effect.sync(() => {
  const tokens = new Map<string, AccessToken>()
  const locks = new Map<string, Semaphore.Semaphore>()
  const lockOf = (key: string): Semaphore.Semaphore => {
    let lock = locks.get(key)
    if (!lock) {
      lock = Semaphore.makeUnsafe(1)
      locks.set(key, lock)
    }
    return lock
  }
  return TokenStore.of({
    get: (key) => Effect.sync(() => tokens.get(key)),
    set: (key, token) =>
      Effect.sync(() => {
        tokens.set(key, token)
      }),
    invalidate: (key, token, now) =>
      Effect.sync(() => {
        const stored = tokens.get(key)
        if (!stored || !sameToken(stored, token)) return false
        tokens.set(key, expire(stored, now))
        return true
      }),
    withLock: (key, effect) => Semaphore.withPermit(lockOf(key), effect)
  })
})

/**
 * The in-memory store as a layer (the default of `createTokenSource`).
 *
 * @example
 * ```ts
 * Effect.provide(program, TokenStore.layerMemory)
 * ```
 *
 * @since 0.1.0
 */
export const layerMemory: Layer.Layer<TokenStore> = Layer.effect(TokenStore, makeMemory)
