/**
 * Sessions of signed-in users across OS processes (`support/sessionFleet.ts`):
 * two instances of one app, each its own process with its own `redisStore`
 * and `createUserSessions`, on one redis-server and the WealthCare sandbox.
 *
 * The sandbox revokes the whole grant when a refresh token is used twice, so
 * two instances refreshing the same session without the fleet's lock would
 * show as a second refresh request and an `invalid_grant`.
 */
import { createHash, randomBytes } from "node:crypto"
import { createUserSessions, SessionStore, type UserSessionsConfig } from "@authfetch/core"
import { type SandboxEvent, startSandbox } from "@authfetch/sandbox"
import { createClient } from "@redis/client"
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { redisStore, type StoreEvent } from "../src/index.ts"
import { startRedis } from "./support/redisServer.ts"
import { type SessionWorkerConfig, startSessionWorker, type TokenAnswer } from "./support/sessionFleet.ts"

const KEY = randomBytes(32).toString("base64")
const USER = { username: "bob", password: "bob-password", email: "bob@example.com" }
const CLIENT = { clientId: "fleet-web", clientSecret: "fleet-web-secret" }
const SCOPE = "openid profile email offline_access bensoft_api"
const REDIRECT_URI = "http://127.0.0.1:3000/callback"

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const fingerprint = (token: string) => createHash("sha256").update(token).digest("hex").slice(0, 8)

/** A redis-server, the sandbox, the workers' configuration, and this process's own instance. */
const environment = async (tokenTtl: number) => {
  const redis = await startRedis()
  const tokenEvents: Array<SandboxEvent> = []
  const sandbox = await startSandbox({
    profile: "wealthcare",
    autoApprove: true,
    tokenTtl,
    users: [USER],
    clients: [{ ...CLIENT, redirectUris: ["http://127.0.0.1/callback"] }],
    onEvent: (event) => {
      if (event.kind === "token") tokenEvents.push(event)
    }
  })
  const prefix = `sf${randomBytes(3).toString("hex")}`
  const config: UserSessionsConfig = {
    issuer: sandbox.issuer as string,
    ...CLIENT,
    scope: SCOPE,
    redirectUri: REDIRECT_URI
  }
  const workerConfig: SessionWorkerConfig = {
    redisUrl: redis.url,
    encryptionKey: KEY,
    prefix,
    issuer: config.issuer as string,
    ...CLIENT,
    scope: SCOPE,
    redirectUri: REDIRECT_URI
  }
  const store = redisStore({ url: redis.url, encryptionKeys: [KEY], prefix })
  const sessions = createUserSessions(config, { store })
  /** a browser signs in through this process's instance; its Cookie header */
  const signIn = async () => {
    const started = await sessions.startSignIn({ cookie: "" })
    const binding = started.cookies.map((cookie) => cookie.split(";")[0]).join("; ")
    const answer = await fetch(started.location, { redirect: "manual" })
    const back = new URL(answer.headers.get("location") ?? "")
    const done = await sessions.completeSignIn({ query: back.searchParams, cookie: binding })
    return { cookie: done.cookies.map((cookie) => cookie.split(";")[0]).join("; "), key: done.session.key }
  }
  return {
    redis,
    sandbox,
    prefix,
    workerConfig,
    sessions,
    store,
    signIn,
    tokenEvents,
    [Symbol.asyncDispose]: async () => {
      await sessions.dispose()
      await store.close()
      await sandbox.close()
      await redis.stop()
    }
  }
}

const eventsOf = (events: ReadonlyArray<StoreEvent>, type: StoreEvent["type"]) =>
  events.filter((event) => event.type === type)

describe("two processes, one session", () => {
  it("refreshing the same session at once: exactly one refresh_token request, both get the new token", async () => {
    await using env = await environment(2)
    await using a = await startSessionWorker(env.workerConfig)
    await using b = await startSessionWorker(env.workerConfig)
    const { cookie } = await env.signIn()
    const before = await a.request<TokenAnswer>({ op: "token", cookie })
    expect(before.subject).toBe("bob")
    // Both processes find the access token expired; the refresh takes a second at the sandbox,
    // so whichever is second arrives while the first holds the session's lock.
    await sleep(2_300)
    env.sandbox.setFaults({ token: { latencyMs: 1_000 } })
    const [fromA, fromB] = await Promise.all([
      a.request<TokenAnswer>({ op: "token", cookie }),
      b.request<TokenAnswer>({ op: "token", cookie })
    ])
    const context = JSON.stringify({
      tokens: env.tokenEvents.map((e) => [e.grantType, e.status, e.error, e.tokenFingerprint]),
      a: a.events,
      b: b.events
    })
    const refreshes = env.tokenEvents.filter((event) => event.grantType === "refresh_token")
    expect(refreshes, context).toHaveLength(1)
    expect(refreshes[0]?.status, context).toBe(200)
    expect(fromA.fingerprint).not.toBe(before.fingerprint)
    expect(fromA).toEqual(fromB)
    expect(fromA.fingerprint).toBe(refreshes[0]?.tokenFingerprint)
    // one of them waited for the other's lock (the second refresh that would have revoked the grant)
    expect(eventsOf([...a.events, ...b.events], "lock_waited").length, context).toBeGreaterThan(0)
    // and the session goes on: the grant was not revoked
    env.sandbox.setFaults({})
    const session = await env.sessions.session(cookie)
    const token = await session!.tokens.getToken()
    expect(fingerprint(token.reveal())).toBe(fromA.fingerprint)
    const me = await fetch(`${env.sandbox.baseUrl}/v1/me`, {
      headers: { authorization: `Bearer ${token.reveal()}` }
    })
    expect(me.status).toBe(200)
  }, 60_000)

  it("a lock holder killed (SIGKILL) frees the session's lock after its expiry, not before", async () => {
    await using env = await environment(3_600)
    const holder = await startSessionWorker(env.workerConfig)
    const { key } = await env.signIn()
    const lockKey = `${env.prefix}:{${key}}:lock`
    const ttlMillis = 1_500
    await holder.request({ op: "hold", key, ttlMillis })
    const client = createClient({ url: env.redis.url })
    client.on("error", () => {})
    await client.connect()
    try {
      const owner = await client.get(lockKey)
      expect(owner).toBeTruthy()
      // alive, the holder keeps its lock past the expiry (renewal)
      await sleep(ttlMillis * 2)
      expect(await client.get(lockKey)).toBe(owner)

      holder.process.kill("SIGKILL")
      const killedAt = Date.now()
      const events: Array<StoreEvent> = []
      await using store = redisStore({
        url: env.redis.url,
        encryptionKeys: [KEY],
        prefix: env.prefix,
        onEvent: (event) => events.push(event)
      })
      const acquired = await Effect.runPromise(
        Effect.gen(function* () {
          const sessions = yield* SessionStore.SessionStore
          return yield* sessions.withLock(
            key,
            Effect.promise(async () => ({ at: Date.now(), owner: await client.get(lockKey) })),
            { ttlMillis: 5_000 }
          )
        }).pipe(Effect.provide(store.sessionLayer))
      )
      expect(acquired.owner).not.toBe(owner)
      // The dead holder's last renewal was at most a third of the expiry before the kill.
      expect(acquired.at - killedAt).toBeGreaterThan(ttlMillis / 3)
      // and no hang: a waiter tries again at least every half second
      expect(acquired.at - killedAt).toBeLessThan(ttlMillis + 10_000)
      expect(eventsOf(events, "lock_waited")).toHaveLength(1)
    } finally {
      client.destroy()
      await holder.stop()
    }
  }, 60_000)
})
