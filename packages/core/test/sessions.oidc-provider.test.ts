/**
 * User sessions against panva's certified `oidc-provider`, in-process on
 * 127.0.0.1: discovery, sign-in with PKCE, state, nonce and RFC 9207 `iss`,
 * the ID token's checks, refresh with rotation, revocation at sign-out, and
 * the attacks a callback must refuse. The browser is played by fetch with a
 * cookie jar (the provider's own login and consent forms); our side is the
 * Promise facade, as an app uses it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import {
  authFetch,
  BffProxy,
  createUserSessions,
  type SessionEvent,
  SignInError,
  SignInRequiredError
} from "../src/index.ts"
import { CookieJar } from "./support/cookieJar.ts"
import { CLIENTS, type OidcProvider, REDIRECT_URI, startOidcProvider } from "./support/oidcProvider.ts"

let op: OidcProvider
let other: OidcProvider

beforeAll(async () => {
  ;[op, other] = await Promise.all([startOidcProvider({ accessTokenTtl: 3 }), startOidcProvider()])
})
afterAll(async () => {
  await Promise.all([op?.close(), other?.close()])
})

const makeSessions = (events: Array<SessionEvent> = [], issuer = op.issuer) =>
  createUserSessions({
    issuer,
    clientId: CLIENTS.code.clientId,
    clientSecret: CLIENTS.code.clientSecret,
    scope: "openid offline_access api:read",
    redirectUri: REDIRECT_URI,
    // oidc-provider grants offline_access only with a consent prompt
    authorizationParams: { prompt: "consent" },
    onEvent: (event) => events.push(event)
  })

/** A whole sign-in as a browser does it; returns the jar and where the app sent the browser. */
const signIn = async (
  sessions: ReturnType<typeof makeSessions>,
  jar = new CookieJar(),
  returnTo?: string,
  accountId?: string
) => {
  const start = await sessions.startSignIn({ cookie: jar.header(), returnTo })
  jar.take(start.cookies)
  const back = await op.authorizeAt(start.location, { accountId })
  const done = await sessions.completeSignIn({ query: back.searchParams, cookie: jar.header() })
  jar.take(done.cookies)
  return { jar, done, back }
}

describe("user sessions with oidc-provider", () => {
  it("signs in through discovery, with PKCE, state, nonce and iss, and calls an API with the user's token", async () => {
    const events: Array<SessionEvent> = []
    await using sessions = makeSessions(events)
    const start = await sessions.startSignIn({ returnTo: "/claims?page=2" })
    const url = new URL(start.location)
    expect(url.origin + url.pathname).toBe(`${op.issuer}/auth`)
    expect(url.searchParams.get("code_challenge_method")).toBe("S256")
    expect(url.searchParams.get("nonce")).toMatch(/^[\w-]{43}$/)
    expect(url.searchParams.get("state")).toMatch(/^[\w-]{43}$/)

    const { jar, done, back } = await signIn(sessions, new CookieJar(), "/claims?page=2")
    expect(back.searchParams.get("iss")).toBe(op.issuer)
    expect(done.location).toBe("/claims?page=2")
    expect(done.session.user).toEqual({ sub: "alice" })
    const cookie = jar.cookies.get("__Host-authfetch-session")
    expect(cookie).toMatch(/^[\w-]{43}$/)

    const session = await sessions.session(jar.header())
    expect(session?.subject).toBe("alice")
    const token = await session!.tokens.getToken()
    const introspected = await op.introspect(token.reveal(), CLIENTS.code)
    expect(introspected).toMatchObject({ active: true, sub: "alice", client_id: CLIENTS.code.clientId })
    expect(events.map((e) => e.type)).toContain("signed_in")
    expect(JSON.stringify(events)).not.toContain(token.reveal())
    expect(JSON.stringify(events)).not.toContain(cookie)
  })

  it("proxies per user to the provider's userinfo endpoint: each call answered for its own user", async () => {
    await using sessions = makeSessions()
    const handler = BffProxy.createProxyHandler({ sessions, baseUrl: op.issuer, allow: ["/me"] })
    const users = await Promise.all(
      ["alice", "bob"].map(async (account) => ({
        account,
        ...(await signIn(sessions, new CookieJar(), undefined, account))
      }))
    )
    const results = await Promise.all(
      users.flatMap(({ account, jar }) =>
        Array.from({ length: 20 }, async () => {
          const response = await handler(
            new Request("https://rp.example.test/api/me", { headers: { cookie: jar.header() } }),
            "/me"
          )
          return { account, status: response.status, sub: ((await response.json()) as { sub?: string }).sub }
        })
      )
    )
    expect(results.filter((r) => r.status !== 200 || r.sub !== r.account)).toEqual([])
  })

  it("refreshes an expired token with the rotated refresh token, once for many concurrent callers", async () => {
    const events: Array<SessionEvent> = []
    await using sessions = makeSessions(events)
    const { jar } = await signIn(sessions)
    const first = await (await sessions.session(jar.header()))!.tokens.getToken()
    await new Promise((resolve) => setTimeout(resolve, 3200))
    op.counters.reset()
    const session = await sessions.session(jar.header())
    const tokens = await Promise.all(Array.from({ length: 20 }, () => session!.tokens.getToken()))
    expect(new Set(tokens.map((t) => t.reveal())).size).toBe(1)
    expect(tokens[0]!.reveal()).not.toBe(first.reveal())
    expect(op.counters.count({ grantType: "refresh_token" })).toBe(1)
    expect((await op.introspect(tokens[0]!.reveal(), CLIENTS.code)).active).toBe(true)
    expect(events.some((e) => e.type === "session_refreshed" && e.rotated)).toBe(true)
  })

  it("revokes the refresh token at sign-out and forgets the session", async () => {
    const events: Array<SessionEvent> = []
    await using sessions = makeSessions(events)
    const { jar } = await signIn(sessions)
    const session = await sessions.session(jar.header())
    const token = await session!.tokens.getToken()
    const out = await sessions.endSession({ cookie: jar.header() })
    expect(out.location).toBe("/")
    expect(out.cookies[0]).toMatch(
      /^__Host-authfetch-session=; Path=\/; Max-Age=0; HttpOnly; SameSite=Lax; Secure/
    )
    expect(await sessions.session(jar.header())).toBeUndefined()
    expect((await op.introspect(token.reveal(), CLIENTS.code)).active).toBe(false)
    expect(events.find((e) => e.type === "signed_out")).toMatchObject({ revoked: true, subject: "alice" })
  })

  it("refuses a replayed callback, another browser's callback and a mix-up, storing nothing", async () => {
    await using sessions = makeSessions()
    const jar = new CookieJar()
    const start = await sessions.startSignIn({ cookie: jar.header() })
    jar.take(start.cookies)
    const back = await op.authorizeAt(start.location)

    // another browser (no binding cookie) presents the victim's callback: refused, and the sign-in is spent
    const stranger = await sessions.completeSignIn({ query: back.searchParams, cookie: "" }).catch((e) => e)
    expect(stranger).toBeInstanceOf(SignInError)
    expect(stranger.reason).toBe("state_mismatch")
    const replay = await sessions
      .completeSignIn({ query: back.searchParams, cookie: jar.header() })
      .catch((e) => e)
    expect(replay.reason).toBe("state_unknown")

    // mix-up: the callback says another server answered
    const start2 = await sessions.startSignIn({ cookie: jar.header() })
    const back2 = await op.authorizeAt(start2.location)
    back2.searchParams.set("iss", other.issuer)
    const mixed = await sessions
      .completeSignIn({ query: back2.searchParams, cookie: jar.header() })
      .catch((e) => e)
    expect(mixed.reason).toBe("issuer_mismatch")
    // and a callback without iss from a server that promises it
    const start3 = await sessions.startSignIn({ cookie: jar.header() })
    const back3 = await op.authorizeAt(start3.location)
    back3.searchParams.delete("iss")
    expect(
      (await sessions.completeSignIn({ query: back3.searchParams, cookie: jar.header() }).catch((e) => e))
        .reason
    ).toBe("issuer_missing")
    expect(jar.cookies.has("__Host-authfetch-session")).toBe(false)
  })

  it("refuses an open redirect through returnTo before anything is stored", async () => {
    await using sessions = makeSessions()
    for (const returnTo of [
      "https://evil.example/",
      "//evil.example",
      "/\\evil.example",
      "javascript:alert(1)",
      "/ok\r\nx: y"
    ]) {
      const refused = await sessions.startSignIn({ returnTo }).catch((e) => e)
      expect(refused).toBeInstanceOf(SignInError)
      expect(refused.reason).toBe("return_to_refused")
    }
  })

  it("replays a 401 with a refreshed token, and ends the session when the grant is revoked", async () => {
    const events: Array<SessionEvent> = []
    await using sessions = makeSessions(events)
    const { jar } = await signIn(sessions)
    const session = await sessions.session(jar.header())
    const token = await session!.tokens.getToken()
    // that access token alone is gone at the provider: the userinfo endpoint answers 401,
    // the token is refreshed once and the request replayed
    const models = op.provider as unknown as {
      readonly AccessToken: { find(value: string): Promise<{ destroy(): Promise<void> } | undefined> }
    }
    await (await models.AccessToken.find(token.reveal()))!.destroy()
    op.counters.reset()
    const res = await authFetch(session!.tokens, { baseUrl: op.issuer })("/me")
    expect(res.status).toBe(200)
    expect(await res.json()).toMatchObject({ sub: "alice" })
    expect(op.counters.count({ grantType: "refresh_token" })).toBe(1)

    // now the grant is revoked (oidc-provider revokes it with any of its tokens): the refresh ends the session
    const current = await (await sessions.session(jar.header()))!.tokens.getToken()
    expect(current.reveal()).not.toBe(token.reveal())
    expect(await op.revoke(current.reveal(), CLIENTS.code, "access_token")).toBe(200)
    const again = await sessions.session(jar.header())
    const failed = await authFetch(again!.tokens, { baseUrl: op.issuer })("/me").catch((e) => e)
    expect(failed).toBeInstanceOf(SignInRequiredError)
    expect(failed.reason).toBe("refresh_rejected")
    expect(await sessions.session(jar.header())).toBeUndefined()
    expect(events.find((e) => e.type === "session_ended")).toMatchObject({ reason: "refresh_rejected" })
  })
})
