/**
 * User sessions against the WealthCare emulator (`@authfetch/sandbox`): its
 * sign-in form driven by fetch, OpenID Connect claims, the per-user proxy
 * (two users, 50 concurrent calls each, the emulator telling whose token
 * arrived), CSRF and no-session refusals before anything reaches the API,
 * one refresh per session for two engines (the emulator revokes the whole
 * grant on refresh-token reuse, so a second refresh would show), revocation
 * at sign-out, the password grant per user, `invalid_grant`, and a scan of
 * every event and error for a secret.
 */
import { type Sandbox, startSandbox } from "@authfetch/sandbox"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import {
  BffProxy,
  createUserSessions,
  type SessionEvent,
  SessionStore,
  SignInRequiredError,
  type UserSessionsHandle
} from "../src/index.ts"
import { CookieJar, fillSandboxSignIn } from "./support/cookieJar.ts"

const APP = "http://127.0.0.1:4321"
const CLIENT = { clientId: "portal", clientSecret: "portal-secret-0123456789" }
const USERS = [
  { username: "alice", password: "alice-password-1", name: "Alice Adams", email: "alice@example.com" },
  { username: "bob", password: "bob-password-2", name: "Bob Brown", email: "bob@example.com" }
]

let sandbox: Sandbox
beforeAll(async () => {
  sandbox = await startSandbox({
    profile: "wealthcare",
    tokenTtl: 2,
    tokenRateLimit: false,
    users: USERS,
    clients: [{ ...CLIENT, redirectUris: [`${APP}/auth/callback`] }]
  })
})
afterAll(() => sandbox?.close())

const make = (events: Array<SessionEvent> = []) =>
  createUserSessions({
    issuer: sandbox.issuer!,
    ...CLIENT,
    scope: "openid profile email offline_access bensoft_api",
    redirectUri: `${APP}/auth/callback`,
    onEvent: (event) => events.push(event)
  })

const signIn = async (sessions: UserSessionsHandle, user: (typeof USERS)[number]) => {
  const jar = new CookieJar()
  const start = await sessions.startSignIn({ cookie: jar.header(), returnTo: "/account" })
  jar.take(start.cookies)
  const back = await fillSandboxSignIn(start.location, user)
  const done = await sessions.completeSignIn({ query: back.searchParams, cookie: jar.header() })
  jar.take(done.cookies)
  return { jar, done }
}

const get = async (handler: BffProxy.ProxyHandler, path: string, init: RequestInit = {}) => {
  const response = await handler(new Request(`${APP}/api/user${path}`, init), path, { mount: "/api/user" })
  return { status: response.status, body: (await response.json()) as Record<string, unknown> }
}

describe("user sessions with the WealthCare sandbox", () => {
  it("signs two users in through the sandbox's form, with their OIDC claims", async () => {
    await using sessions = make()
    const alice = await signIn(sessions, USERS[0]!)
    const bob = await signIn(sessions, USERS[1]!)
    expect(alice.done.session.user).toMatchObject({
      sub: "alice",
      name: "Alice Adams",
      email: "alice@example.com"
    })
    expect(bob.done.session.user).toMatchObject({ sub: "bob", name: "Bob Brown" })
    expect(alice.done.location).toBe("/account")
    expect((await sessions.session(bob.jar.header()))?.subject).toBe("bob")
  })

  it("proxies per user: 50 concurrent calls each, every one with its own user's token", async () => {
    await using sessions = make()
    const handler = BffProxy.createProxyHandler({ sessions, baseUrl: sandbox.baseUrl, allow: ["/v1/me"] })
    const users = await Promise.all(USERS.map((user) => signIn(sessions, user)))
    sandbox.resetStats()
    const calls = users.flatMap((user, i) =>
      Array.from({ length: 50 }, async () => {
        const { status, body } = await get(handler, "/v1/me", { headers: { cookie: user.jar.header() } })
        return { expected: USERS[i]!.username, status, subject: body.subject }
      })
    )
    const results = await Promise.all(calls)
    expect(results.filter((r) => r.status !== 200)).toEqual([])
    expect(results.filter((r) => r.subject !== r.expected)).toEqual([])
    expect(sandbox.stats().apiRequests.bySubject).toEqual({ alice: 50, bob: 50 })
  })

  it("refuses a proxied call without a session (401) and a forged state-changing one (403), before the API", async () => {
    await using sessions = make()
    const handler = BffProxy.createProxyHandler({ sessions, baseUrl: sandbox.baseUrl, allow: ["/v1/**"] })
    const { jar } = await signIn(sessions, USERS[0]!)
    sandbox.resetStats()
    expect((await get(handler, "/v1/me")).status).toBe(401)
    const forged = [
      { cookie: jar.header(), origin: "http://evil.example", "x-csrf": "1" },
      { cookie: jar.header(), "sec-fetch-site": "cross-site", "x-csrf": "1" },
      { cookie: jar.header(), origin: APP }
    ]
    for (const headers of forged) {
      const { status, body } = await get(handler, "/v1/claims", { method: "POST", headers, body: "{}" })
      expect(status).toBe(403)
      expect(body.detail).toBe("A state-changing request from another site was refused.")
    }
    expect(sandbox.stats().apiRequests.total).toBe(0)
  })

  it("refreshes once for two engines sharing the store (the sandbox would revoke the grant on reuse)", async () => {
    await using a = make()
    await using b = make()
    const { jar } = await signIn(a, USERS[0]!)
    await new Promise((resolve) => setTimeout(resolve, 2100)) // the 2 s token expires
    const before = sandbox.stats().tokenRequests.byGrant.refresh_token ?? 0
    const [sa, sb] = await Promise.all([a.session(jar.header()), b.session(jar.header())])
    const tokens = await Promise.all(
      Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? sa! : sb!).tokens.getToken())
    )
    expect(new Set(tokens.map((t) => t.reveal())).size).toBe(1)
    expect((sandbox.stats().tokenRequests.byGrant.refresh_token ?? 0) - before).toBe(1)
    const handler = BffProxy.createProxyHandler({ sessions: b, baseUrl: sandbox.baseUrl, allow: ["/v1/me"] })
    expect((await get(handler, "/v1/me", { headers: { cookie: jar.header() } })).status).toBe(200)
  })

  it("revokes the refresh token at sign-out; the sandbox records it", async () => {
    const events: Array<SessionEvent> = []
    await using sessions = make(events)
    const { jar } = await signIn(sessions, USERS[1]!)
    const before = sandbox.stats().revocations
    const out = await sessions.endSession({ cookie: jar.header() })
    expect(out.cookies[0]).toMatch(
      /^authfetch-session=; Path=\/; Max-Age=0; HttpOnly; SameSite=Lax; Expires=/
    )
    const after = sandbox.stats().revocations
    expect(after.revoked - before.revoked).toBe(1)
    expect((after.bySubject.bob ?? 0) - (before.bySubject.bob ?? 0)).toBe(1)
    expect(await sessions.session(jar.header())).toBeUndefined()
    expect(events.find((e) => e.type === "signed_out")).toMatchObject({ subject: "bob", revoked: true })
  })

  it("a revoked refresh token ends the session at the next refresh: SignInRequiredError", async () => {
    await using sessions = make()
    const { jar } = await signIn(sessions, USERS[0]!)
    sandbox.revokeRefreshTokens("alice")
    await new Promise((resolve) => setTimeout(resolve, 2100))
    const session = await sessions.session(jar.header())
    const error = await session!.tokens.getToken().catch((e) => e)
    expect(error).toBeInstanceOf(SignInRequiredError)
    expect(error.reason).toBe("refresh_rejected")
    expect(await sessions.session(jar.header())).toBeUndefined()
  })

  it("signs a user in with the password grant; the password is nowhere after the exchange", async () => {
    const events: Array<SessionEvent> = []
    await using sessions = make(events)
    const done = await sessions.signInWithPassword({ username: "bob", password: USERS[1]!.password })
    // no ID token from the password grant here: the app sees the username it signed in with
    expect(done.session.user).toEqual({ username: "bob" })
    const handler = BffProxy.createProxyHandler({ sessions, baseUrl: sandbox.baseUrl, allow: ["/v1/me"] })
    const cookie = done.cookies[0]!.split(";")[0]!
    expect((await get(handler, "/v1/me", { headers: { cookie } })).body.subject).toBe("bob")
    const entry = await Effect.runPromise(SessionStore.makeMemory().get(done.session.key))
    expect(JSON.stringify(entry)).not.toContain(USERS[1]!.password)
    expect(JSON.stringify(events)).not.toContain(USERS[1]!.password)
    const wrong = await sessions.signInWithPassword({ username: "bob", password: "nope" }).catch((e) => e)
    expect(wrong.reason).toBe("invalid_credentials")
    expect(String(wrong)).not.toContain("nope")
  })

  it("with the WealthCare preset's endpoints, still learns from the metadata that iss is required", async () => {
    const { wealthcareSignIn } = await import("../src/providers/index.ts")
    await using sessions = createUserSessions(
      wealthcareSignIn({
        issuer: sandbox.issuer!,
        ...CLIENT,
        scope: "openid offline_access",
        redirectUri: `${APP}/auth/callback`
      })
    )
    const jar = new CookieJar()
    const start = await sessions.startSignIn({ cookie: jar.header() })
    jar.take(start.cookies)
    const back = await fillSandboxSignIn(start.location, USERS[0]!)
    back.searchParams.delete("iss")
    const refused = await sessions
      .completeSignIn({ query: back.searchParams, cookie: jar.header() })
      .catch((e) => e)
    expect(refused.reason).toBe("issuer_missing")
  })

  it("never puts a token, a code, a state or a session id in an event or an error", async () => {
    const events: Array<SessionEvent> = []
    await using sessions = make(events)
    const { jar, done } = await signIn(sessions, USERS[0]!)
    const token = await (await sessions.session(jar.header()))!.tokens.getToken()
    const secrets = [token.reveal(), jar.cookies.get("authfetch-session")!, CLIENT.clientSecret]
    const replay = await sessions
      .completeSignIn({
        query: new URLSearchParams({ state: "x".repeat(43), code: "c0de-value" }),
        cookie: jar.header()
      })
      .catch((e) => e)
    await sessions.endSession({ cookie: jar.header() })
    const text = [
      JSON.stringify(events),
      String(replay),
      JSON.stringify(replay),
      JSON.stringify(done.session)
    ].join("\n")
    for (const secret of [...secrets, "c0de-value"]) expect(text).not.toContain(secret)
  })
})
