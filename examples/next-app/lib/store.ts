/**
 * The token store every instance of the app shares, when `REDIS_URL` is set:
 * one token, one refresh and one token-request budget for the whole fleet
 * (`@authfetch/redis`). Node.js runtime only (Redis is a TCP connection the
 * Edge runtime cannot open).
 *
 *   REDIS_URL               redis://user:password@host:6379 (rediss:// for TLS)
 *   TOKEN_ENCRYPTION_KEYS   comma-separated keys of 32 random bytes, base64
 *                           (`openssl rand -base64 32`); the first seals, all open
 *
 * Errors name the variable, never a key or the URL (it may hold a password).
 *
 * The store is made where the token source is, never kept on `globalThis` or
 * made in `instrumentation.ts`: Next bundles each route with its own copy of
 * `effect` and `@authfetch/core`, and a store of one copy does not work with a
 * token source of another (`lib/wex.ts`).
 */
import { type RedisStore, redisStoreFromEnv } from "@authfetch/redis"

/** A new Redis store from `REDIS_URL` and `TOKEN_ENCRYPTION_KEYS`; throws `InvalidConfigError` naming the variable. */
const makeStore = (): RedisStore | undefined =>
  redisStoreFromEnv({
    onEvent: (event) => {
      if (event.type === "store_unavailable")
        console.warn(`token store: Redis unavailable (${event.reason}): serving tokens from memory`)
      if (event.type === "store_recovered")
        console.warn(`token store: Redis is back after ${event.unavailableMillis} ms`)
      if (event.type === "entry_unreadable")
        console.warn("token store: a stored token was sealed with a key not in TOKEN_ENCRYPTION_KEYS")
    }
  })

let store: RedisStore | undefined

/**
 * The `store` option of `tokenSource`: with `REDIS_URL`, a Redis store made
 * when the token source is (at the first request: never at `next build`, so
 * the build needs no key); without it, `undefined` (tokens in this process's
 * memory).
 */
export const storeFromEnv = () =>
  process.env.REDIS_URL
    ? {
        get layer() {
          store ??= makeStore()
          if (store === undefined) throw new Error("REDIS_URL was unset after start")
          return store.layer
        }
      }
    : undefined

/**
 * Called at server start (`instrumentation.ts`): with `REDIS_URL` set, checks
 * the store's configuration and, when it cannot work, prints why (the
 * variable, never a value) and exits. Next itself only logs a failing
 * `register()` and serves on, failing every request.
 */
export const checkStoreAtStart = (): void => {
  if (!process.env.REDIS_URL) return
  try {
    // Checked, not kept: a store that is never used opens no connection.
    void makeStore()?.close()
  } catch (error) {
    console.error(`next-app: ${error instanceof Error ? error.message : String(error)}`)
    process.exit(1)
  }
}
