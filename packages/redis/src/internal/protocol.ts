/**
 * The store's protocol in Redis: key names, the Lua scripts that make each
 * step atomic, and the pub/sub message. Described for operators in
 * docs/ARCHITECTURE.md ("The Redis store's protocol"); change both together.
 *
 * Every key of one token (entry, lock) carries its cache key as a hash tag
 * (`{tk_...}`), every key of one user session (entry, lock) its session key
 * (`{ss_...}`, a sign-in transaction `{tx_...}`), and the budget its client
 * key (`{cl_...}`), so each script touches keys of one Redis Cluster slot.
 * Cache, session and client keys are digests: no key names a client, a
 * user, a session id, a secret or a token.
 */
import { Redis } from "effect/persistence"

/** The names under a prefix (default `authfetch`). */
export const keyNames = (prefix: string) => ({
  /** HASH `d` digest of the access token, `e` sealed entry, `r` receivedAt, `i` invalidated at */
  token: (cacheKey: string) => `${prefix}:{${cacheKey}}:token`,
  /** STRING: the owner of the acquisition lock (or a session's refresh lock), with an expiry */
  lock: (cacheKey: string) => `${prefix}:{${cacheKey}}:lock`,
  /** STRING: a user session or sign-in transaction, sealed, with an expiry (`PX`) */
  session: (sessionKey: string) => `${prefix}:{${sessionKey}}:session`,
  /** ZSET: admissions of the client's token requests in the window (score = Redis time) */
  budget: (clientKey: string) => `${prefix}:{${clientKey}}:budget`,
  /** ZSET: instances seen lately (score = Redis time of their last heartbeat) */
  instances: `${prefix}:{instances}`,
  /** pub/sub channel of `Message`s */
  channel: `${prefix}:changes`,
  /** pub/sub channel of the session store: `released` messages of session locks only */
  sessionChannel: `${prefix}:sessions`
})

/** What instances tell each other (JSON on the channel). Digests and sealed values only. */
export type Message =
  | {
      /** a token was written: the entry itself, so receivers need no round trip */
      readonly t: "set"
      readonly k: string
      readonly o: string
      readonly d: string
      readonly e: string
      readonly r: number
    }
  | {
      /** a token was marked expired (a 401) */
      readonly t: "invalidated"
      readonly k: string
      readonly o: string
      readonly d: string
      readonly i: number
    }
  | {
      /** a lock was released: waiters try again */
      readonly t: "released"
      readonly k: string
      readonly o: string
    }

/** Redis time in ms, for scripts that must agree across instances whatever their clocks. */
const NOW = `
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`

/**
 * Writes a token unless the stored one was received later (a slow holder
 * whose lock expired must not overwrite a newer token), sets the entry's
 * expiry, tells the fleet. Returns 1 when written.
 */
export const setToken = Redis.script(
  (
    key: string,
    digest: string,
    sealed: string,
    receivedAt: number,
    expireAt: number,
    channel: string,
    message: string
  ) => [key, digest, sealed, receivedAt, expireAt, channel, message],
  {
    numberOfKeys: 1,
    lua: `
local r = redis.call('HGET', KEYS[1], 'r')
if r and tonumber(r) > tonumber(ARGV[3]) then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'd', ARGV[1], 'e', ARGV[2], 'r', ARGV[3])
redis.call('PEXPIREAT', KEYS[1], ARGV[4])
redis.call('PUBLISH', ARGV[5], ARGV[6])
return 1
`
  }
).withReturnType<number>()

/**
 * Compare-and-expire: marks the entry invalidated only if it still holds the
 * token with this digest (a 401 seen late never expires a newer token).
 * Returns 1 when it did.
 */
export const invalidateToken = Redis.script(
  (key: string, digest: string, at: number, channel: string, message: string) => [
    key,
    digest,
    at,
    channel,
    message
  ],
  {
    numberOfKeys: 1,
    lua: `
if redis.call('HGET', KEYS[1], 'd') ~= ARGV[1] then return 0 end
if redis.call('HEXISTS', KEYS[1], 'i') == 1 then return 0 end
redis.call('HSET', KEYS[1], 'i', ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
`
  }
).withReturnType<number>()

/** Takes the lock for `owner` (returns 0), or returns the ms until it expires. */
export const takeLock = Redis.script(
  (key: string, owner: string, ttlMillis: number) => [key, owner, ttlMillis],
  {
    numberOfKeys: 1,
    lua: `
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 0 end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 1 then return 1 end
return ttl
`
  }
).withReturnType<number>()

/** Extends the lock if `owner` still holds it. Returns 1 when it did. */
export const renewLock = Redis.script(
  (key: string, owner: string, ttlMillis: number) => [key, owner, ttlMillis],
  {
    numberOfKeys: 1,
    lua: `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`
  }
).withReturnType<number>()

/** Releases the lock if `owner` holds it, and wakes the waiters. Returns 1 when it did. */
export const releaseLock = Redis.script(
  (key: string, owner: string, channel: string, message: string) => [key, owner, channel, message],
  {
    numberOfKeys: 1,
    lua: `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1
`
  }
).withReturnType<number>()

/**
 * The client's sliding window on Redis time: admits one request (returns 0,
 * and records it when `take` is 1) or returns the ms until one would be.
 */
export const takeBudget = Redis.script(
  (key: string, limit: number, windowMillis: number, member: string, take: 0 | 1) => [
    key,
    limit,
    windowMillis,
    member,
    take
  ],
  {
    numberOfKeys: 1,
    lua: `${NOW}
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
if count < limit then
  if ARGV[4] == '1' then
    redis.call('ZADD', KEYS[1], now, ARGV[3])
    redis.call('PEXPIRE', KEYS[1], window)
  end
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], count - limit, count - limit, 'WITHSCORES')
local wait = tonumber(oldest[2]) + window - now
if wait < 1 then return 1 end
return wait
`
  }
).withReturnType<number>()

/**
 * A request the budget admitted is over: its admission counts from now (Redis
 * time), never earlier than when the server may have counted it.
 */
export const settleBudget = Redis.script(
  (key: string, member: string, windowMillis: number) => [key, member, windowMillis],
  {
    numberOfKeys: 1,
    lua: `${NOW}
if redis.call('ZADD', KEYS[1], 'XX', 'CH', now, ARGV[1]) == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1
`
  }
).withReturnType<number>()

/** Records this instance as alive and returns how many were seen within `ttlMillis`. */
export const heartbeat = Redis.script(
  (key: string, instance: string, ttlMillis: number) => [key, instance, ttlMillis],
  {
    numberOfKeys: 1,
    lua: `${NOW}
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
return redis.call('ZCARD', KEYS[1])
`
  }
).withReturnType<number>()
