/**
 * The token store from the environment: with `REDIS_URL`, a Redis store
 * shared by every instance of this server (one token, one refresh and one
 * token-request budget for all of them); without it, `undefined` (each
 * process keeps its own token in memory).
 *
 *   REDIS_URL               redis://user:password@host:6379 (rediss:// for TLS)
 *   TOKEN_ENCRYPTION_KEYS   comma-separated keys of 32 random bytes, base64
 *                           (`openssl rand -base64 32`); the first seals, all open
 *
 * Errors name the variable, never a key or the URL (it may hold a password).
 */
import { type RedisStore, redisStoreFromEnv, type StoreEvent } from "@authfetch/redis"

export const storeFromEnv = (
  env: NodeJS.ProcessEnv = process.env,
  log: (line: string) => void = console.warn
): RedisStore | undefined => redisStoreFromEnv({ env, onEvent: (event) => logEvent(event, log) })

/** What an operator needs to see: Redis gone and back, entries this instance cannot open. */
const logEvent = (event: StoreEvent, log: (line: string) => void) => {
  switch (event.type) {
    case "store_unavailable":
      return log(
        `token store: Redis unavailable (${event.reason} during ${event.operation}): serving tokens from memory`
      )
    case "store_recovered":
      return log(`token store: Redis is back after ${event.unavailableMillis} ms`)
    case "entry_unreadable":
      return log(
        "token store: a stored token was sealed with a key not in TOKEN_ENCRYPTION_KEYS; requesting a new one"
      )
    case "lock_lost":
      return log("token store: a token request outlived its Redis lock (token request timeout)")
  }
}
