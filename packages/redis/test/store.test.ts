/**
 * The Redis store's rules, one process and a real redis-server: several
 * `redisStore`s in one process stand for several instances (each has its own
 * connections, instance id and local memory). The fleet of OS processes is
 * `fleet.test.ts`.
 */
import { randomBytes } from "node:crypto"
import { inspect } from "node:util"
import {
  type AccessToken,
  createTokenSource,
  InvalidConfigError,
  RateLimitedError,
  type TokenEvent,
  type TokenSourceConfig
} from "@authfetch/core"
import { type Sandbox, startSandbox } from "@authfetch/sandbox"
import { createClient } from "@redis/client"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import { type RedisStore, redisStore, type StoreEvent } from "../src/index.ts"
import { type RedisServer, readmeAclUser, startRedis } from "./support/redisServer.ts"

const KEY = randomBytes(32).toString("base64")
const OTHER_KEY = randomBytes(32).toString("base64")

let redis: RedisServer
let sandbox: Sandbox
beforeAll(async () => {
  redis = await startRedis()
  sandbox = await startSandbox({ profile: "wex" })
})
afterAll(async () => {
  await sandbox?.close()
  await redis?.stop()
})

/** Every store and source a test opens, closed after it. */
const opened: Array<{ close(): Promise<void> }> = []
afterEach(async () => {
  for (const item of opened.splice(0).reverse()) await item.close()
  sandbox.setFaults({})
  sandbox.resetStats()
})

let prefixNo = 0
/** One "instance": its own store (connections, memory, id) on the test's prefix. */
const instance = (prefix: string, extra: Partial<Parameters<typeof redisStore>[0]> = {}) => {
  const events: Array<StoreEvent> = []
  const store = redisStore({
    url: redis.url,
    encryptionKeys: [KEY],
    prefix,
    onEvent: (event) => events.push(event),
    ...extra
  })
  opened.push(store)
  return { store, events, prefix }
}
const newPrefix = () => `t${++prefixNo}${randomBytes(3).toString("hex")}`

const wexConfig = (extra: Partial<TokenSourceConfig> = {}): TokenSourceConfig => ({
  tokenUrl: sandbox.tokenUrl,
  clientId: "sandbox-client",
  clientSecret: "sandbox-secret",
  ...extra
})

const sourceOf = (store: RedisStore, config: TokenSourceConfig) => {
  const tokens = createTokenSource(config, { store })
  opened.push({ close: () => tokens.dispose() })
  return tokens
}

const raw = () => rawOf(redis.url)
const rawOf = async (url: string) => {
  const client = createClient({ url })
  client.on("error", () => {})
  await client.connect()
  opened.push({ close: async () => void client.destroy() })
  return client
}

const eventually = async (check: () => boolean | Promise<boolean>, timeoutMillis = 15_000) => {
  const until = Date.now() + timeoutMillis
  while (!(await check())) {
    if (Date.now() > until) throw new Error("condition not met in time")
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

const tokenRequests = () => sandbox.stats().tokenRequests.total

describe("configuration", () => {
  it("refuses a store without a usable key, naming the problem and never a key", () => {
    const short = randomBytes(16).toString("base64")
    for (const encryptionKeys of [[], [short], ["not a key"], undefined]) {
      let error: unknown
      try {
        redisStore({ url: redis.url, encryptionKeys: encryptionKeys as never })
      } catch (caught) {
        error = caught
      }
      expect(error).toBeInstanceOf(InvalidConfigError)
      expect((error as InvalidConfigError).message).toMatch(/encryptionKeys/)
      expect((error as InvalidConfigError).message).not.toContain(short)
    }
    expect(() => redisStore({ url: redis.url, encryptionKeys: [KEY], commandTimeoutMillis: -1 })).toThrow(
      /commandTimeoutMillis/
    )
    expect(() => redisStore({ url: redis.url, encryptionKeys: [KEY], prefix: "has space" })).toThrow(/prefix/)
  })
})

describe("one token for the fleet", () => {
  it("a second instance gets the first one's token from Redis, without a token request", async () => {
    const prefix = newPrefix()
    const a = sourceOf(instance(prefix).store, wexConfig())
    const first = await a.getToken()
    const b = sourceOf(instance(prefix).store, wexConfig())
    const second = await b.getToken()
    expect(second.reveal()).toBe(first.reveal())
    expect(second.expiresAt).toBe(first.expiresAt)
    expect(tokenRequests()).toBe(1)
  })

  it("concurrent cold instances: one takes the lock and requests, the others wait and read", async () => {
    const prefix = newPrefix()
    sandbox.setFaults({ token: { latencyMs: 300 } })
    const instances = Array.from({ length: 5 }, () => instance(prefix))
    const sources = instances.map(({ store }) => sourceOf(store, wexConfig()))
    const tokens = await Promise.all(sources.flatMap((source) => [source.getToken(), source.getToken()]))
    expect(new Set(tokens.map((token) => token.reveal())).size).toBe(1)
    expect(tokenRequests()).toBe(1)
    expect(instances.flatMap(({ events }) => events).some((event) => event.type === "lock_waited")).toBe(true)
  })

  it("a token written by one instance reaches the others by message: they adopt it with no request", async () => {
    const prefix = newPrefix()
    const a = instance(prefix)
    const b = instance(prefix)
    const sa = sourceOf(a.store, wexConfig())
    const sb = sourceOf(b.store, wexConfig())
    const first = await sa.getToken()
    expect((await sb.getToken()).reveal()).toBe(first.reveal())
    // A's token is rejected (a 401): A invalidates it and acquires the next one.
    await sa.invalidate(first)
    const second = await sa.getToken()
    expect(second.reveal()).not.toBe(first.reveal())
    // B learns of it without asking: its synchronous peek serves the new token.
    await eventually(() => sb.peek()?.reveal() === second.reveal())
    expect(tokenRequests()).toBe(2)
    expect(b.events.some((event) => event.type === "token_received" && event.via === "message")).toBe(true)
  })

  it("compare-and-expire: a 401 seen late by one instance never expires another's newer token", async () => {
    const prefix = newPrefix()
    const sa = sourceOf(instance(prefix).store, wexConfig())
    const sb = sourceOf(instance(prefix).store, wexConfig())
    const first = await sa.getToken()
    const seenByB = await sb.getToken()
    await sa.invalidate(first)
    const second = await sa.getToken()
    // B's request with the old token comes back 401 only now.
    await sb.invalidate(seenByB)
    const next = await sb.getToken()
    expect(next.reveal()).toBe(second.reveal())
    expect(tokenRequests()).toBe(2)
    // and the entry in Redis is still the newer token, not invalidated
    const client = await raw()
    const keys = await client.keys(`${prefix}:*:token`)
    expect(keys).toHaveLength(1)
    expect(await client.hGet(keys[0] as string, "i")).toBeNull()
  })

  it("the entry expires with the token", async () => {
    const prefix = newPrefix()
    const token = await sourceOf(instance(prefix).store, wexConfig()).getToken()
    const client = await raw()
    const [key] = await client.keys(`${prefix}:*:token`)
    const ttl = await client.pTTL(key as string)
    expect(ttl).toBeGreaterThan(0)
    expect(ttl).toBeLessThanOrEqual(token.expiresAt - Date.now() + 1_000)
  })
})

describe("the lock", () => {
  it("a lock left by a dead holder frees itself at its expiry, and the waiter acquires", async () => {
    const prefix = newPrefix()
    const a = instance(prefix)
    const source = sourceOf(a.store, wexConfig({ tokenRequestTimeout: "3 seconds" }))
    // A holder that died: its lock stays until its expiry.
    const client = await raw()
    const lockKey = `${prefix}:{${source.key}}:lock`
    await client.set(lockKey, "dead-holder", { PX: 1_500 })
    const token = await source.getToken()
    expect(token.reveal()).toBeTruthy()
    expect(tokenRequests()).toBe(1)
    const waited = a.events.find((event) => event.type === "lock_waited")
    expect(waited).toBeDefined()
    expect(await client.get(lockKey)).toBeNull()
  })

  it("only its owner releases a lock", async () => {
    const prefix = newPrefix()
    const source = sourceOf(instance(prefix).store, wexConfig())
    await source.getToken()
    const client = await raw()
    const lockKey = `${prefix}:{${source.key}}:lock`
    // Someone else's lock (taken after ours was released) survives our next release.
    await client.set(lockKey, "someone-else", { PX: 60_000 })
    await source.invalidate((await source.getToken()) as AccessToken)
    const pending = source.getToken()
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(await client.get(lockKey)).toBe("someone-else")
    await client.del(lockKey)
    await client.publish(
      `${prefix}:changes`,
      JSON.stringify({ t: "released", k: source.key, o: "someone-else" })
    )
    await pending
  })
})

describe("one budget", () => {
  it("instances of one client share the token-request budget", async () => {
    const prefix = newPrefix()
    const config = wexConfig({ rateLimit: { limit: 3, window: "1 minute" } })
    const sources = [instance(prefix), instance(prefix)].map(({ store }) => sourceOf(store, config))
    let admitted = 0
    let refused = 0
    for (let round = 0; round < 4; round++) {
      for (const source of sources) {
        try {
          const token = await source.getToken({ maxWait: "5 seconds" })
          admitted++
          await source.invalidate(token)
        } catch (error) {
          expect(error).toBeInstanceOf(RateLimitedError)
          expect((error as RateLimitedError).source).toBe("client")
          refused++
        }
      }
    }
    expect(tokenRequests()).toBe(3)
    expect(refused).toBeGreaterThan(0)
    expect(admitted).toBeGreaterThanOrEqual(3)
  })
})

describe("at rest", () => {
  it("an entry sealed with a key this instance does not have is treated as absent", async () => {
    const prefix = newPrefix()
    await sourceOf(instance(prefix).store, wexConfig()).getToken()
    const stranger = instance(prefix, { encryptionKeys: [OTHER_KEY] })
    await sourceOf(stranger.store, wexConfig()).getToken()
    expect(tokenRequests()).toBe(2)
    expect(stranger.events.some((event) => event.type === "entry_unreadable")).toBe(true)
  })

  it("rotation: an instance with the new key first still opens entries sealed with the old one", async () => {
    const prefix = newPrefix()
    const old = await sourceOf(instance(prefix).store, wexConfig()).getToken()
    const rotated = instance(prefix, { encryptionKeys: [OTHER_KEY, KEY] })
    const token = await sourceOf(rotated.store, wexConfig()).getToken()
    expect(token.reveal()).toBe(old.reveal())
    expect(tokenRequests()).toBe(1)
  })

  it("keys and values hold digests and sealed entries, never the secret or the token", async () => {
    const prefix = newPrefix()
    const token = await sourceOf(instance(prefix).store, wexConfig()).getToken()
    const client = await raw()
    const dump: Array<string> = []
    for await (const keys of client.scanIterator({ MATCH: `${prefix}*` })) {
      for (const key of keys) {
        dump.push(key)
        const type = await client.type(key)
        if (type === "hash") dump.push(JSON.stringify(await client.hGetAll(key)))
        if (type === "string") dump.push(String(await client.get(key)))
        if (type === "zset") dump.push(JSON.stringify(await client.zRange(key, 0, -1)))
      }
    }
    const text = dump.join("\n")
    expect(text).toContain(":token")
    expect(text).not.toContain(token.reveal())
    expect(text).not.toContain("sandbox-secret")
    expect(text).not.toContain("sandbox-client")
  })

  it("nothing secret in the store's printed form or its events", async () => {
    const prefix = newPrefix()
    const a = instance(prefix)
    const events: Array<TokenEvent> = []
    const token = await sourceOf(a.store, wexConfig({ onEvent: (event) => events.push(event) })).getToken()
    const printed = [inspect(a.store, { depth: 5 }), JSON.stringify(a.events), inspect(a.events)].join("\n")
    expect(printed).not.toContain(token.reveal())
    expect(printed).not.toContain(KEY)
    expect(printed).not.toContain(Buffer.from(KEY, "base64").toString("hex"))
  })
})

describe("Redis down is not an outage", () => {
  it("Redis killed: tokens keep coming from the local fallback; after a restart the fleet is back on Redis", async () => {
    const own = await startRedis()
    opened.push({ close: () => own.stop() })
    const prefix = newPrefix()
    const a = instance(prefix, { url: own.url })
    const b = instance(prefix, { url: own.url })
    const sa = sourceOf(a.store, wexConfig())
    const sb = sourceOf(b.store, wexConfig())
    const first = await sa.getToken()
    await sb.getToken()
    await own.kill()
    // A 401 while Redis is down: A re-acquires on its own (local single flight).
    await sa.invalidate(first)
    const local = await sa.getToken()
    expect(local.reveal()).not.toBe(first.reveal())
    expect(a.events.some((event) => event.type === "store_unavailable")).toBe(true)
    expect(await a.store.isAvailable()).toBe(false)
    await own.restart()
    // Scripts were flushed with the restart: they are loaded again.
    await eventually(async () => (await a.store.isAvailable()) && (await b.store.isAvailable()))
    expect(a.events.some((event) => event.type === "store_recovered")).toBe(true)
    // Back on Redis: a new token written by A reaches B by message, no request of B's own.
    const before = tokenRequests()
    await sa.invalidate(local)
    const shared = await sa.getToken()
    await eventually(() => sb.peek()?.reveal() === shared.reveal())
    expect(tokenRequests()).toBe(before + 1)
  })

  it("a store whose Redis cannot be reached at all still serves tokens", async () => {
    const own = await startRedis()
    await own.kill()
    const down = instance(newPrefix(), { url: own.url, commandTimeoutMillis: 200 })
    const source = sourceOf(down.store, wexConfig())
    const token = await source.getToken()
    expect(token.reveal()).toBeTruthy()
    await source.invalidate(token)
    expect((await source.getToken()).reveal()).not.toBe(token.reveal())
    expect(down.events.filter((event) => event.type === "store_unavailable")).toHaveLength(1)
  })
})

describe("Redis paused", () => {
  it("a paused Redis costs a command timeout, not a hang: a 401 during the pause is served locally", async () => {
    const own = await startRedis()
    opened.push({ close: () => own.stop() })
    const a = instance(newPrefix(), { url: own.url, commandTimeoutMillis: 300 })
    const source = sourceOf(a.store, wexConfig())
    const first = await source.getToken()
    own.pause()
    try {
      await source.invalidate(first)
      const next = await source.getToken({ maxWait: "20 seconds" })
      expect(next.reveal()).not.toBe(first.reveal())
      expect(a.events.some((event) => event.type === "store_unavailable" && event.reason === "timeout")).toBe(
        true
      )
    } finally {
      own.resume()
    }
    await eventually(() => a.store.isAvailable())
    expect(a.events.some((event) => event.type === "store_recovered")).toBe(true)
  })

  it("a lock request that timed out in a pause and ran when Redis woke up is released by its owner", async () => {
    const own = await startRedis()
    opened.push({ close: () => own.stop() })
    await using shortLived = await startSandbox({ profile: "wex", tokenTtl: 4 })
    const a = instance(newPrefix(), { url: own.url, commandTimeoutMillis: 300 })
    const events: Array<TokenEvent> = []
    const source = sourceOf(
      a.store,
      wexConfig({ tokenUrl: shortLived.tokenUrl, onEvent: (event) => events.push(event) })
    )
    await source.getToken()
    // Refresh ahead (about 2.7 s in) starts with the lock: that request meets the pause.
    own.pause()
    try {
      await eventually(() =>
        events.some((event) => event.type === "token_acquired" && event.reason === "refresh_ahead")
      )
    } finally {
      own.resume()
    }
    const client = await rawOf(own.url)
    const lockKey = `${a.prefix}:{${source.key}}:lock`
    // Without its owner's release, the lock would stand for its expiry (10 s) and make the
    // fleet wait; it is gone within a few probe intervals.
    await eventually(async () => (await client.exists(lockKey)) === 0, 5_000)
    expect(a.events.some((event) => event.type === "store_unavailable" && event.operation === "lock")).toBe(
      true
    )
  })
})

describe("the documented Redis settings", () => {
  it("works as the README's ACL user (its keys, its channel, the commands listed) and nothing is refused", async () => {
    const client = await raw()
    const prefix = newPrefix()
    const url = await readmeAclUser(client, redis.url, prefix)
    const a = instance(prefix, { url })
    const b = instance(prefix, { url })
    const sa = sourceOf(a.store, wexConfig({ rateLimit: { limit: 50, window: "1 minute" } }))
    const sb = sourceOf(b.store, wexConfig({ rateLimit: { limit: 50, window: "1 minute" } }))
    const first = await sa.getToken()
    expect((await sb.getToken()).reveal()).toBe(first.reveal())
    await sa.invalidate(first)
    const second = await sa.getToken()
    await eventually(() => sb.peek()?.reveal() === second.reveal())
    expect(tokenRequests()).toBe(2)
    expect([...a.events, ...b.events].filter((event) => event.type === "store_unavailable")).toEqual([])
    expect(await a.store.isAvailable()).toBe(true)
  })
})

describe("a busy process is not a slow Redis", () => {
  it("a reply that arrived while the event loop was blocked past the deadline counts: no fallback", async () => {
    const prefix = newPrefix()
    const a = instance(prefix, { commandTimeoutMillis: 200 })
    expect(await a.store.isAvailable()).toBe(true)
    const source = sourceOf(a.store, wexConfig())
    await source.getToken()
    const token = source.peek() as AccessToken
    // A 401: the invalidation and the next acquisition go to Redis while this process is
    // blocked (a busy loop three times the deadline) right after sending.
    const invalidated = source.invalidate(token)
    const until = Date.now() + 600
    while (Date.now() < until) {
      // blocked, as by a burst of synchronous work
    }
    await invalidated
    await source.getToken()
    expect(a.events.filter((event) => event.type === "store_unavailable")).toEqual([])
  })
})
