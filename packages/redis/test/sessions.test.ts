/**
 * The session store of signed-in users on a real redis-server: its rules
 * through core's `SessionStore` interface (round trip, expiry, single-use
 * take, the fleet's lock, sealing and rotation, Redis killed and paused), then
 * the whole sign-in against the WealthCare sandbox with two
 * `createUserSessions` handles as two instances of one app. Several
 * `redisStore`s in one process stand for several instances (each has its own
 * connections); OS processes are `sessionFleet.test.ts`.
 */
import { createHash, randomBytes } from "node:crypto"
import { inspect } from "node:util"
import {
  BffProxy,
  createUserSessions,
  InvalidConfigError,
  type SessionEvent,
  SessionStore,
  TokenStoreError,
  type UserSessionsConfig,
  type UserSessionsHandle
} from "@authfetch/core"
import { type Sandbox, startSandbox } from "@authfetch/sandbox"
import { createClient } from "@redis/client"
import { Effect, Layer } from "effect"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import { CookieJar } from "../../core/test/support/cookieJar.ts"
import {
  RedisClient,
  RedisSessionStore,
  type RedisStore,
  redisStore,
  redisStoreFromEnv,
  type StoreEvent
} from "../src/index.ts"
import { type RedisServer, readmeAclUser, startRedis } from "./support/redisServer.ts"

const KEY = randomBytes(32).toString("base64")
const OTHER_KEY = randomBytes(32).toString("base64")

let redis: RedisServer
beforeAll(async () => {
  redis = await startRedis()
})
afterAll(async () => {
  await redis?.stop()
})

/** What a test opens, closed after it in reverse order (handles before their stores). */
const opened: Array<{ close(): Promise<void> }> = []
afterEach(async () => {
  for (const item of opened.splice(0).reverse()) await item.close()
})

let prefixNo = 0
const newPrefix = () => `s${++prefixNo}${randomBytes(3).toString("hex")}`

/** One "instance": its own store (connections, instance id) on the test's prefix. */
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

/** Runs `f` on the store's session store, as core does (through `sessionLayer`). */
const on = <A, E>(store: RedisStore, f: (sessions: SessionStore.Shape) => Effect.Effect<A, E>) =>
  Effect.runPromise(Effect.flatMap(SessionStore.SessionStore, f).pipe(Effect.provide(store.sessionLayer)))

/** The failure of a promise (it must fail), and how long it took to settle. */
const failureOf = async (promise: Promise<unknown>) => {
  const started = Date.now()
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught
  )
  if (error === undefined) throw new Error("expected a failure")
  return { error, millis: Date.now() - started }
}

const rawOf = async (url: string) => {
  const client = createClient({ url })
  client.on("error", () => {})
  await client.connect()
  opened.push({ close: async () => void client.destroy() })
  return client
}
const raw = () => rawOf(redis.url)

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const eventually = async (check: () => boolean | Promise<boolean>, timeoutMillis = 15_000) => {
  const until = Date.now() + timeoutMillis
  while (!(await Promise.resolve(check()).catch(() => false))) {
    if (Date.now() > until) throw new Error("condition not met in time")
    await sleep(25)
  }
}

const sessionKey = () => `ss_${randomBytes(32).toString("base64url").slice(0, 43)}`
const entry = { v: 1, kind: "session", user: { email: "alice@example.com" }, tokens: { accessToken: "at-1" } }

describe("the session store", () => {
  it("round trip: set, get, replace, delete; one sealed string per key, hash-tagged, expiring", async () => {
    const { store, prefix } = instance(newPrefix())
    const key = sessionKey()
    expect(await on(store, (s) => s.get(key))).toBeUndefined()
    await on(store, (s) => s.set(key, entry, { ttlMillis: 60_000 }))
    expect(await on(store, (s) => s.get(key))).toEqual(entry)
    const replaced = { ...entry, tokens: { accessToken: "at-2" } }
    await on(store, (s) => s.set(key, replaced, { ttlMillis: 60_000 }))
    expect(await on(store, (s) => s.get(key))).toEqual(replaced)

    const client = await raw()
    const redisKey = `${prefix}:{${key}}:session`
    expect(await client.keys(`${prefix}:{ss_*`)).toEqual([redisKey])
    expect(await client.type(redisKey)).toBe("string")
    expect(await client.get(redisKey)).toMatch(/^v1\./)
    const ttl = await client.pTTL(redisKey)
    expect(ttl).toBeGreaterThan(50_000)
    expect(ttl).toBeLessThanOrEqual(60_000)

    await on(store, (s) => s.delete(key))
    expect(await on(store, (s) => s.get(key))).toBeUndefined()
    expect(await client.exists(redisKey)).toBe(0)
    // deleting what is not there is no error
    await on(store, (s) => s.delete(key))
  })

  it("an entry is gone at its expiry, and one that lives no time at once", async () => {
    const { store } = instance(newPrefix())
    const key = sessionKey()
    await on(store, (s) => s.set(key, entry, { ttlMillis: 400 }))
    expect(await on(store, (s) => s.get(key))).toEqual(entry)
    await eventually(async () => (await on(store, (s) => s.get(key))) === undefined, 10_000)
    await on(store, (s) => s.set(key, entry, { ttlMillis: 60_000 }))
    await on(store, (s) => s.set(key, entry, { ttlMillis: 0 }))
    expect(await on(store, (s) => s.get(key))).toBeUndefined()
    // an expired transaction is not taken either
    await on(store, (s) => s.set(key, entry, { ttlMillis: 300 }))
    await eventually(async () => (await on(store, (s) => s.get(key))) === undefined, 10_000)
    expect(await on(store, (s) => s.take(key))).toBeUndefined()
  })

  it("take is single use: 100 concurrent takes on two instances, exactly one finds the entry", async () => {
    const prefix = newPrefix()
    const a = instance(prefix)
    const b = instance(prefix)
    const key = `tx_${randomBytes(32).toString("base64url").slice(0, 43)}`
    const transaction = { v: 1, kind: "sign-in", codeVerifier: "verifier", nonce: "nonce" }
    await on(a.store, (s) => s.set(key, transaction, { ttlMillis: 60_000 }))
    const takes = (store: RedisStore) =>
      on(store, (s) =>
        Effect.all(
          Array.from({ length: 50 }, () => s.take(key)),
          { concurrency: "unbounded" }
        )
      )
    const found = (await Promise.all([takes(a.store), takes(b.store)])).flat()
    expect(found).toHaveLength(100)
    expect(found.filter((taken) => taken !== undefined)).toEqual([transaction])
    expect(await on(b.store, (s) => s.get(key))).toBeUndefined()
  })

  it("the lock serialises two instances, renewed while its holder works past its expiry", async () => {
    const prefix = newPrefix()
    const a = instance(prefix)
    const b = instance(prefix)
    const key = sessionKey()
    let inside = 0
    let most = 0
    let done = 0
    const critical = (millis: number) =>
      Effect.gen(function* () {
        inside++
        most = Math.max(most, inside)
        yield* Effect.sleep(millis)
        inside--
        done++
      })
    // The first holder works 2.5 times the lock's expiry (1 s): only renewal keeps the other out.
    const holder = on(a.store, (s) => s.withLock(key, critical(2_500), { ttlMillis: 1_000 }))
    await eventually(() => inside === 1)
    const contenders = (store: RedisStore) =>
      on(store, (s) =>
        Effect.all(
          Array.from({ length: 5 }, () => s.withLock(key, critical(20), { ttlMillis: 1_000 })),
          { concurrency: "unbounded" }
        )
      )
    await Promise.all([holder, contenders(a.store), contenders(b.store)])
    expect(done).toBe(11)
    expect(most).toBe(1)
    expect(b.events.some((event) => event.type === "lock_waited" && event.key === key)).toBe(true)
    // released by its last holder
    expect(await (await raw()).exists(`${prefix}:{${key}}:lock`)).toBe(0)
  })

  it("a lock left by a dead holder frees itself at its expiry; only its owner releases a lock", async () => {
    const { store, events, prefix } = instance(newPrefix())
    const key = sessionKey()
    const client = await raw()
    const lockKey = `${prefix}:{${key}}:lock`
    await client.set(lockKey, "dead-holder", { PX: 1_200 })
    const owner = await on(store, (s) =>
      s.withLock(
        key,
        Effect.promise(() => client.get(lockKey)),
        { ttlMillis: 5_000 }
      )
    )
    expect(owner).not.toBe("dead-holder")
    expect(owner).toBeTruthy()
    expect(events.some((event) => event.type === "lock_waited" && event.key === key)).toBe(true)

    // The lock is taken from under a holder (it outlived its expiry and another instance took
    // it): the holder sees the loss at its next renewal and its release leaves the other's lock.
    await on(store, (s) =>
      s.withLock(
        key,
        Effect.gen(function* () {
          yield* Effect.promise(() => client.set(lockKey, "someone-else", { PX: 60_000 }))
          yield* Effect.sleep(800)
        }),
        { ttlMillis: 1_000 }
      )
    )
    expect(await client.get(lockKey)).toBe("someone-else")
    expect(events.some((event) => event.type === "lock_lost" && event.key === key)).toBe(true)
  })

  it("rotation: an instance with the new key first opens entries sealed with the old one", async () => {
    const prefix = newPrefix()
    const old = instance(prefix)
    const rotated = instance(prefix, { encryptionKeys: [OTHER_KEY, KEY] })
    const key = sessionKey()
    await on(old.store, (s) => s.set(key, entry, { ttlMillis: 60_000 }))
    expect(await on(rotated.store, (s) => s.get(key))).toEqual(entry)
    // what the rotated instance writes is sealed with the new key: the old instance cannot open it
    const next = sessionKey()
    await on(rotated.store, (s) => s.set(next, entry, { ttlMillis: 60_000 }))
    expect(await on(old.store, (s) => s.get(next))).toBeUndefined()
    expect(old.events).toContainEqual(expect.objectContaining({ type: "entry_unreadable", key: next }))
    expect(rotated.events.filter((event) => event.type === "entry_unreadable")).toEqual([])
  })

  it("an entry sealed with an unknown key, damaged, or moved to another key is absent, with an event", async () => {
    const prefix = newPrefix()
    const { store, events } = instance(prefix)
    const stranger = instance(prefix, { encryptionKeys: [OTHER_KEY] })
    const client = await raw()
    const [foreign, damaged, moved, source] = [sessionKey(), sessionKey(), sessionKey(), sessionKey()]
    await on(stranger.store, (s) => s.set(foreign, entry, { ttlMillis: 60_000 }))
    await on(store, (s) => s.set(source, entry, { ttlMillis: 60_000 }))
    const sealed = (await client.get(`${prefix}:{${source}}:session`)) as string
    await client.set(`${prefix}:{${moved}}:session`, sealed)
    await client.set(`${prefix}:{${damaged}}:session`, `${sealed.slice(0, -6)}AAAAAA`)
    for (const key of [foreign, damaged, moved]) {
      expect(await on(store, (s) => s.get(key))).toBeUndefined()
      expect(events).toContainEqual(expect.objectContaining({ type: "entry_unreadable", key }))
    }
    // a take of an unreadable entry finds nothing, and it is gone
    expect(await on(store, (s) => s.take(moved))).toBeUndefined()
    expect(await client.exists(`${prefix}:{${moved}}:session`)).toBe(0)
    expect(await on(store, (s) => s.get(source))).toEqual(entry)
  })

  it("RedisSessionStore.layer for Effect programs: the same entries as redisStore's, refuses bad options", async () => {
    const prefix = newPrefix()
    const { store } = instance(prefix)
    const key = sessionKey()
    await on(store, (s) => s.set(key, entry, { ttlMillis: 60_000 }))
    const Live = RedisSessionStore.layer({ encryptionKeys: [KEY], prefix }).pipe(
      Layer.provide(RedisClient.layer({ url: redis.url }))
    )
    const read = Effect.gen(function* () {
      const sessions = yield* SessionStore.SessionStore
      const found = yield* sessions.get(key)
      yield* sessions.set(key, { ...entry, seen: true }, { ttlMillis: 60_000 })
      return found
    })
    expect(await Effect.runPromise(read.pipe(Effect.provide(Live)))).toEqual(entry)
    expect(await on(store, (s) => s.get(key))).toEqual({ ...entry, seen: true })

    const refused = await failureOf(
      Effect.runPromise(
        read.pipe(
          Effect.provide(
            RedisSessionStore.layer({ encryptionKeys: ["short"], commandTimeoutMillis: 0 }).pipe(
              Layer.provide(RedisClient.layer({ url: redis.url }))
            )
          )
        )
      )
    )
    expect(refused.error).toBeInstanceOf(InvalidConfigError)
    expect((refused.error as InvalidConfigError).message).toMatch(/encryptionKeys\[0\]/)
    expect((refused.error as InvalidConfigError).message).toMatch(/commandTimeoutMillis/)
    expect((refused.error as InvalidConfigError).message).not.toContain("short")
  })

  it("works as the README's ACL user (its keys, its channels, the commands listed)", async () => {
    const client = await raw()
    const prefix = newPrefix()
    const url = await readmeAclUser(client, redis.url, prefix)
    const a = instance(prefix, { url })
    const b = instance(prefix, { url })
    const key = sessionKey()
    await on(a.store, (s) => s.set(key, entry, { ttlMillis: 60_000 }))
    expect(await on(b.store, (s) => s.get(key))).toEqual(entry)
    const locked = (store: RedisStore) =>
      on(store, (s) => s.withLock(key, Effect.sleep(100), { ttlMillis: 2_000 }))
    await Promise.all([locked(a.store), locked(b.store), locked(a.store), locked(b.store)])
    expect(await on(b.store, (s) => s.take(key))).toEqual(entry)
    await on(a.store, (s) => s.delete(key))
    expect([...a.events, ...b.events].filter((event) => event.type === "session_store_failed")).toEqual([])
  })

  it("redisStoreFromEnv's store has the session layer too", async () => {
    const prefix = newPrefix()
    const store = redisStoreFromEnv({
      env: { REDIS_URL: redis.url, TOKEN_ENCRYPTION_KEYS: `${OTHER_KEY},${KEY}` },
      prefix
    })
    expect(store).toBeDefined()
    opened.push(store as RedisStore)
    const key = sessionKey()
    await on(instance(prefix).store, (s) => s.set(key, entry, { ttlMillis: 60_000 }))
    expect(await on(store as RedisStore, (s) => s.get(key))).toEqual(entry)
    expect(redisStoreFromEnv({ env: {} })).toBeUndefined()
  })
})

describe("Redis failing: no fallback for sessions, a TokenStoreError within the command deadline", () => {
  const operations = (
    key: string
  ): Record<string, (s: SessionStore.Shape) => Effect.Effect<unknown, TokenStoreError>> => ({
    get: (s) => s.get(key),
    set: (s) => s.set(key, entry, { ttlMillis: 60_000 }),
    delete: (s) => s.delete(key),
    take: (s) => s.take(key),
    lock: (s) => s.withLock(key, Effect.succeed("ran"), { ttlMillis: 5_000 })
  })

  it("Redis killed: every operation fails at once, naming itself, never quoting Redis; back after a restart", async () => {
    const own = await startRedis()
    opened.push({ close: () => own.stop() })
    const { store, events } = instance(newPrefix(), { url: own.url })
    const key = sessionKey()
    await on(store, (s) => s.set(key, entry, { ttlMillis: 60_000 }))
    await own.kill()
    for (const [operation, run] of Object.entries(operations(key))) {
      const { error, millis } = await failureOf(on(store, run))
      expect(error).toBeInstanceOf(TokenStoreError)
      expect((error as TokenStoreError).operation).toBe(operation)
      expect((error as TokenStoreError).detail).toMatch(/^Redis /)
      expect(String(error)).not.toContain(key)
      // a client that knows it is offline fails at once; wide margin for a busy machine
      expect(millis).toBeLessThan(5_000)
    }
    expect(events.filter((event) => event.type === "session_store_failed").map((e) => e.operation)).toEqual([
      "get",
      "set",
      "delete",
      "take",
      "lock"
    ])
    await own.restart()
    // the entry went with Redis (no persistence); the store works again once reconnected
    await eventually(async () => {
      await on(store, (s) => s.set(key, entry, { ttlMillis: 60_000 }))
      return true
    })
    expect(await on(store, (s) => s.get(key))).toEqual(entry)
  })

  it("Redis paused (SIGSTOP): each operation fails within its deadline instead of hanging; back when it answers", async () => {
    const own = await startRedis()
    opened.push({ close: () => own.stop() })
    const { store, events, prefix } = instance(newPrefix(), { url: own.url, commandTimeoutMillis: 300 })
    const key = sessionKey()
    await on(store, (s) => s.set(key, entry, { ttlMillis: 60_000 }))
    own.pause()
    try {
      for (const [operation, run] of Object.entries(operations(key))) {
        const { error, millis } = await failureOf(on(store, run))
        expect(error).toBeInstanceOf(TokenStoreError)
        expect((error as TokenStoreError).operation).toBe(operation)
        expect((error as TokenStoreError).detail).toBe("Redis did not answer within 300 ms")
        // the client's own backstop would take 10.3 s: this is the store's deadline
        expect(millis).toBeLessThan(5_000)
      }
    } finally {
      own.resume()
    }
    expect(
      events.filter((event) => event.type === "session_store_failed" && event.reason === "timeout")
    ).toHaveLength(5)
    // Redis ran what it had received (the delete and take of the pause among them): the store
    // answers again, and writes.
    await eventually(async () => {
      await on(store, (s) => s.set(key, entry, { ttlMillis: 60_000 }))
      return true
    })
    expect(await on(store, (s) => s.get(key))).toEqual(entry)
    // the lock request that timed out ran when Redis woke up: its owner released it since
    const client = await rawOf(own.url)
    await eventually(async () => (await client.exists(`${prefix}:{${key}}:lock`)) === 0, 10_000)
    expect(await on(store, (s) => s.withLock(key, Effect.succeed("ran"), { ttlMillis: 5_000 }))).toBe("ran")
  })
})

// --- the whole sign-in: two instances of one app on one Redis, against the sandbox -------------

const USER = {
  username: "alice",
  password: "alice-password",
  name: "Alice Fleetwood",
  email: "alice.fleetwood@example.com"
}
const CLIENT = { clientId: "fleet-web", clientSecret: "fleet-web-secret-value" }

/** What the token endpoint answered (the test's view: tokens to look for where they must not be). */
interface Issued {
  readonly accessTokens: Set<string>
  readonly refreshTokens: Set<string>
  readonly idTokens: Set<string>
}

const app = async (tokenTtl = 3_600) => {
  const sandbox = await startSandbox({
    profile: "wealthcare",
    autoApprove: true,
    tokenTtl,
    users: [USER],
    clients: [{ ...CLIENT, redirectUris: ["http://127.0.0.1/callback"] }]
  })
  opened.push(sandbox)
  const issued: Issued = { accessTokens: new Set(), refreshTokens: new Set(), idTokens: new Set() }
  /** records what the token endpoint issues, for the scans */
  const recording: typeof fetch = async (input, init) => {
    const response = await fetch(input, init)
    const url = input instanceof Request ? input.url : String(input)
    if (url.startsWith(`${sandbox.url}/connect/token`) && response.ok) {
      const body = (await response.clone().json()) as Record<string, string>
      if (body.access_token) issued.accessTokens.add(body.access_token)
      if (body.refresh_token) issued.refreshTokens.add(body.refresh_token)
      if (body.id_token) issued.idTokens.add(body.id_token)
    }
    return response
  }
  const config: UserSessionsConfig = {
    issuer: sandbox.issuer as string,
    ...CLIENT,
    scope: "openid profile email offline_access bensoft_api",
    redirectUri: "http://127.0.0.1:3000/callback",
    fetch: recording
  }
  const prefix = newPrefix()
  /** one instance of the app: its own Redis store and sessions */
  const start = (events: Array<SessionEvent> = []) => {
    const node = instance(prefix)
    const sessions = createUserSessions(
      { ...config, onEvent: (event) => events.push(event) },
      { store: node.store }
    )
    opened.push({ close: () => sessions.dispose() })
    return { ...node, sessions, sessionEvents: events }
  }
  /** a browser signs in through `sessions` (the sandbox approves at once) */
  const signIn = async (sessions: UserSessionsHandle) => {
    const jar = new CookieJar()
    const started = await sessions.startSignIn({ cookie: jar.header(), returnTo: "/claims" })
    jar.take(started.cookies)
    const authorization = new URL(started.location)
    const answer = await fetch(started.location, { redirect: "manual" })
    const back = new URL(answer.headers.get("location") ?? "")
    const done = await sessions.completeSignIn({ query: back.searchParams, cookie: jar.header() })
    jar.take(done.cookies)
    return {
      jar,
      done,
      secrets: [
        ...jar.cookies.values(),
        ...started.cookies.map((cookie) => cookie.split(";")[0]?.split("=")[1] ?? ""),
        authorization.searchParams.get("state") ?? "",
        authorization.searchParams.get("nonce") ?? "",
        authorization.searchParams.get("code_challenge") ?? "",
        back.searchParams.get("code") ?? ""
      ]
    }
  }
  return { sandbox, config, prefix, issued, start, signIn }
}

const refreshRequests = (sandbox: Sandbox) => sandbox.stats().tokenRequests.byGrant.refresh_token ?? 0

describe("createUserSessions on Redis: two instances of one app", () => {
  it("signed in through A, seen by B, refreshed by B (A uses B's token), signed out through A, gone for B", async () => {
    const { sandbox, start, signIn } = await app(3)
    const a = start()
    const b = start()
    const { jar, done } = await signIn(a.sessions)
    expect(done.location).toBe("/claims")
    const cookie = jar.header()

    const seenByB = await b.sessions.session(cookie)
    expect(seenByB?.subject).toBe("alice")
    expect(seenByB?.user).toMatchObject({ email: USER.email, name: USER.name })
    expect(seenByB?.key).toBe(done.session.key)
    const first = await seenByB!.tokens.getToken()
    expect(refreshRequests(sandbox)).toBe(0)

    // The access token expires (3 s); B refreshes it with the session's refresh token.
    await sleep(3_300)
    const refreshed = await (await b.sessions.session(cookie))!.tokens.getToken()
    expect(refreshed.reveal()).not.toBe(first.reveal())
    expect(refreshRequests(sandbox)).toBe(1)
    expect(b.sessionEvents.some((event) => event.type === "session_refreshed")).toBe(true)
    // A reads the refreshed session: B's token, no request of its own
    const fromA = await (await a.sessions.session(cookie))!.tokens.getToken()
    expect(fromA.reveal()).toBe(refreshed.reveal())
    expect(refreshRequests(sandbox)).toBe(1)
    const me = await fetch(`${sandbox.baseUrl}/v1/me`, {
      headers: { authorization: `Bearer ${fromA.reveal()}` }
    })
    expect(((await me.json()) as { subject: string }).subject).toBe("alice")

    // Signed out through A: the session is gone for B at its next request, the grant revoked.
    const out = await a.sessions.endSession({ cookie })
    expect(out.cookies[0]).toMatch(/^authfetch-session=; /)
    expect(await b.sessions.session(cookie)).toBeUndefined()
    expect(await a.sessions.session(cookie)).toBeUndefined()
    expect(sandbox.stats().revocations.revoked).toBe(1)
    expect(a.sessionEvents.find((event) => event.type === "signed_out")).toMatchObject({ revoked: true })
    // nothing left in Redis but what has expired or will (the sign-in transaction was taken)
    const client = await raw()
    expect((await client.keys(`${a.prefix}:*:session`)).length).toBe(0)
  })

  it("a replayed callback through the other instance finds nothing: the sign-in completes once", async () => {
    const { start } = await app()
    const a = start()
    const b = start()
    const jar = new CookieJar()
    const started = await a.sessions.startSignIn({ cookie: "" })
    jar.take(started.cookies)
    const back = new URL(
      (await fetch(started.location, { redirect: "manual" })).headers.get("location") ?? ""
    )
    const results = await Promise.allSettled([
      a.sessions.completeSignIn({ query: back.searchParams, cookie: jar.header() }),
      b.sessions.completeSignIn({ query: back.searchParams, cookie: jar.header() })
    ])
    expect(results.filter((result) => result.status === "fulfilled")).toHaveLength(1)
    const refused = results.find((result) => result.status === "rejected") as PromiseRejectedResult
    expect(refused.reason).toMatchObject({ _tag: "SignInError", reason: "state_unknown" })
  })

  it("nothing readable in Redis: MONITOR and a dump show no token, claim, session id, state, nonce or code", async () => {
    const { sandbox, start, signIn, issued, prefix } = await app(3)
    const monitor = await raw()
    const commands: Array<string> = []
    await monitor.monitor((line) => void commands.push(line))
    const a = start()
    const b = start()
    const { jar, secrets } = await signIn(a.sessions)
    const cookie = jar.header()
    await (await b.sessions.session(cookie))!.tokens.getToken()
    await sleep(3_300)
    await (await b.sessions.session(cookie))!.tokens.getToken()
    expect(refreshRequests(sandbox)).toBe(1)

    const client = await raw()
    const dump: Array<string> = []
    for await (const keys of client.scanIterator({ MATCH: `${prefix}*` })) {
      for (const key of keys) {
        dump.push(key)
        const type = await client.type(key)
        if (type === "string") dump.push(String(await client.get(key)))
        else if (type === "hash") dump.push(JSON.stringify(await client.hGetAll(key)))
        else if (type === "zset") dump.push(JSON.stringify(await client.zRange(key, 0, -1)))
        else dump.push(`(${type})`)
      }
    }
    await a.sessions.endSession({ cookie })
    const tokens = [...issued.accessTokens, ...issued.refreshTokens, ...issued.idTokens]
    expect(issued.accessTokens.size).toBe(2)
    expect(issued.refreshTokens.size).toBeGreaterThanOrEqual(1)
    expect(issued.idTokens.size).toBeGreaterThanOrEqual(1)
    const needles = [
      ...tokens.flatMap((token) => [token, ...token.split(".").filter((part) => part.length >= 16)]),
      ...secrets,
      USER.email,
      USER.name,
      CLIENT.clientSecret,
      KEY
    ].filter((needle) => needle.length >= 8)
    const events = JSON.stringify([a.events, b.events, a.sessionEvents, b.sessionEvents])
    const places = { "keys and values": dump.join("\n"), "commands (MONITOR)": commands.join("\n"), events }
    // there was something to look at: the session entry, its lock, the sealed values
    expect(places["keys and values"]).toMatch(new RegExp(`${prefix}:\\{ss_[\\w-]+\\}:session`))
    expect(places["commands (MONITOR)"]).toMatch(/"GETDEL"/)
    expect(places["commands (MONITOR)"]).toMatch(/"EVALSHA"/)
    for (const [place, text] of Object.entries(places)) {
      for (const needle of needles) {
        expect(text.includes(needle), `${place} hold a secret (${needle.slice(0, 6)}...)`).toBe(false)
      }
    }
    expect(inspect(a.store, { depth: 5 })).not.toContain(KEY)
  })

  it("Redis paused: the per-user proxy answers 503 within the command deadline, and 200 again once Redis answers", async () => {
    const own = await startRedis()
    opened.push({ close: () => own.stop() })
    const { sandbox, config, signIn } = await app()
    const store = redisStore({ url: own.url, encryptionKeys: [KEY], commandTimeoutMillis: 300 })
    opened.push(store)
    const sessions = createUserSessions(config, { store })
    opened.push({ close: () => sessions.dispose() })
    const { jar } = await signIn(sessions)
    const failures: Array<unknown> = []
    const proxy = BffProxy.createProxyHandler({
      sessions,
      baseUrl: sandbox.baseUrl,
      onError: (error) => void failures.push(error)
    })
    const call = () =>
      proxy(new Request("http://127.0.0.1:3000/api/v1/me", { headers: { cookie: jar.header() } }), "/v1/me")
    expect((await call()).status).toBe(200)
    own.pause()
    let paused: Response
    const started = Date.now()
    try {
      paused = await call()
    } finally {
      own.resume()
    }
    expect(paused.status).toBe(503)
    expect(Date.now() - started).toBeLessThan(5_000)
    const problem = await paused.text()
    expect(problem).not.toContain(jar.cookies.get("authfetch-session") as string)
    // the proxy saw the store's failure: the session could not be read (get), no fallback
    expect(failures).toContainEqual(expect.objectContaining({ _tag: "TokenStoreError", operation: "get" }))
    await eventually(async () => (await call()).status === 200)
  })
})

describe("secrets", () => {
  it("a TokenStoreError carries no key, value or Redis text", async () => {
    const own = await startRedis()
    opened.push({ close: () => own.stop() })
    const { store } = instance(newPrefix(), { url: own.url })
    const key = sessionKey()
    await own.kill()
    const { error } = await failureOf(
      on(store, (s) => s.set(key, { secret: "do-not-print-me" }, { ttlMillis: 1_000 }))
    )
    const printed = [String(error), JSON.stringify(error), inspect(error, { depth: 5 })].join("\n")
    expect(printed).toMatch(/Session store set failed: Redis is unreachable/)
    for (const needle of [key, "do-not-print-me", "v1.", own.url, KEY]) expect(printed).not.toContain(needle)
    // a fingerprint of the test's own values, should the error ever grow a field
    expect(printed).not.toContain(createHash("sha256").update(KEY).digest("hex").slice(0, 12))
  })
})
