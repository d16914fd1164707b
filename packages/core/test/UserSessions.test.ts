/**
 * The sessions engine on `TestClock`, against a scripted token endpoint on
 * 127.0.0.1 (real sockets, time moved by the test): refresh ahead and on
 * expiry, one refresh per session however many callers (and across two
 * engines sharing a store, as two Next.js bundles or two instances do),
 * rotation written before use, `invalid_grant` ending the session, fail-
 * static on a transient failure, idle and absolute lifetimes, compare-and-
 * expire, fixation, cookies, client binding, the password grant, the budget.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { FetchHttpClient } from "effect/http"
import { TestClock } from "effect/testing"
import { afterAll, beforeAll, beforeEach } from "vitest"
import type { SessionEvent } from "../src/Events.ts"
import * as SessionStore from "../src/SessionStore.ts"
import * as TokenBudget from "../src/TokenBudget.ts"
import * as UserSessions from "../src/UserSessions.ts"
import { CookieJar } from "./support/cookieJar.ts"
import { realWait } from "./support/effect.ts"
import { issueToken, startTokenServer, type TokenServer } from "./support/tokenServer.ts"

let server: TokenServer
let refreshCounter = 0

beforeAll(async () => {
  server = await startTokenServer()
})
afterAll(async () => {
  await server.close()
})
beforeEach(() => {
  server.requests.length = 0
  // every grant answers a 100 s token with a new (rotated) refresh token
  server.setDefault(() => issueToken({ expires_in: 100, refresh_token: `rt-${++refreshCounter}` }))
})

const config = (
  overrides: Partial<UserSessions.UserSessionsConfig> = {}
): UserSessions.UserSessionsConfig => ({
  authorizationUrl: `${server.url}/authorize`,
  tokenUrl: server.tokenUrl,
  revocationUrl: false,
  clientId: "app",
  clientSecret: "app-secret",
  scope: "api offline_access",
  redirectUri: "http://127.0.0.1:3000/auth/callback",
  refreshJitter: 0,
  ...overrides
})

/** An engine over its own store (or the one given) and budget. */
const engine = (
  overrides: Partial<UserSessions.UserSessionsConfig> = {},
  store: SessionStore.Shape = SessionStore.makeMemoryIsolated(),
  budget: Layer.Layer<TokenBudget.TokenBudget> = TokenBudget.layerIsolated
) =>
  UserSessions.make(config(overrides)).pipe(
    Effect.provide(
      Layer.mergeAll(FetchHttpClient.layer, Layer.succeed(SessionStore.SessionStore, store), budget)
    )
  )

/** A sign-in through the engine: start, then the callback with a code the scripted server accepts. */
const signIn = (sessions: UserSessions.Shape, jar = new CookieJar()) =>
  Effect.gen(function* () {
    const start = yield* sessions.startSignIn({ cookie: jar.header(), returnTo: "/account" })
    jar.take(start.cookies)
    const state = new URL(start.location).searchParams.get("state")!
    const done = yield* sessions.completeSignIn({
      query: new URLSearchParams({ code: `code-${Math.random()}`, state }),
      cookie: jar.header()
    })
    jar.take(done.cookies)
    return { jar, done, cookie: jar.header() }
  })

const grants = (type: string) => server.requests.filter((r) => r.form.get("grant_type") === type)

describe("UserSessions (TestClock)", () => {
  it.effect("signs in: PKCE S256, state, the code exchanged with its verifier, loopback cookies", () =>
    Effect.gen(function* () {
      const sessions = yield* engine()
      const start = yield* sessions.startSignIn({ returnTo: "/account?tab=2" })
      const url = new URL(start.location)
      assert.strictEqual(url.searchParams.get("response_type"), "code")
      assert.strictEqual(url.searchParams.get("code_challenge_method"), "S256")
      assert.strictEqual(url.searchParams.get("redirect_uri"), "http://127.0.0.1:3000/auth/callback")
      assert.isNull(url.searchParams.get("nonce")) // no openid in the scope
      // loopback http: no Secure, so no __Host- prefix (browsers refuse one without Secure)
      assert.match(
        start.cookies[0]!,
        /^authfetch-sign-in=[\w-]{43}; Path=\/; Max-Age=600; HttpOnly; SameSite=Lax$/
      )
      const jar = new CookieJar().take(start.cookies)
      const done = yield* sessions.completeSignIn({
        query: new URLSearchParams({ code: "the-code", state: url.searchParams.get("state")! }),
        cookie: jar.header()
      })
      assert.strictEqual(done.location, "/account?tab=2")
      assert.match(
        done.cookies[0]!,
        /^authfetch-session=[\w-]{43}; Path=\/; Max-Age=28800; HttpOnly; SameSite=Lax$/
      )
      const exchange = grants("authorization_code")[0]!
      assert.strictEqual(exchange.form.get("code"), "the-code")
      assert.strictEqual(exchange.form.get("redirect_uri"), "http://127.0.0.1:3000/auth/callback")
      const verifier = exchange.form.get("code_verifier")!
      const challenge = Buffer.from(
        yield* Effect.promise(() => crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)))
      ).toString("base64url")
      assert.strictEqual(challenge, url.searchParams.get("code_challenge"))
      jar.take(done.cookies)
      const session = yield* sessions.lookup(jar.header())
      assert.strictEqual(session?.key, done.session.key)
    })
  )

  it.effect("https apps get __Host- cookies with Secure", () =>
    Effect.gen(function* () {
      const sessions = yield* engine({ redirectUri: "https://app.example/auth/callback" })
      const { done } = yield* signIn(sessions)
      assert.match(
        done.cookies[0]!,
        /^__Host-authfetch-session=[\w-]{43}; Path=\/; Max-Age=28800; HttpOnly; SameSite=Lax; Secure$/
      )
    })
  )

  it.effect("refreshes ahead in the background, then on expiry; rotation is used at once", () =>
    Effect.gen(function* () {
      const events: Array<SessionEvent> = []
      const issued: Array<string> = []
      server.setDefault(() => {
        const refreshToken = `rt-${++refreshCounter}`
        issued.push(refreshToken)
        return issueToken({ expires_in: 100, refresh_token: refreshToken })
      })
      const sessions = yield* engine({ onEvent: (e) => events.push(e) })
      const { cookie, done } = yield* signIn(sessions)
      const first = yield* sessions.accessToken(done.session.key)
      // 100 s token, margin 25 s: stale at 75 s, refresh ahead at 71.25 s (no jitter)
      yield* TestClock.adjust("72 seconds")
      yield* sessions.lookup(cookie) // starts the refresh, answers at once
      assert.strictEqual((yield* sessions.accessToken(done.session.key)).reveal(), first.reveal())
      while (grants("refresh_token").length < 1) yield* realWait(2)
      yield* realWait(20)
      const second = yield* sessions.accessToken(done.session.key)
      assert.notStrictEqual(second.reveal(), first.reveal())
      assert.strictEqual(grants("refresh_token")[0]!.form.get("refresh_token"), issued[0])
      // no scope on a refresh (RFC 6749 6: the granted scope is kept)
      assert.isNull(grants("refresh_token")[0]!.form.get("scope"))
      // past expiry of the second token: a caller waits for a refresh with the rotated refresh token
      yield* TestClock.adjust("101 seconds")
      const third = yield* sessions.accessToken(done.session.key)
      assert.notStrictEqual(third.reveal(), second.reveal())
      assert.strictEqual(grants("refresh_token")[1]!.form.get("refresh_token"), issued[1])
      assert.deepStrictEqual(
        events.filter((e) => e.type === "session_refreshed").map((e) => (e as { reason: string }).reason),
        ["refresh_ahead", "expired"]
      )
    })
  )

  it.effect("one refresh for 50 concurrent callers, and one for two engines sharing the store", () =>
    Effect.gen(function* () {
      const store = SessionStore.makeMemoryIsolated()
      const a = yield* engine({}, store)
      const b = yield* engine({}, store) // another bundle's copy, or another instance
      const { done } = yield* signIn(a)
      yield* TestClock.adjust("101 seconds")
      server.setDefault(() => ({
        ...issueToken({ expires_in: 100, refresh_token: `rt-${++refreshCounter}` }),
        delayMs: 50
      }))
      const tokens = yield* Effect.all(
        Array.from({ length: 50 }, (_, i) => (i % 2 === 0 ? a : b).accessToken(done.session.key)),
        { concurrency: "unbounded" }
      )
      assert.strictEqual(new Set(tokens.map((t) => t.reveal())).size, 1)
      assert.strictEqual(grants("refresh_token").length, 1)
    })
  )

  it.effect("invalid_grant on refresh ends the session: SignInRequiredError, and the session is gone", () =>
    Effect.gen(function* () {
      const events: Array<SessionEvent> = []
      const sessions = yield* engine({ onEvent: (e) => events.push(e) })
      const { cookie, done } = yield* signIn(sessions)
      server.setDefault(() => ({
        status: 400,
        body: { error: "invalid_grant", error_description: "revoked" }
      }))
      yield* TestClock.adjust("101 seconds")
      const error = yield* Effect.flip(sessions.accessToken(done.session.key))
      assert.strictEqual(error._tag, "SignInRequiredError")
      assert.strictEqual((error as { reason?: string }).reason, "refresh_rejected")
      assert.isUndefined(yield* sessions.lookup(cookie))
      assert.strictEqual(grants("refresh_token").length, 1)
      assert.deepInclude(
        events.map((e) => (e.type === "session_ended" ? e.reason : e.type)),
        "refresh_rejected"
      )
    })
  )

  it.effect(
    "a transient failure while the token is usable keeps serving it; once expired the error reaches the caller",
    () =>
      Effect.gen(function* () {
        const sessions = yield* engine({ tokenRequestRetry: { maxRetries: 0 } })
        const { done } = yield* signIn(sessions)
        const first = yield* sessions.accessToken(done.session.key)
        server.setDefault(() => ({ status: 503, body: { error: "temporarily_unavailable" } }))
        yield* TestClock.adjust("80 seconds") // stale, not expired
        assert.strictEqual((yield* sessions.accessToken(done.session.key)).reveal(), first.reveal())
        while (grants("refresh_token").length < 1) yield* realWait(2)
        yield* TestClock.adjust("21 seconds") // expired
        const error = yield* Effect.flip(sessions.accessToken(done.session.key))
        assert.strictEqual(error._tag, "OAuthError")
      })
  )

  it.effect("idle and absolute lifetimes; a used session is kept alive by its requests", () =>
    Effect.gen(function* () {
      const events: Array<SessionEvent> = []
      const sessions = yield* engine({
        idleTimeout: "10 minutes",
        absoluteTimeout: "30 minutes",
        onEvent: (e) => events.push(e)
      })
      const idle = yield* signIn(sessions)
      const busy = yield* signIn(sessions)
      for (let minute = 0; minute < 8; minute += 4) {
        yield* TestClock.adjust("4 minutes")
        assert.isDefined(yield* sessions.lookup(busy.cookie))
        yield* realWait(5) // the touch is written in the background
      }
      yield* TestClock.adjust("2.5 minutes") // 10.5 minutes without a request
      assert.isUndefined(yield* sessions.lookup(idle.cookie))
      for (let minute = 10.5; minute < 30; minute += 4) {
        assert.isDefined(yield* sessions.lookup(busy.cookie))
        yield* realWait(5)
        yield* TestClock.adjust("4 minutes")
      }
      // 30.5 minutes after sign-in: over, however busy
      assert.isUndefined(yield* sessions.lookup(busy.cookie))
      const reasons = events.flatMap((e) => (e.type === "session_ended" ? [e.reason] : []))
      assert.deepStrictEqual(reasons, ["idle_timeout", "absolute_timeout"])
    })
  )

  it.effect("invalidate is compare-and-expire: a late 401 for an old token leaves the new one", () =>
    Effect.gen(function* () {
      const sessions = yield* engine()
      const { done } = yield* signIn(sessions)
      const old = yield* sessions.accessToken(done.session.key)
      yield* sessions.invalidate(done.session.key, old)
      const fresh = yield* sessions.accessToken(done.session.key)
      assert.notStrictEqual(fresh.reveal(), old.reveal())
      yield* sessions.invalidate(done.session.key, old) // late
      assert.strictEqual((yield* sessions.accessToken(done.session.key)).reveal(), fresh.reveal())
      assert.strictEqual(grants("refresh_token").length, 1)
    })
  )

  it.effect("a sign-in makes a new session id and ends the one the browser had (no fixation)", () =>
    Effect.gen(function* () {
      const sessions = yield* engine()
      const first = yield* signIn(sessions)
      const planted = first.jar.cookies.get("authfetch-session")!
      const second = yield* signIn(sessions, first.jar)
      assert.notStrictEqual(second.jar.cookies.get("authfetch-session"), planted)
      assert.isUndefined(yield* sessions.lookup(`authfetch-session=${planted}`))
      assert.isDefined(yield* sessions.lookup(second.cookie))
      // a value the browser was given by someone else, never issued: no session, and not kept
      const forged = "A".repeat(43)
      const third = yield* signIn(sessions, new CookieJar().take([`authfetch-session=${forged}`]))
      assert.notStrictEqual(third.jar.cookies.get("authfetch-session"), forged)
      assert.isUndefined(yield* sessions.lookup(`authfetch-session=${forged}`))
    })
  )

  it.effect("a session belongs to its configuration: another client on the same store does not see it", () =>
    Effect.gen(function* () {
      const store = SessionStore.makeMemoryIsolated()
      const a = yield* engine({}, store)
      const b = yield* engine({ clientId: "other-app" }, store)
      const { cookie } = yield* signIn(a)
      assert.isDefined(yield* a.lookup(cookie))
      assert.isUndefined(yield* b.lookup(cookie))
    })
  )

  it.effect("the password grant makes a session; the password is sent once and stored nowhere", () =>
    Effect.gen(function* () {
      const store = SessionStore.makeMemoryIsolated()
      const sessions = yield* engine({}, store)
      server.setDefault(() => issueToken({ expires_in: 100 })) // no refresh token
      const password = `pw-${Math.random().toString(36).slice(2)}`
      const done = yield* sessions.signInWithPassword({ username: "alice", password })
      assert.deepStrictEqual(done.session.user, { username: "alice" })
      const sent = grants("password")
      assert.strictEqual(sent.length, 1)
      assert.strictEqual(sent[0]!.form.get("password"), password)
      const stored = yield* store.get(done.session.key)
      assert.notInclude(JSON.stringify(stored), password)
      // without a refresh token the session ends with its token, and the password is never sent again
      yield* TestClock.adjust("101 seconds")
      const expired = yield* Effect.flip(sessions.accessToken(done.session.key))
      assert.strictEqual((expired as { reason?: string }).reason, "no_refresh_token")
      assert.strictEqual(grants("password").length, 1)
      server.setDefault(() => ({ status: 400, body: { error: "invalid_grant" } }))
      const refused = yield* Effect.flip(
        sessions.signInWithPassword({ username: "alice", password: "wrong" })
      )
      assert.strictEqual((refused as { reason?: string }).reason, "invalid_credentials")
    })
  )

  it.effect("a refused code exchange stores nothing and says why", () =>
    Effect.gen(function* () {
      const sessions = yield* engine()
      server.setDefault(() => ({
        status: 400,
        body: { error: "invalid_grant", error_description: "PKCE failed" }
      }))
      const start = yield* sessions.startSignIn({})
      const jar = new CookieJar().take(start.cookies)
      const error = yield* Effect.flip(
        sessions.completeSignIn({
          query: new URLSearchParams({
            code: "c",
            state: new URL(start.location).searchParams.get("state")!
          }),
          cookie: jar.header()
        })
      )
      assert.deepInclude(error, {
        reason: "code_exchange_failed",
        code: "invalid_grant",
        description: "PKCE failed"
      })
      assert.strictEqual(grants("authorization_code").length, 1) // a code is never sent twice
    })
  )

  it.effect("the client's budget: a code exchange that cannot be admitted in time fails at once", () =>
    Effect.gen(function* () {
      const sessions = yield* engine({ rateLimit: { limit: 1, window: "1 minute" } })
      yield* signIn(sessions)
      const error = yield* Effect.flip(signIn(sessions))
      assert.strictEqual(error._tag, "RateLimitedError")
      assert.strictEqual(grants("authorization_code").length, 1)
    })
  )
})
